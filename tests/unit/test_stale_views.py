"""A view whose checks stopped does not vote: the other node decides alone."""

from __future__ import annotations

from consensus.agreement import AgreedState, Mode
from consensus.node import STALE_INTERVALS, STALE_SLACK_MS
from tests.unit.pair import started

PAIR = ("huginn", "muninn")
INTERVAL_MS = 60_000


def test_a_node_whose_checks_stopped_leaves_the_vote_to_its_peer() -> None:
    net = started(PAIR, ("blog",))
    for core in net.cores.values():
        core.check_every("blog", INTERVAL_MS)
    huginn, muninn = net.cores["huginn"], net.cores["muninn"]
    # Huginn's scheduler stalls: only Muninn checks from here on.
    checked = huginn.view("huginn", "blog").checked
    assert checked is not None
    last_huginn_check = checked.wall_ms
    while net.now_ms + INTERVAL_MS // 2 - last_huginn_check <= (
        STALE_INTERVALS * INTERVAL_MS + STALE_SLACK_MS
    ):
        net.check("muninn", "blog", True)
        net.advance(INTERVAL_MS // 2)
        assert not huginn.view("huginn", "blog").stale
    net.advance(INTERVAL_MS // 2)
    assert huginn.view("huginn", "blog").stale
    assert muninn.view("huginn", "blog").stale, "the peer learns it through the log"
    assert [w.detail["target"] for w in net.warnings if w.what == "stale_checks"] == ["blog"]

    # The target fails: Muninn alone decides, with the single-vantage streak.
    for _ in range(net.settings.single_vantage_fail_threshold):
        net.check("muninn", "blog", False)
        net.advance(net.settings.retry_interval_ms)
    net.canaries("muninn", True)
    assert net.state("blog", "muninn") is AgreedState.DOWN
    assert muninn.record("blog").mode is Mode.SINGLE_VANTAGE
    assert net.notices("blog") == ["DOWN"]

    # Huginn checks again. Its old verdict (UP) disagrees with the check,
    # so it votes only once fresh checks have moved it: no flicker back to
    # PARTIAL on the way, no second page.
    net.check("huginn", "blog", False)
    assert muninn.view("huginn", "blog").stale
    assert net.state("blog", "huginn") is AgreedState.DOWN
    net.advance(net.settings.retry_interval_ms)
    net.check("huginn", "blog", False)
    assert not muninn.view("huginn", "blog").stale
    again = muninn.assessment("blog", net.now_ms)
    assert again is not None and again.voters == PAIR, "both vote again"
    assert net.state("blog", "huginn") is AgreedState.DOWN
    assert net.notices("blog") == ["DOWN"]
    assert [s.state for s in muninn.history("blog")][-1:] == ["DOWN"]


def test_a_node_that_keeps_checking_never_goes_stale() -> None:
    net = started(PAIR, ("blog",))
    for core in net.cores.values():
        core.check_every("blog", INTERVAL_MS)
    for _ in range(20):
        for node in PAIR:
            net.check(node, "blog", True)
        net.advance(INTERVAL_MS)
    assert not any(net.cores[n].view(m, "blog").stale for n in PAIR for m in PAIR)
    assert not [w for w in net.warnings if w.what == "stale_checks"]


def test_a_node_stopped_before_an_outage_leaves_its_start_to_the_evidence() -> None:
    """Huginn stops (no checks, no heartbeats) while the target answers; the
    target then fails. Muninn's disagreement with Huginn's last view lasts
    only until Huginn times out, and Muninn alone calls it DOWN: the outage
    began with Muninn's failing check, not with the decision, even though the
    target answered again just after it."""
    net = started(PAIR, ("blog",))
    muninn = net.cores["muninn"]
    net.partition("huginn", "muninn")
    stopped_ms = net.now_ms
    net.advance(10_000)
    last_answer_ms = net.now_ms
    net.check("muninn", "blog", True)
    net.advance(5_000)
    failed_ms = net.now_ms
    while muninn.record("blog").state is not AgreedState.DOWN:
        assert net.now_ms - failed_ms < 10 * net.settings.peer_timeout_ms, "muninn decides"
        net.check("muninn", "blog", False)
        net.canaries("muninn", True)  # its own network answers
        net.advance(net.settings.retry_interval_ms)
    assert muninn.record("blog").mode is Mode.SINGLE_VANTAGE
    decided_ms = net.now_ms
    net.check("muninn", "blog", True)
    net.check("muninn", "blog", True)
    assert muninn.record("blog").state is AgreedState.UP

    moves = [m for m in muninn._moves["blog"].values() if m.state is AgreedState.DOWN]
    assert [m.left_ms for m in moves] == [(stopped_ms,)], "when huginn was last heard"
    down = [s for s in muninn.history("blog") if s.state == "DOWN"]
    assert len(down) == 1
    assert last_answer_ms <= down[0].start_ms <= failed_ms < decided_ms
    assert [s.state for s in muninn.history("blog")] == ["UP", "DOWN", "UP"]
