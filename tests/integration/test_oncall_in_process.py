"""On call, the pair in this process on a fake clock: the buttons of a page
(Acknowledge, Silence 1 h) pressed as the phone would send them, and the
escalation of a DOWN nobody acknowledged. Two targets fail together; the
one nobody touches is the control that shows reminders and escalations
were running while the other got none."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.integration.conftest import switched_site
from tests.integration.fakepair import NAMES, START_MS, Pair, World, run_pair
from tests.integration.notify_world import Switch

TWO_SITES = """
[[targets]]
id = "blog"
kind = "http"
url = "http://127.0.0.1:{port}/"

[[targets]]
id = "shop"
kind = "http"
url = "http://127.0.0.1:{port}/?shop"
"""
REMINDERS = "remind_down_every_s = 60\nbuttons_expire_after_s = 900\n"
# Checks every 20 s where the tests wait on minutes of reminders, not on
# the edges of an outage: a quarter of the probes, the same behaviour.
UNHURRIED = "interval_s = 20\nretry_interval_s = 2\ntimeout_s = 2\n"
ESCALATION = 'escalate_after_s = 120\nescalation_topic = "biphrost-oncall"\n'


@pytest.fixture
def lonely() -> Iterator[tuple[Switch, int]]:
    """A second target server, switched apart from the first."""
    with switched_site() as found:
        yield found


def pages(pair: Pair, title: str) -> list[dict[str, Any]]:
    return [m for m in pair.inbox.all() if m.get("title") == title]


def button(message: dict[str, Any], label: str) -> tuple[str, str]:
    """(the node the button's URL names, its path), as the phone would send it."""
    (found,) = [a for a in message["actions"] if a["label"] == label]
    assert (found["action"], found["method"]) == ("http", "POST")
    url = urlsplit(found["url"])
    node = url.hostname.removesuffix(".test") if url.hostname else ""
    assert node in NAMES, url
    return node, url.path


def other(name: str) -> str:
    return next(n for n in NAMES if n != name)


async def press(pair: Pair, node: str, path: str) -> tuple[int, dict[str, Any]]:
    response = await pair.request(node, "POST", path)
    return response.status_code, response.json()


def test_acknowledge_from_the_phone_stops_reminders_on_both_and_works_once(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    switch, port = site

    async def work(pair: Pair) -> None:
        switch.down = True
        await pair.run_until(lambda: len(pages(pair, "blog is still DOWN")) == 1
                             and len(pages(pair, "shop is still DOWN")) == 1,
                             "the first reminder of each", 180)  # fmt: skip
        (down,) = pages(pair, "blog is DOWN")
        assert [a["label"] for a in down["actions"]] == ["Acknowledge", "Silence 1 h"]
        sender, ack_path = button(down, "Acknowledge")
        incident = down["sequence_id"]
        # The reminder acts on the same incident as the page.
        (reminder,) = pages(pair, "blog is still DOWN")
        assert button(reminder, "Acknowledge")[1].split(".")[1] == incident

        # Pressed against the node that did not post: either node accepts.
        status, said = await press(pair, other(sender), ack_path)
        assert status == 200, said
        assert said["acknowledged"]["by"] == "ntfy button"
        await pair.run_until(
            lambda: all(n.core.acknowledged(incident) for n in pair.nodes.values()),
            "both nodes hold the acknowledgement", 30)  # fmt: skip

        blog_before = len(pages(pair, "blog is still DOWN"))
        shop_before = len(pages(pair, "shop is still DOWN"))
        await pair.advance(300)
        assert len(pages(pair, "shop is still DOWN")) >= shop_before + 4, "reminders ran"
        assert len(pages(pair, "blog is still DOWN")) == blog_before

        # The same button again, on either node: 409, and nothing changes.
        acks = {n: node.core.acknowledgement(incident) for n, node in pair.nodes.items()}
        for name in NAMES:
            status, said = await press(pair, name, ack_path)
            assert status == 409 and "already acknowledged" in said["error"], said
        assert {n: node.core.acknowledgement(incident) for n, node in pair.nodes.items()} == acks

        # Forged: one character of the signature changed.
        head, mac = ack_path.rsplit(".", 1)
        forged = f"{head}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}"
        status, said = await press(pair, sender, forged)
        assert status == 403 and "not issued by this pair" in said["error"]

        # Silence 1 h, from shop's page: its reminders stop; pressed again, 409.
        (shop_down,) = pages(pair, "shop is DOWN")
        silencer, silence_path = button(shop_down, "Silence 1 h")
        status, said = await press(pair, silencer, silence_path)
        assert status == 200 and said["silenced"]["targets"] == ["shop"], said
        # Once the press reached the peer (pushed at once), it refuses it too.
        await pair.advance(1)
        status, said = await press(pair, other(silencer), silence_path)
        assert status == 409 and "already silenced shop" in said["error"], said
        shop_silenced = len(pages(pair, "shop is still DOWN"))
        await pair.advance(300)
        assert len(pages(pair, "shop is still DOWN")) == shop_silenced

        # The page's tokens were made to last 900 s: past that, 403.
        await pair.advance(900)
        (blog_down,) = pages(pair, "blog is DOWN")
        status, said = await press(pair, sender, button(blog_down, "Silence 1 h")[1])
        assert status == 403 and "expired" in said["error"]

    world = World(TWO_SITES.format(port=port), REMINDERS, UNHURRIED, public_urls=True)
    run_pair(tmp_path, world, work, up=("blog", "shop"))


def test_escalation_posts_once_after_the_delay_and_never_after_an_acknowledgement(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    switch, port = site

    async def work(pair: Pair) -> None:
        switch.down = True
        await pair.run_until(lambda: pages(pair, "blog is DOWN") and pages(pair, "shop is DOWN"),
                             "both pages", 120)  # fmt: skip
        (blog_down,) = pages(pair, "blog is DOWN")
        (shop_down,) = pages(pair, "shop is DOWN")
        node, path = button(blog_down, "Acknowledge")
        assert (await press(pair, node, path))[0] == 200

        took = await pair.run_until(lambda: pages(pair, "Unacknowledged: shop is DOWN"),
                                    "shop's escalation", 300)  # fmt: skip
        assert took >= 100, "not before escalate_after_s from the DOWN"
        await pair.advance(600)
        (escalated,) = pages(pair, "Unacknowledged: shop is DOWN")
        assert escalated["topic"] == "biphrost-oncall"
        assert shop_down["sequence_id"] in escalated["message"]
        assert [a["label"] for a in escalated["actions"]] == ["Acknowledge", "Silence 1 h"]
        assert pages(pair, "Unacknowledged: blog is DOWN") == []
        # Both nodes hold the one escalation event, posted by one of them.
        escalation = escalated["sequence_id"]
        senders = {n.core.sent_by(escalation) for n in pair.nodes.values()}
        assert len(senders) == 1 and senders <= set(NAMES)

    world = World(TWO_SITES.format(port=port), ESCALATION, UNHURRIED, public_urls=True)
    run_pair(tmp_path, world, work, up=("blog", "shop"))


async def fall_and_rise(pair: Pair, switch: Switch, fell: list[str], settle_s: int = 120) -> None:
    """Switch the targets off until both nodes agree they are down and a
    page went out, then on until both agree they are up and a second
    page went out; then settle_s more, for anything held to go out."""
    switch.down = True
    await pair.run_until(lambda: all(pair.both(t, "DOWN")() for t in fell),
                         f"both agree {fell} are down", 180)  # fmt: skip
    await pair.run_until(lambda: bool(pair.titles()), "the first page", 180)
    switch.down = False
    await pair.run_until(lambda: all(pair.both(t, "UP")() for t in fell),
                         "all back up", 180)  # fmt: skip
    await pair.run_until(lambda: len(pair.titles()) >= 2, "the recovery's page", 180)
    await pair.advance(settle_s)


# Real processes run 30 (test_family.py); here a few show the rules.
CHILDREN = 6


def family(port: int, lonely_port: int, children: int = CHILDREN) -> str:
    """A host, the sites on it, and one more site on it served apart."""
    on_host = 'parent = "host"\n'
    sites = [http_target(f"site{i:02d}", port, f"?{i}", on_host) for i in range(children)]
    lonely = http_target("lonely", lonely_port, "", on_host)
    return "\n".join([http_target("host", port, "host"), *sites, lonely])


def http_target(id_: str, port: int, path: str, more: str = "") -> str:
    return (
        f'[[targets]]\nid = "{id_}"\nkind = "http"\nurl = "http://127.0.0.1:{port}/{path}"\n{more}'
    )


def test_a_host_and_its_sites_falling_together_page_once_and_a_site_alone_pages_itself(
    tmp_path: Path, site: tuple[Switch, int], lonely: tuple[Switch, int]
) -> None:
    switch, port = site
    alone, lonely_port = lonely
    sites = [f"site{i:02d}" for i in range(CHILDREN)]

    async def work(pair: Pair) -> None:
        # The host and every site on it fail together.
        await fall_and_rise(pair, switch, ["host", *sites])
        down, up = pair.inbox.all()
        assert down["title"] == f"host is DOWN with {CHILDREN} of {CHILDREN + 1} targets on it"
        assert (
            f"Down with it ({CHILDREN} of {CHILDREN + 1}): {', '.join(sites)}." in down["message"]
        )
        assert up["title"] == "host is UP"
        assert f"All {CHILDREN + 1} targets that depend on it are up." in up["message"]
        # Every site's outage is recorded on both nodes all the same: each
        # holds an agreed DOWN move for it (tests/integration/test_family.py
        # reads the incidents through the API, on real processes).
        for name in NAMES:
            moves = [e.value for e in pair.nodes[name].core.log.items("move/site03/")]
            assert any(isinstance(m, dict) and m.get("state") == "DOWN" for m in moves), name

        alone.down = True
        await pair.run_until(lambda: "lonely is DOWN" in pair.titles(), "lonely's own page", 120)
        alone.down = False
        await pair.run_until(lambda: "lonely is UP" in pair.titles(), "lonely's recovery", 180)
        await pair.advance(60)
        assert pair.titles()[2:] == ["lonely is DOWN", "lonely is UP"]

    world = World(family(port, lonely_port), public_urls=True)
    run_pair(tmp_path, world, work, up=("host", *sites, "lonely"))


RACK = 7  # targets of one tag on the switched server: more than the least (6)


def rack(port: int, lonely_port: int) -> str:
    """Seven sites tagged rack3 on one server, and one more with the tag
    on a server of its own: no parent anywhere."""
    racked = [http_target(f"web{i}", port, f"?{i}", 'tags = ["rack3", "web"]\n')
              for i in range(RACK)]  # fmt: skip
    return "\n".join([*racked, http_target("solo", lonely_port, "", 'tags = ["rack3"]\n')])


def test_a_rack_of_tagged_sites_falling_together_is_one_message_each_way(
    tmp_path: Path, site: tuple[Switch, int], lonely: tuple[Switch, int]
) -> None:
    switch, port = site
    alone, lonely_port = lonely
    fell = [f"web{i}" for i in range(RACK)]

    async def work(pair: Pair) -> None:
        # The seven sites the test switched off; then long enough for any
        # page held for the group to have gone out alone.
        await fall_and_rise(pair, switch, fell, settle_s=300)
        down, up = pair.inbox.all()
        # Either tag could name the group (both hold the seven): the first.
        assert down["title"] == "rack3: 7 of 8 targets DOWN"
        listed = [line[2:] for line in down["message"].splitlines() if line.startswith("- web")]
        assert sorted(listed) == fell
        assert [a["label"] for a in down["actions"]][:1] == ["Acknowledge"]
        assert up["title"] == "rack3: 7 of 7 targets UP"
        assert "All of the group are up again." in up["message"]
        # Each site's outage is recorded on both nodes all the same.
        for name in NAMES:
            for target in fell:
                moves = [e.value for e in pair.nodes[name].core.log.items(f"move/{target}/")]
                assert any(isinstance(m, dict) and m.get("state") == "DOWN" for m in moves)

        alone.down = True  # one of the tag alone: its own page, no group
        await pair.run_until(lambda: "solo is DOWN" in pair.titles(), "solo's own page", 180)
        alone.down = False
        await pair.run_until(lambda: "solo is UP" in pair.titles(), "solo's recovery", 180)
        await pair.advance(60)
        assert pair.titles()[2:] == ["solo is DOWN", "solo is UP"]

    world = World(rack(port, lonely_port), public_urls=True)
    run_pair(tmp_path, world, work, up=(*fell, "solo"))


def test_the_weekly_report_goes_once_to_each_topic_with_the_outage_the_test_made(
    tmp_path: Path, site: tuple[Switch, int], lonely: tuple[Switch, int]
) -> None:
    """The pair's fake clock starts on a Sunday at 17:46:40 UTC; the report
    is due at 18:05. The shop is switched off for ten minutes before it."""
    switch, port = site
    _, steady_port = lonely
    targets = (
        http_target("shop", port, "")
        + "\n"
        + http_target("blog", steady_port, "", 'tags = ["web"]\n')
    )
    routes = 'weekly_report = "sun 18:05"\ntag_topics = { web = "biphrost-web" }\n'

    async def work(pair: Pair) -> None:
        await pair.advance(300)
        switch.down = True
        went_down = pair.time.wall_s()
        await pair.run_until(pair.both("shop", "DOWN"), "both agree the shop is down", 120)
        await pair.advance(600 - (pair.time.wall_s() - went_down))
        switch.down = False
        came_back = pair.time.wall_s()
        await pair.run_until(pair.both("shop", "UP"), "both agree the shop is up", 120)
        due = START_MS / 1000 + 18 * 60 + 20  # 18:05:00
        await pair.advance(due - pair.time.wall_s() - 5)
        assert not [m for m in pair.inbox.all() if m["title"].startswith("Weekly")], "not early"
        await pair.run_until(
            lambda: len([m for m in pair.inbox.all() if m["title"].startswith("Weekly")]) >= 2,
            "both topics' reports", 180,
        )  # fmt: skip
        # A second copy (a standby's, after the failover) would be out by now.
        await pair.advance(120)
        reports = {m["topic"]: m for m in pair.inbox.all() if m["title"].startswith("Weekly")}
        assert len([m for m in pair.inbox.all() if m["title"].startswith("Weekly")]) == 2
        assert reports.keys() == {"biphrost-status", "biphrost-web"}
        shop = reports["biphrost-status"]
        assert shop["title"] == "Weekly report: " + shop["title"].split(": ")[1]
        (line,) = [x for x in shop["message"].splitlines() if x.startswith("- shop: ")]
        # Down for what the test switched off (each end within a few checks).
        lasted = came_back - went_down
        minutes, seconds = (int(x) for x in re.findall(r"(\d+) min (\d+) s down", line)[0])
        # Each edge midway between two checks 20 s apart (and a retry 2 s after).
        assert abs(minutes * 60 + seconds - lasted) <= 25, (line, lasted)
        assert "1 outage" in shop["title"]
        web = reports["biphrost-web"]
        assert web["title"] == "Weekly report: 100.000 % up, 0 outages"
        assert "- web (1): 100.000 %" in web["message"]
        assert "shop" not in web["message"]

    world = World(targets, routes, UNHURRIED)
    run_pair(tmp_path, world, work, up=("shop", "blog"))
