"""Per-customer pages on a pair in this process (fake clock): every page a
customer can reach, in both themes, after an outage of targets on two
pages, never holds another target's id or name; a page's own token, as a
header or in its link, opens it and only it."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from tests.integration.fakepair import Pair, World, run_pair
from tests.integration.notify_world import Switch

PAGE_TOKEN = secrets.token_hex(20)
TARGETS = """
[[targets]]
id = "acme-shop"
name = "Acme Webshop"
kind = "http"
url = "http://127.0.0.1:{port}/"
tags = ["acme"]

[[targets]]
id = "acme-mail"
name = "Acme Mailhost"
kind = "tcp"
host = "127.0.0.1"
port = {port}

[[targets]]
id = "globex-portal"
name = "Globex Portal"
kind = "http"
url = "http://127.0.0.1:{port}/"
tags = ["globex"]

[[targets]]
id = "vault-internal"
name = "Vaultkeeper Internal"
kind = "tcp"
host = "127.0.0.1"
port = {port}
tags = ["infra"]
"""
PAGES = """
[[pages]]
slug = "acme"
title = "Acme Ltd"
tags = ["acme"]
targets = ["acme-mail"]

[[pages]]
slug = "globex"
title = "Globex Corporation"
tags = ["globex"]
token_file = "{token_file}"
"""
NAMES = {"acme-shop": "Acme Webshop", "acme-mail": "Acme Mailhost",
         "globex-portal": "Globex Portal", "vault-internal": "Vaultkeeper Internal"}  # fmt: skip
SHOWS = {"acme": {"acme-shop", "acme-mail"}, "globex": {"globex-portal"}}
BADGES = ("status.svg", "uptime.svg?window=7d", "latency.svg")


def world(tmp_path: Path, port: int) -> World:
    token_file = tmp_path / "globex-token"
    token_file.write_text(PAGE_TOKEN)
    return World(TARGETS.format(port=port), extra_toml=PAGES.format(token_file=token_file))


async def everything_a_customer_reaches(pair: Pair, slug: str) -> dict[str, str]:
    """Each page, target page and badge of the page, in both themes, by path."""
    headers = {"Authorization": f"Bearer {PAGE_TOKEN}"} if slug == "globex" else {}
    found = {}
    paths = []
    for theme in ("neon", "plain"):
        paths.append(f"/s/{slug}?theme={theme}")
        paths += [f"/s/{slug}/t/{t}?theme={theme}" for t in sorted(SHOWS[slug])]
    paths += [f"/s/{slug}/badge/{t}/{b}" for t in sorted(SHOWS[slug]) for b in BADGES]
    for path in paths:
        got = await pair.get("huginn", path, headers=headers)
        assert got.status_code == 200, (path, got.status_code, got.text[:200])
        found[path] = got.text
    return found


def test_a_customer_page_shows_its_targets_and_nothing_of_any_other(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    switch, port = site

    async def work(pair: Pair) -> None:
        # An outage on both customers' pages: each page's incidents are its own.
        switch.down = True
        for target in ("acme-shop", "globex-portal"):
            await pair.run_until(pair.both(target, "DOWN"), f"{target} DOWN", 120)
        switch.down = False
        for target in ("acme-shop", "globex-portal"):
            await pair.run_until(pair.both(target, "UP"), f"{target} UP again", 120)
        whole = (await pair.get("huginn", "/")).text
        assert all(name in whole for name in NAMES.values()), "the status page shows all"

        for slug, shown in SHOWS.items():
            reached = await everything_a_customer_reaches(pair, slug)
            pages = "\n".join(t for p, t in reached.items() if "/badge/" not in p)
            for target in shown:
                assert NAMES[target] in pages, (slug, target)
            for path, text in reached.items():
                for other in set(NAMES) - shown:
                    assert other not in text, (path, other)
                    assert NAMES[other] not in text, (path, NAMES[other])
            # Links stay within the page; the node's API and metrics are not offered.
            for path, text in reached.items():
                for link in re.findall(r'href="([^"]*)"', text):
                    assert link.startswith((f"/s/{slug}", "?")), (path, link)
            # A target of another page, or of none, is not found here.
            for other in set(NAMES) - shown:
                headers = {"Authorization": f"Bearer {PAGE_TOKEN}"}
                missing = await pair.get("huginn", f"/s/{slug}/t/{other}", headers=headers)
                assert missing.status_code == 404 and NAMES[other] not in missing.text
                badge = await pair.get("huginn", f"/s/{slug}/badge/{other}/status.svg",
                                       headers=headers)  # fmt: skip
                assert badge.status_code == 404 and NAMES[other] not in badge.text

    run_pair(tmp_path, world(tmp_path, port), work, up=tuple(NAMES))


def test_a_page_with_its_own_token_opens_to_it_and_its_links_carry_it(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    async def work(pair: Pair) -> None:
        refused = await pair.get("huginn", "/s/globex")
        assert refused.status_code == 401 and "needs its token" in refused.json()["error"]
        wrong = await pair.get("huginn", "/s/globex?token=" + "0" * 40)
        assert wrong.status_code == 401
        # Another page's token is no key to this one, nor to the node's pages.
        assert (await pair.get("huginn", "/s/acme")).status_code == 200
        by_header = await pair.get("huginn", "/s/globex",
                                   headers={"Authorization": f"Bearer {PAGE_TOKEN}"})  # fmt: skip
        assert by_header.status_code == 200 and PAGE_TOKEN not in by_header.text
        by_link = await pair.get("huginn", f"/s/globex?token={PAGE_TOKEN}&theme=plain")
        assert by_link.status_code == 200
        links = re.findall(r'href="([^"]*)"', by_link.text)
        target_links = [link for link in links if "/t/" in link]
        assert target_links and all(f"token={PAGE_TOKEN}" in link for link in target_links)
        followed = await pair.get("huginn", target_links[0].replace("&amp;", "&"))
        assert followed.status_code == 200 and "Globex Portal" in followed.text
        # The header's visitor was served first: the cached page never
        # carries a token to one who came without it, nor the other way.
        again = await pair.get("huginn", "/s/globex?theme=plain",
                               headers={"Authorization": f"Bearer {PAGE_TOKEN}"})  # fmt: skip
        assert PAGE_TOKEN not in again.text
        unknown = await pair.get("huginn", "/s/initech")
        assert unknown.status_code == 404

    run_pair(tmp_path, world(tmp_path, site[1]), work, up=())
