"""Wall clocks that jump, made by libfaketime reading its offset from a file
the test rewrites (monotonic time stays true): checks go on at their pace,
sync keeps up, and an outage inside is paged once, on time."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.network.netns import faketime_library, needs_netns
from tests.network.world import NODES, World

NO_FAKETIME = "libfaketime is not installed (Debian: apt-get install libfaketime)"
pytestmark = [needs_netns, pytest.mark.skipif(faketime_library() is None, reason=NO_FAKETIME)]

# Checks every 2 s: a phase of N seconds should hold about N / 2 of them;
# at least half that is "on schedule" with room for a busy machine.
INTERVAL_S = 2
# Detection takes a few checks and retries; a page later than this is late.
ON_TIME_S = 30
LAG_LIMIT_MS = 60_000


def stepping_clock(offset_file: Path) -> dict[str, str]:
    library = faketime_library()
    assert library is not None
    return {"LD_PRELOAD": library, "FAKETIME_TIMESTAMP_FILE": str(offset_file),
            "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}  # fmt: skip


def huginn_on_a_stepping_clock(world: World) -> Path:
    """Huginn restarted under libfaketime; the file it returns sets the offset."""
    offset = world.root / "huginn-clock"
    offset.write_text("+0s\n")
    world.kill("huginn")
    world.start("huginn", stepping_clock(offset))
    world.wait(lambda: in_sync(world), "both vote and sync", 60)
    return offset


def checks(world: World, name: str) -> int:
    return int(world.query(name, "SELECT count(*) FROM checks WHERE target = 'site'")[0][0])


def peer_view(world: World, observer: str) -> dict[str, Any]:
    nodes = world.api(observer, "/api/v1/nodes") or {"peers": [{}]}
    return dict(nodes["peers"][0])


def in_sync(world: World) -> bool:
    views = [peer_view(world, name) for name in NODES]
    lags = [v.get("sync_lag_ms") for v in views]
    return all(v.get("voter") is True for v in views) and all(
        isinstance(lag, int) and lag < LAG_LIMIT_MS for lag in lags
    )


def lags_until(world: World, until: float) -> list[int]:
    """Each node's sync lag behind its peer, read every 2 s until the
    monotonic time `until` (reads a busy node did not answer are left out)."""
    lags: list[int] = []
    while time.monotonic() < until:
        for name in NODES:
            lag = peer_view(world, name).get("sync_lag_ms")
            if isinstance(lag, int):
                lags.append(lag)
        time.sleep(2)
    return lags


def keeps_in_sync(world: World, what: str) -> None:
    """In sync now, or within a few seconds: a busy machine may answer one
    read late, or a pull may be in flight as the clock steps."""
    world.wait(lambda: in_sync(world), what, 15)


class Phase:
    """Counts each node's checks over a stretch of real time."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.began = time.monotonic()
        self.counts = {name: checks(world, name) for name in NODES}

    def assert_on_schedule(self, what: str) -> None:
        seconds = time.monotonic() - self.began
        for name in NODES:
            made = checks(self.world, name) - self.counts[name]
            said = f"{what}: {name} made {made} checks in {seconds:.0f} s"
            assert made >= seconds / INTERVAL_S / 2, said


def site_titles(world: World) -> list[str]:
    return [t for t in world.titles() if t.startswith("site ")]


def outage_paged_once_on_time(world: World) -> None:
    before = len(site_titles(world))
    began = time.monotonic()
    world.target_file.write_text("down")
    world.wait(lambda: site_titles(world)[before:] == ["site is DOWN"], "the DOWN", ON_TIME_S)
    world.target_file.write_text("up")
    world.wait(lambda: site_titles(world)[before:] == ["site is DOWN", "site is UP"],
               "the UP", ON_TIME_S)  # fmt: skip
    assert time.monotonic() - began < 3 * ON_TIME_S


def test_a_forward_step_of_two_hours_then_a_restart_on_the_true_clock(world: World) -> None:
    offset = huginn_on_a_stepping_clock(world)

    phase = Phase(world)
    offset.write_text("+7200s\n")
    time.sleep(20)
    phase.assert_on_schedule("two hours ahead")

    world.kill("huginn")
    world.start("huginn")  # the true clock, from what it saved while ahead
    phase = Phase(world)
    world.wait(lambda: in_sync(world), "in sync within a minute of the restart", 60)
    log = (world.root / "huginn.log").read_text()
    assert log.count("clock_restarted") == 1, "said once"
    nodes = world.api("huginn", "/api/v1/nodes") or {}
    assert (nodes.get("clock_restarted") or {}).get("was_ahead_ms", 0) > 7_000_000
    outage_paged_once_on_time(world)
    phase.assert_on_schedule("after the restart")


def test_a_step_back_of_ten_minutes_for_a_minute_and_a_half(world: World) -> None:
    offset = huginn_on_a_stepping_clock(world)

    phase = Phase(world)
    offset.write_text("-600s\n")
    stepped = time.monotonic()
    world.wait(lambda: "clock_step" in (world.root / "huginn.log").read_text(),
               "huginn sees its clock step", 10)  # fmt: skip
    time.sleep(20)
    keeps_in_sync(world, "sync keeps up while the clock is back")
    outage_paged_once_on_time(world)
    lags = lags_until(world, stepped + 90)
    assert lags and max(lags) < LAG_LIMIT_MS, f"sync lag while the clock is back: {lags}"
    keeps_in_sync(world, "both vote, in sync, at the end of the step")
    phase.assert_on_schedule("ten minutes back")

    phase = Phase(world)
    offset.write_text("+0s\n")
    time.sleep(20)
    keeps_in_sync(world, "sync keeps up after the clock comes back")
    outage_paged_once_on_time(world)
    phase.assert_on_schedule("after the clock came back")
