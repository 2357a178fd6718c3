"""A view whose checks stopped does not vote: the other node decides alone."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

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


@settings(max_examples=60, deadline=None, database=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("check"), st.sampled_from(PAIR), st.sampled_from(("blog", "shop"))),
            st.tuples(st.just("advance"), st.integers(1_000, 200_000)),
            st.tuples(st.just("step"), st.sampled_from(PAIR), st.integers(-600_000, 600_000)),
            st.tuples(
                st.just("interval"), st.sampled_from(("blog", "shop")), st.integers(10_000, 120_000)
            ),
        ),
        max_size=40,
    )
)
# Every view stale, so no deadline is pending; then one is checked again.
@example([("advance", 200_000), ("advance", 200_000), ("check", "huginn", "blog"),
          ("advance", 200_000), ("advance", 200_000)])  # fmt: skip
def test_skipping_ticks_before_any_view_could_be_stale_skips_nothing(ops: list[Any]) -> None:
    """The tick looks at each view only from the soonest time one could go
    stale: a pair that looks at every view on every tick marks the same."""
    nets = [started(PAIR, ("blog", "shop")) for _ in range(2)]
    everywhere = nets[1]

    def look_everywhere() -> None:
        for core in everywhere.cores.values():
            core._stale_from_ms = 0

    for net in nets:
        for core in net.cores.values():
            core.check_every("blog", INTERVAL_MS)
            core.check_every("shop", INTERVAL_MS)
    for op in ops:
        look_everywhere()
        for net in nets:
            if op[0] == "check":
                net.check(op[1], op[2], True)
            elif op[0] == "advance":
                net.advance(op[1])
            elif op[0] == "step":
                net.cores[op[1]].time_stepped(op[2])
            else:
                for core in net.cores.values():
                    core.check_every(op[1], op[2])
        for name in PAIR:
            for target in ("blog", "shop"):
                seen = [n.cores[name].view(name, target).stale for n in nets]
                assert seen[0] == seen[1], (name, target, op)
    stale = [[w.detail["target"] for w in n.warnings if w.what == "stale_checks"] for n in nets]
    assert stale[0] == stale[1]
