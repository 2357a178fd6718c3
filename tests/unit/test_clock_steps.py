"""Wall clocks that jump: the hlc starts again from the wall clock and says
so, the peer merges what was stamped during the step, timers keep their
pace, and the watch in the shell tells a step from slewing."""

from __future__ import annotations

from consensus import keys
from consensus.commands import Warn
from consensus.node import NodeCore
from tests.unit.pair import results, started
from watchers.clockwatch import ClockWatch

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
    watch = ClockWatch(lambda: clock["wall"], lambda: clock["mono"])
    for _ in range(10):  # slewing: 0.5 s off per look, never a step
        clock["wall"] += 1.5
        clock["mono"] += 1.0
        assert watch.step_s() == 0.0
    clock["wall"] += 1.0 - 600.0  # a second passes, and the clock goes back 600 s
    clock["mono"] += 1.0
    assert watch.step_s() == -600.0
    clock["wall"] += 1.0
    clock["mono"] += 1.0
    assert watch.step_s() == 0.0
