"""Domain expiry on a pair in this process (fake clock), against a local
RDAP server: one notice per threshold as time crosses it, each domain
looked up once a day per node, and a registry that fails never pages."""

from __future__ import annotations

from pathlib import Path

from tests.integration.fakepair import NAMES, START_MS, Pair, World, run_pair
from tests.integration.notify_world import Switch
from tests.integration.rdap_server import rdap_server

DAY_MS = 86_400_000
# 14 days and 5 minutes left at the start: the 30-day threshold is crossed
# at once, the 14-day one five minutes later.
EXPIRES_MS = START_MS + 14 * DAY_MS + 5 * 60_000
TARGETS = """
[[targets]]
id = "shop"
kind = "http"
url = "http://127.0.0.1:{port}/"
domain = "acme.test"
interval_s = 60

[[targets]]
id = "blog"
kind = "http"
url = "http://127.0.0.1:{port}/blog"
domain = "acme.test"
interval_s = 60

[[targets]]
id = "wiki"
kind = "tcp"
host = "127.0.0.1"
port = {port}
domain = "broken.test"
interval_s = 60
"""
DOMAINS = """
[domains]
watch = true
rdap = {{ test = "{base}" }}
"""


def test_one_notice_per_threshold_once_a_day_lookups_and_a_broken_registry_pages_nobody(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    registry: dict[str, int | None] = {"acme.test": EXPIRES_MS, "broken.test": None}
    with rdap_server(registry) as (base, asked):

        async def work(pair: Pair) -> None:
            def titles() -> list[str]:
                return [t for t in pair.titles() if "registration" in t]

            await pair.run_until(lambda: len(titles()) == 1, "the 30-day notice", 60)
            (first,) = [m for m in pair.inbox.all() if "registration" in str(m["title"])]
            assert first["title"] == "acme.test: registration expires in 14 days"
            assert "threshold: 30 days" in str(first["message"])
            assert "blog, shop" in str(first["message"])
            # Time crosses the next threshold: one more notice, for 14 days.
            await pair.run_until(lambda: len(titles()) == 2, "the 14-day notice", 15 * 60)
            second = [m for m in pair.inbox.all() if "registration" in str(m["title"])][1]
            assert "threshold: 14 days" in str(second["message"])
            assert pair.time.mono >= 5 * 60, "not before the days left crossed 14"
            # Twenty minutes on: the thresholds were judged twice more, nothing new.
            await pair.advance(1200)
            assert len(titles()) == 2
            # Each node asked its registry once per domain (not once per target,
            # nor per round), and the broken one paged nobody.
            assert sorted(asked) == sorted(["acme.test", "broken.test"] * len(NAMES))
            assert not [t for t in pair.titles() if "broken" in t]
            page = (await pair.get("huginn", "/t/wiki")).text
            assert "domain broken.test" in page and "RDAP answered 500" in page
            shop = (await pair.get("muninn", "/api/v1/targets/shop")).json()["domain"]
            assert (shop["name"], shop["expires_ms"], shop["error"]) == (
                "acme.test", EXPIRES_MS, None,
            )  # fmt: skip

        world = World(TARGETS.format(port=site[1]), extra_toml=DOMAINS.format(base=base))
        run_pair(tmp_path, world, work, up=())
