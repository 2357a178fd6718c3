"""Wall clocks that jump: the hlc starts again from the wall clock and says
so, the peer merges what was stamped during the step, timers keep their
pace, and the watch in the shell tells a step from slewing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from consensus import keys
from consensus.agreement import Notice
from consensus.commands import Warn
from consensus.node import NodeCore
from notify.messages import Style, Subject, build
from tests.unit.pair import results, started
from watchers.clockwatch import ClockWatch, SteadyClock
from watchers.schedule import reined_in

PAIR = ("huginn", "muninn")
TARGETS = ("blog", "shop")
HOUR_MS = 3_600_000


def test_a_forward_step_then_a_restart_on_the_true_clock_cuts_nobody_off() -> None:
    net = started(PAIR, TARGETS)
    huginn = net.cores["huginn"]
    # Huginn's wall clock runs two hours ahead for 20 s: what it writes
    # then is stamped two hours ahead.
    stepped = net.now_ms + 2 * HOUR_MS
    net.run("huginn", huginn.check_observed("blog", False, "status 503", 12.0, stepped))
    net.run("huginn", huginn.tick(stepped))
    ahead = huginn.log.get(keys.obs("huginn", "blog"))
    assert ahead is not None and ahead.hlc.wall_ms >= stepped
    # It restarts on the true clock from what it saved.
    huginn = NodeCore("huginn", PAIR, TARGETS, net.settings, net.now_ms, log=huginn.log,
                      clock_last=huginn.clock.last)  # fmt: skip
    net.cores["huginn"] = huginn
    net.canaries("huginn", True)
    net.warnings.clear()
    net.tick()
    restarted = [w for w in net.warnings if w.what == "clock_restarted"]
    assert len(restarted) == 1, "said once"
    assert restarted[0].detail["was_ahead_s"] >= 2 * 3600 - 1
    assert huginn.clock.last.wall_ms - net.now_ms <= net.settings.max_skew_ms
    # Muninn merges everything, the entries stamped ahead included: no
    # batch refused, Huginn stays a voter, its peer offset reads true.
    net.sync()
    muninn = net.cores["muninn"]
    assert net.all_equal()
    assert "huginn" in muninn.voters(net.now_ms)
    assert abs(muninn.peer_offset_ms.get("huginn", 0)) < 60_000
    # Huginn's next views still replace the one stamped ahead, on both nodes.
    net.rounds("blog", results(PAIR, True), 2)
    for core in net.cores.values():
        view = core.view("huginn", "blog")
        assert view.last_ok is True, core.node


def test_a_step_of_the_wall_clock_moves_the_core_timers_with_it() -> None:
    net = started(PAIR, TARGETS)
    huginn = net.cores["huginn"]
    for step_ms in (-600_000, 2 * HOUR_MS):
        before = dict(huginn.heard)
        net.now_ms += step_ms
        huginn.time_stepped(step_ms)
        assert {p: t + step_ms for p, t in before.items()} == huginn.heard
        net.warnings.clear()
        net.run("huginn", huginn.tick(net.now_ms))
        assert huginn.voters(net.now_ms) == frozenset(PAIR), "the peer is still live"
        assert not [w for w in net.warnings if isinstance(w, Warn) and "peer" in w.what]


def test_the_watch_tells_a_step_from_slewing() -> None:
    clock = {"wall": 1_000.0, "mono": 50.0}
    steady = SteadyClock(lambda: clock["wall"], lambda: clock["mono"])
    watch = ClockWatch(steady)
    for _ in range(10):  # slewing: 0.5 s off per look, never a step
        clock["wall"] += 1.5
        clock["mono"] += 1.0
        assert watch.step_s() == 0.0
    assert steady.now_s() == clock["wall"], "slewing is followed"
    clock["wall"] += 1.0 - 600.0  # a second passes, and the clock goes back 600 s
    clock["mono"] += 1.0
    assert watch.step_s() == 0.0, "not yet: one reading is no step"
    assert steady.now_s() == clock["wall"] + 600.0
    clock["wall"] += 1.0
    clock["mono"] += 1.0
    assert watch.step_s() == -600.0
    assert steady.now_s() == clock["wall"]
    clock["wall"] += 1.0
    clock["mono"] += 1.0
    assert watch.step_s() == 0.0


def test_one_wrong_reading_of_the_wall_clock_moves_nothing() -> None:
    clock = {"wall": 1_000.0, "mono": 50.0}
    steady = SteadyClock(lambda: clock["wall"], lambda: clock["mono"])
    first, second = ClockWatch(steady), ClockWatch(steady)
    clock["wall"] += 600.0  # one reading ten minutes out...
    clock["mono"] += 0.001
    assert first.step_s() == 0.0
    clock["wall"] -= 600.0  # ...and the next one true again
    clock["mono"] += 1.0
    assert (first.step_s(), second.step_s()) == (0.0, 0.0)
    assert steady.now_s() == clock["wall"]
    # Two readings close together are no confirmation either.
    clock["wall"] += 600.0
    assert first.step_s() == 0.0
    clock["mono"] += 0.01
    clock["wall"] += 0.01
    assert first.step_s() == 0.0
    clock["mono"] += 1.0
    clock["wall"] += 1.0
    assert first.step_s() == 600.0
    assert second.step_s() == 600.0, "every watch is told each step once"
    assert second.step_s() == 0.0


def test_an_interval_job_never_waits_past_its_period() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    period = timedelta(seconds=2)
    assert reined_in(now + period, period, now, 0.5) is None
    assert reined_in(now - timedelta(seconds=5), period, now, 0.5) is None
    assert reined_in(now + timedelta(minutes=10), period, now, 0.5) == now + timedelta(seconds=1)


def test_a_jump_of_the_clock_is_told_once_in_a_note() -> None:
    net = started(PAIR, TARGETS)
    huginn = net.cores["huginn"]
    net.now_ms += 2 * HOUR_MS
    huginn.time_stepped(2 * HOUR_MS)
    net.tick()
    net.tick()
    notes = [e for _, e in net.posts if e.notice is Notice.CLOCK_JUMPED]
    assert [(e.subject, dict(e.detail)) for e in notes] == [
        ("node:huginn", {"step_ms": 2 * HOUR_MS})
    ]  # fmt: skip
    message = build(notes[0], Subject("node:huginn"), Style("ops"))
    assert message["title"] == "huginn's clock jumped forward 2 h 0 min", message
    assert "time sync" in str(message["message"]) and message["priority"] == 2
    # Back again a minute later: the same trouble, no second page this hour.
    net.now_ms -= 2 * HOUR_MS - 60_000
    huginn.time_stepped(-(2 * HOUR_MS - 60_000))
    net.tick()
    # A small step (slewing, a leap second) is no news at all.
    huginn.time_stepped(net.settings.max_skew_ms - 1)
    net.now_ms += HOUR_MS
    net.tick()
    assert len([e for _, e in net.posts if e.notice is Notice.CLOCK_JUMPED]) == 1


def test_a_restart_behind_its_last_stamp_is_told_once() -> None:
    net = started(PAIR, TARGETS)
    huginn = net.cores["huginn"]
    net.run("huginn", huginn.tick(net.now_ms + 2 * HOUR_MS))
    huginn = NodeCore("huginn", PAIR, TARGETS, net.settings, net.now_ms, log=huginn.log,
                      clock_last=huginn.clock.last)  # fmt: skip
    net.cores["huginn"] = huginn
    net.canaries("huginn", True)
    net.tick()
    net.tick()
    notes = [e for _, e in net.posts if e.notice is Notice.CLOCK_JUMPED]
    assert len(notes) == 1 and notes[0].detail["was_ahead_ms"] >= 2 * HOUR_MS - 1_000
    message = build(notes[0], Subject("node:huginn"), Style("ops"))
    assert message["title"] == "huginn started again with its clock behind"
