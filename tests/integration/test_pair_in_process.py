"""The pair's agreement, paging and history, both nodes in this process on
a fake clock: minutes of checks, peer timeouts and failovers in a second of
real time. Judged against what the test did and when (its own fake time)."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from consensus.hlc import Hlc
from consensus.lww import Entry
from consensus.verdict import VerdictState
from tests.integration.fakepair import NAMES, START_MS, Pair, World, run_pair
from tests.integration.notify_world import Switch
from watchers.pair_check import pair_problems
from watchers.storage import Store

BLOG = """
[[targets]]
id = "blog"
kind = "http"
url = "http://127.0.0.1:{port}/"
tags = ["web"]
"""


async def quiet_for(pair: Pair, seconds: float, target: str = "blog") -> None:
    """Advance, and show that both nodes kept checking all along: an absence
    seen after this is not a pair that stopped looking."""
    before = {n: pair.checked_at(n, target) for n in pair.nodes}
    await pair.advance(seconds)
    for name, at in before.items():
        assert pair.checked_at(name, target) >= at + (seconds - 10) * 1000, name


def test_an_outage_is_agreed_by_both_and_paged_once_down_once_up(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    switch, port = site

    async def work(pair: Pair) -> None:
        switch.down = True
        took = await pair.run_until(pair.both("blog", "DOWN"), "both agree it is down", 120)
        assert took <= 30, "confirmed within a few intervals"
        await pair.run_until(lambda: "blog is DOWN" in pair.titles(), "the page", 60)
        switch.down = False
        await pair.run_until(pair.both("blog", "UP"), "both agree it is up again", 120)
        await pair.run_until(lambda: "blog is UP" in pair.titles(), "the recovery", 60)
        await quiet_for(pair, 120)
        assert pair.titles() == ["blog is DOWN", "blog is UP"]
        down, up = pair.inbox.all()
        assert down["priority"] == 5 and up["priority"] == 3
        assert down["sequence_id"] != up["sequence_id"]

    run_pair(tmp_path, World(BLOG.format(port=port)), work)


def test_ntfy_failing_through_an_outage_delays_but_loses_nothing(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    switch, port = site

    async def work(pair: Pair) -> None:
        pair.inbox.fail_status = 503
        switch.down = True
        await pair.run_until(pair.both("blog", "DOWN"), "both agree it is down", 120)
        switch.down = False
        await pair.run_until(pair.both("blog", "UP"), "both agree it is up again", 120)
        await quiet_for(pair, 60)
        assert pair.inbox.all() == []
        assert len(pair.inbox.requests) > 0, "ntfy was asked, and refused"
        pair.inbox.fail_status = None
        await pair.run_until(lambda: len(pair.titles()) == 2, "both, once ntfy is back", 600)
        await quiet_for(pair, 60)
        assert pair.titles() == ["blog is DOWN", "blog is UP"]

    run_pair(tmp_path, World(BLOG.format(port=port)), work)


def test_tag_topics_and_priorities_come_from_the_config(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    switch, port = site
    ntfy = 'tag_topics = { web = "biphrost-web" }\npriority = { down = 4 }\n'

    async def work(pair: Pair) -> None:
        switch.down = True
        await pair.run_until(lambda: bool(pair.titles()), "the page", 120)
        (down,) = pair.inbox.all()
        assert (down["title"], down["topic"], down["priority"]) == (
            "blog is DOWN", "biphrost-web", 4,
        )  # fmt: skip

    run_pair(tmp_path, World(BLOG.format(port=port), ntfy), work)


def test_a_flapping_target_gives_one_flapping_and_one_settled(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    switch, port = site
    defaults = "interval_s = 1\nretry_interval_s = 1\ntimeout_s = 2\nflap_calm_s = 4\n"

    async def work(pair: Pair) -> None:
        switch.flapping = True
        await pair.run_until(pair.both("blog", "FLAPPING"), "both agree it flaps", 60)
        await quiet_for(pair, 30)  # it keeps flapping: nothing more is announced
        assert pair.titles() == ["blog is flapping"]
        switch.flapping = False
        await pair.run_until(lambda: len(pair.titles()) == 2, "the settled message", 90)
        await quiet_for(pair, 30)
        assert pair.titles() == ["blog is flapping", "blog settled: UP"]

    world = World(BLOG.format(port=port), defaults_toml=defaults)
    run_pair(tmp_path, world, work)


def test_nodes_with_different_secrets_say_so_and_page_as_in_a_partition(
    tmp_path: Path, site: tuple[Switch, int], caplog: pytest.LogCaptureFixture
) -> None:
    switch, port = site
    caplog.set_level(logging.INFO, logger="ravens")
    note = {f"{peer} refuses this watcher's sync: the sync secrets differ" for peer in NAMES}

    async def work(pair: Pair) -> None:
        views = {}

        async def look() -> None:
            for name in NAMES:
                views[name] = (await pair.get(name, "/api/v1/nodes")).json()

        def refused_both_ways() -> bool:
            return all(v["peers"][0].get("refuses_us") == "signature" for v in views.values())

        for _ in range(30):
            await look()
            if refused_both_ways():
                break
            await pair.advance(1)
        assert refused_both_ways(), views
        # Once each has counted the other lost for two minutes, one note per side.
        await pair.run_until(lambda: note <= set(pair.titles()), "a note from each side", 300)
        switch.down = True
        await pair.run_until(lambda: "blog is DOWN" in pair.titles(), "the outage", 120)
        switch.down = False
        await pair.run_until(lambda: "blog is UP" in pair.titles(), "the recovery", 120)
        await quiet_for(pair, 60)
        titles = pair.titles()
        assert titles.count("blog is DOWN") <= 2 and titles.count("blog is UP") <= 2
        assert [t for t in titles if "refuses" in t].count(next(iter(note))) == 1

    world = World(BLOG.format(port=port), secrets={"muninn": "m" * 40})
    run_pair(tmp_path, world, work, up=())
    for name in NAMES:
        said = [r for r in caplog.records if "refuses our signature" in r.getMessage()
                and f"node={name}" in r.getMessage()]  # fmt: skip
        assert len(said) == 1, name


# -- history, judged against when the test switched the target -----------------

FAST = "interval_s = 1\nretry_interval_s = 0.5\ntimeout_s = 2\n"
INTERVAL_S = 1.0
# The fake clock moves in whole steps of this: a flip lands between checks.
STEP_S = 0.5


async def same_from_both(pair: Pair, path: str) -> dict[str, object]:
    """Advance until both nodes answer path byte for byte alike; that answer."""
    for _ in range(60):
        answers = [(await pair.get(name, path)).content for name in NAMES]
        if answers[0] == answers[1]:
            found: dict[str, object] = json.loads(answers[0])
            return found
        await pair.advance(1)
    raise AssertionError(f"the nodes never answered {path} alike")


async def outage(pair: Pair, switch: Switch, hold_s: float, who: str = "both") -> tuple[int, int]:
    """Take the target down until agreed (and at least hold_s), then bring it
    back; the true start and end, in epoch ms of the pair's clock."""
    clock = pair.clocks["muninn"]
    switch.down = True
    start = clock.now_ms()
    if who == "both":
        agreed = pair.both("blog", "DOWN")
    else:
        agreed = lambda: pair.state(who, "blog") == "DOWN"  # noqa: E731
    await pair.run_until(agreed, f"{who} agree(s) the blog is down", 120, STEP_S)
    await pair.advance(max(0.0, hold_s - (clock.now_ms() - start) / 1000))
    switch.down = False
    return start, clock.now_ms()


def test_five_outages_are_told_truly_and_alike_by_both_nodes(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    switch, port = site

    async def work(pair: Pair) -> None:
        begun = pair.clocks["huginn"].now_ms()
        truth = []
        for _ in range(5):
            truth.append(await outage(pair, switch, hold_s=4))
            await pair.run_until(pair.both("blog", "UP"), "up again", 120, STEP_S)
            await pair.advance(1)
        at = pair.clocks["huginn"].now_ms()
        found = await same_from_both(pair, f"/api/v1/incidents?from={begun}&to={at}")
        incidents = found["incidents"]
        assert isinstance(incidents, list)
        assert [i["state"] for i in incidents] == ["DOWN"] * 5, "one per outage, no more"
        for incident, (start, end) in zip(incidents, truth, strict=True):
            assert abs(incident["start_ms"] - start) / 1000 <= INTERVAL_S + STEP_S
            assert abs(incident["end_ms"] - end) / 1000 <= INTERVAL_S + STEP_S
        path = f"/api/v1/targets/blog/uptime?windows=24h&at={at}"
        windows = (await same_from_both(pair, path))["windows"]
        assert isinstance(windows, dict)
        day = windows["24h"]
        true_down_s = sum(end - start for start, end in truth) / 1000
        assert abs(day["down_s"] - true_down_s) <= 5 * (INTERVAL_S + STEP_S)
        assert day["incidents"] == 5

    world = World(BLOG.format(port=port), defaults_toml=FAST)
    run_pair(tmp_path, world, work)


def test_a_node_stopped_through_an_outage_learns_it_when_back(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    switch, port = site

    async def work(pair: Pair) -> None:
        begun = pair.clocks["huginn"].now_ms()
        await pair.stop("huginn")
        # Muninn decides alone once huginn is silent past the peer timeout.
        start, end = await outage(pair, switch, hold_s=10, who="muninn")
        up = lambda: pair.state("muninn", "blog") == "UP"  # noqa: E731
        await pair.run_until(up, "muninn sees the blog up again", 60, STEP_S)
        await pair.start("huginn")
        await pair.run_until(pair.both("blog", "UP"), "huginn back, both see it up", 60)
        at = pair.clocks["huginn"].now_ms()
        found = await same_from_both(pair, f"/api/v1/incidents?from={begun}&to={at}")
        (incident,) = found["incidents"]  # type: ignore[misc]
        assert (incident["state"], incident["mode"]) == ("DOWN", "single_vantage")
        assert abs(incident["start_ms"] - start) / 1000 <= INTERVAL_S + STEP_S
        assert abs(incident["end_ms"] - end) / 1000 <= INTERVAL_S + STEP_S
        path = f"/api/v1/targets/blog/uptime?windows=24h&at={at}"
        windows = (await same_from_both(pair, path))["windows"]
        assert windows["24h"]["incidents"] == 1  # type: ignore[index]

    world = World(BLOG.format(port=port), defaults_toml=FAST)
    run_pair(tmp_path, world, work)


def queued(pair: Pair) -> list[tuple[str, str]]:
    """Every outbox row of both nodes, as (subject, notice), from their files."""
    rows: list[tuple[str, str]] = []
    for name in NAMES:
        with sqlite3.connect(pair.root / name / "ravens.sqlite3") as db:
            rows += db.execute("SELECT subject, notice FROM outbox ORDER BY created_ms")
    return rows


def test_a_one_sided_failure_is_partial_and_pages_nobody(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    switch, port = site

    async def work(pair: Pair) -> None:
        switch.down_for = "muninn"
        await pair.run_until(pair.both("blog", "PARTIAL"), "both call it partial", 120)
        await quiet_for(pair, 180)
        assert pair.both("blog", "PARTIAL")()
        assert queued(pair) == [] and pair.inbox.requests == []

    run_pair(tmp_path, World(BLOG.format(port=port)), work)


def test_both_nodes_hold_the_same_log_once_synced(tmp_path: Path, site: tuple[Switch, int]) -> None:
    switch, port = site

    def settled(log: Iterable[Entry]) -> set[tuple[str, Hlc]]:
        # Heartbeats are written until the very end; all else has settled.
        return {(e.key, e.hlc) for e in log if not e.key.startswith("health/")}

    async def work(pair: Pair) -> None:
        switch.down = True
        await pair.run_until(pair.both("blog", "DOWN"), "both agree it is down", 120)
        await pair.run_until(lambda: bool(pair.titles()), "the page", 60)
        await quiet_for(pair, 10)  # a few sync rounds with nothing new
        held = {n: settled(pair.nodes[n].core.log.entries()) for n in NAMES}
        assert held["huginn"] == held["muninn"]
        assert any(key.startswith("event/") for key, _ in held["huginn"])
        for name in NAMES:
            await pair.stop(name)
            # What the file holds is what the node held.
            store = await Store.open(pair.root / name / "ravens.sqlite3")
            log, _ = await store.load(name)
            await store.close()
            assert settled(log.entries()) == held[name]

    run_pair(tmp_path, World(BLOG.format(port=port)), work)


def test_nodes_shows_voters_sync_lag_and_clock_offset(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    _, port = site

    async def work(pair: Pair) -> None:
        pair.clocks["muninn"].jump(3)  # muninn's wall clock 3 s ahead

        async def synced() -> bool:
            found = (await pair.get("huginn", "/api/v1/nodes")).json()
            return found["peers"][0]["sync_lag_ms"] is not None

        await pair.run_until(synced, "a first sync", 30)
        await pair.advance(5)
        data = (await pair.get("huginn", "/api/v1/nodes")).json()
        assert data["node"] == "huginn" and data["voter"] is True and data["ready"] is True
        (peer,) = data["peers"]
        assert peer["name"] == "muninn" and peer["voter"] is True and peer["state"] == "VOTING"
        assert 0 <= peer["sync_lag_ms"] <= 5_000
        assert abs(peer["clock_offset_ms"] - 3_000) <= 1_000, peer

    run_pair(tmp_path, World(BLOG.format(port=port)), work)


def test_a_maintenance_window_records_the_outage_and_pages_nobody(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    switch, port = site
    now = datetime.fromtimestamp(START_MS / 1000, UTC)
    window = f"""
[[maintenance]]
targets = ["blog"]
start = {(now - timedelta(hours=1)).isoformat()}
end = {(now + timedelta(hours=1)).isoformat()}
"""

    async def work(pair: Pair) -> None:
        switch.down = True
        await quiet_for(pair, 180)
        assert pair.both("blog", "MAINTENANCE")()
        # The outage is in the log, each node's view as the other holds it
        # too; it is only that nobody is paged.
        for name in NAMES:
            for core in (pair.nodes[n].core for n in NAMES):
                assert core.view(name, "blog").state is VerdictState.DOWN, name
        assert queued(pair) == [] and pair.inbox.requests == []

    world = World(BLOG.format(port=port), extra_toml=window)
    run_pair(tmp_path, world, work, up=())


def test_a_refused_notification_shows_on_both_nodes_their_pages_and_metrics(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    """ntfy refuses the token (401) of the node that posts: the peer says so
    too (its API, its status page, its /metrics), and `ravens status
    --check` finds it from either node; a healthy pair has no problem."""
    switch, port = site

    async def nodes(pair: Pair, name: str) -> dict[str, Any]:
        found: dict[str, Any] = (await pair.get(name, "/api/v1/nodes")).json()
        return found

    async def work(pair: Pair) -> None:
        await pair.advance(10)  # a heartbeat with each outbox's count
        assert [pair_problems(await nodes(pair, n)) for n in NAMES] == [[], []]
        pair.inbox.token = "tk_" + "w" * 29  # the nodes' token is now wrong
        switch.down = True
        await pair.run_until(pair.both("blog", "DOWN"), "both agree it is down", 120)

        async def refused_somewhere() -> bool:
            return any([(await nodes(pair, n))["outbox_refused"] for n in NAMES])

        await pair.run_until(refused_somewhere, "ntfy refused the page", 60)
        refusing = [n for n in NAMES if (await nodes(pair, n))["outbox_refused"]]
        (sender,) = refusing
        peer = next(n for n in NAMES if n != sender)

        async def peer_knows() -> bool:
            told = (await nodes(pair, peer))["peers"][0]
            return bool(told["outbox_refused"])

        await pair.run_until(peer_knows, "the peer heard of the refusal", 30)
        assert pair_problems(await nodes(pair, peer)) == [
            f"{sender}: ntfy refused 1 notification(s): fix [ntfy]"
        ]
        assert pair_problems(await nodes(pair, sender)) == [
            f"{sender}: ntfy refused 1 notification(s) (unauthorized (40101)): fix [ntfy]"
        ]
        page = (await pair.get(peer, "/")).text
        assert re.search(rf"<td>{sender}</td>.*?<td>1 refused</td>", page, re.S), page
        sender_metrics = (await pair.get(sender, "/metrics")).text
        assert (
            'ravens_outbox_posts{reason="unauthorized (40101)",status="refused"} 1.0'
            in sender_metrics
        )
        peer_metrics = (await pair.get(peer, "/metrics")).text
        assert f'ravens_node_outbox_refused{{node="{sender}"}} 1.0' in peer_metrics

    run_pair(tmp_path, World(BLOG.format(port=port)), work)
