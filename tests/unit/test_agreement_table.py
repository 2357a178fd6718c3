"""One test per row of the agreement table in the design, stepped by hand."""

from __future__ import annotations

import pytest

from consensus.agreement import (
    AgreedRecord,
    AgreedState,
    Assessment,
    Mode,
    advance,
    assess,
    note_partial,
)
from consensus.errors import IllegalTransition
from consensus.flapping import FlapHistory
from consensus.hlc import Hlc
from consensus.settings import Settings
from consensus.verdict import Verdict, VerdictState
from tests.unit.pair import Net, results

PAIR = ("huginn", "muninn")
T = "blog"


@pytest.fixture
def net() -> Net:
    n = Net(PAIR, (T, "shop"))
    n.start()
    n.rounds(T, results(PAIR, True), 2)
    assert n.state(T) is AgreedState.UP
    return n


def test_every_voter_down_pages_once_then_recovers_once(net: Net) -> None:
    net.rounds(T, results(PAIR, False), 2)
    assert net.state(T, "huginn") is AgreedState.DOWN
    assert net.state(T, "muninn") is AgreedState.DOWN
    assert net.notices(T) == ["DOWN"]
    down = net.posts[0][1]
    assert down.mode is Mode.QUORUM
    assert set(down.voters) == set(PAIR)
    net.rounds(T, results(PAIR, True), 2)
    assert net.notices(T) == ["DOWN", "UP"]
    assert net.all_equal() or (net.sync() or net.all_equal())


def test_first_failure_is_pushed_and_the_peer_rechecks_at_once(net: Net) -> None:
    net.rechecks.clear()
    net.check("huginn", T, False)
    assert ("muninn", T, 0) in net.rechecks
    assert ("huginn", T, net.settings.retry_interval_ms) in net.rechecks


def test_path_problem_on_one_side_is_partial_without_a_page(net: Net) -> None:
    net.rounds(T, {"huginn": False, "muninn": True}, 6)
    assert net.state(T) is AgreedState.PARTIAL
    assert net.notices(T) == []
    # One low-priority note once it outlasts its grace, and only one.
    net.advance(net.settings.partial_note_after_ms)
    net.rounds(T, {"huginn": False, "muninn": True}, 3)
    net.advance(net.settings.partial_note_after_ms)
    assert net.notices(T) == ["PARTIAL_LASTING"]
    # Seen from both sides again: the user hears it is fine.
    net.rounds(T, results(PAIR, True), 2)
    assert net.notices(T) == ["PARTIAL_LASTING", "UP"]


def test_a_node_whose_canaries_fail_abstains_and_the_peer_notes_it_once(net: Net) -> None:
    net.canaries("huginn", False)
    for target in (T, "shop"):
        net.rounds(target, {"huginn": False, "muninn": True}, 4)
    assert "huginn" not in net.cores["muninn"].voters(net.now_ms)
    net.advance(net.settings.isolated_note_after_ms)
    net.advance(net.settings.isolated_note_after_ms)
    assert net.notices() == ["NODE_ISOLATED"]
    assert net.posts[0][0] == "muninn"
    assert net.state(T) is AgreedState.UP
    net.canaries("huginn", True)
    net.rounds(T, results(PAIR, True), 2)
    net.advance(1_000)
    assert net.notices() == ["NODE_ISOLATED", "PEER_BACK"]


def test_a_silent_peer_makes_each_side_decide_alone_with_stricter_confirmation(
    net: Net,
) -> None:
    net.partition("huginn", "muninn")
    net.advance(net.settings.peer_timeout_ms + 1)
    assert net.cores["muninn"].voters(net.now_ms) == {"muninn"}
    # Two failures are enough together, not alone.
    net.rounds(T, {"muninn": False}, 2)
    assert net.notices(T) == []
    assert net.state(T, "muninn") is AgreedState.PARTIAL
    net.rounds(T, {"muninn": False}, 2)
    assert net.notices(T) == []  # still waits for a canary pass after the last failure
    net.canaries("muninn", True)
    assert net.state(T, "muninn") is AgreedState.DOWN
    # The claim cannot reach the silent peer: post once the ack wait is over.
    assert net.notices(T) == []
    net.advance(net.settings.claim_ack_wait_ms)
    assert net.notices(T) == ["DOWN"]
    sender, event = net.posts[-1]
    assert sender == "muninn"
    assert event.mode is Mode.SINGLE_VANTAGE


def test_a_silent_peer_that_saw_the_target_up_holds_a_one_sided_streak(net: Net) -> None:
    # Huginn sees failures, Muninn re-checks and sees it up, then goes silent.
    net.check("huginn", T, False)
    net.check("muninn", T, True)
    net.partition("huginn", "muninn")
    net.advance(net.settings.peer_timeout_ms + 1)
    net.rounds(T, {"huginn": False}, 5)
    net.canaries("huginn", True)
    assert net.state(T, "huginn") is AgreedState.PARTIAL
    assert net.notices(T) == []


def test_flapping_gives_one_note_when_it_starts_and_one_when_it_settles(net: Net) -> None:
    for i in range(16):
        net.round(T, results(PAIR, i % 2 == 0))
    assert net.state(T) is AgreedState.FLAPPING
    for _ in range(30):
        net.round(T, results(PAIR, True))
    assert net.state(T) is AgreedState.FLAPPING  # calm, but not calm for long enough
    for _ in range(net.settings.flap_calm_ms // 10_000):
        net.round(T, results(PAIR, True))
    assert net.state(T) is AgreedState.UP
    assert net.notices(T) == ["FLAPPING_STARTED", "FLAPPING_SETTLED"]


def test_flapping_ends_when_most_voters_have_settled_not_the_first() -> None:
    """Huginn's detector settles a few checks before Muninn's. Ending the
    flapping then would start it again the moment Huginn drops out (a crash)
    and Muninn, still flapping, votes alone: a second "started" for one
    episode. It starts with most voters and ends with most."""
    up = Verdict(VerdictState.UP, checked=Hlc(900_000, 0, "huginn"))
    flapping = Verdict(
        VerdictState.UP,
        checked=Hlc(900_000, 0, "muninn"),
        flap=FlapHistory("1010", flapping=True),
        flap_since=Hlc(600_000, 0, "muninn"),
    )
    both = {"huginn", "muninn"}
    passed = {n: Hlc(900_000, 0, n) for n in both}

    def state(current: AgreedState, views: dict[str, Verdict], voters: set[str]) -> AgreedState:
        found = assess(current, views, voters, 2, passed, Settings())
        assert found is not None
        return found.state

    one_of_two = {"huginn": up, "muninn": flapping}
    assert state(AgreedState.FLAPPING, one_of_two, both) is AgreedState.FLAPPING
    assert state(AgreedState.FLAPPING, one_of_two, {"muninn"}) is AgreedState.FLAPPING
    assert state(AgreedState.FLAPPING, {"huginn": up, "muninn": up}, both) is AgreedState.UP
    # Starting still takes most: one voter of two flapping starts nothing.
    assert state(AgreedState.UP, one_of_two, both) is AgreedState.UP


def test_maintenance_records_but_sends_nothing(net: Net) -> None:
    for name in PAIR:
        net.run(name, net.cores[name].set_maintenance(T, True, net.now_ms))
    net.rounds(T, results(PAIR, False), 4)
    assert net.state(T) is AgreedState.MAINTENANCE
    assert net.notices(T) == []


def test_three_nodes_down_by_majority_partial_below_it() -> None:
    names = ("node1", "node2", "node3")
    net = Net(names, (T,))
    net.start()
    net.rounds(T, results(names, True), 2)
    net.rounds(T, {"node1": False, "node2": True, "node3": True}, 3)
    assert net.state(T) is AgreedState.PARTIAL
    net.rounds(T, {"node1": False, "node2": False, "node3": True}, 3)
    assert net.state(T) is AgreedState.DOWN
    assert net.notices(T) == ["DOWN"]


def test_both_nodes_offline_post_nothing(net: Net) -> None:
    for name in PAIR:
        net.canaries(name, False)
    net.rounds(T, results(PAIR, False), 6)
    net.advance(10 * 60_000)
    assert net.notices() == []


def test_illegal_moves_name_the_state_and_the_event() -> None:
    up = AgreedRecord(AgreedState.UP)
    with pytest.raises(IllegalTransition, match="event assess UP is not allowed in state UP"):
        advance(up, Assessment(AgreedState.UP, Mode.QUORUM, None, ("huginn",)))
    with pytest.raises(IllegalTransition, match=r"note partial.*state UP"):
        note_partial(up, "abc")


@pytest.mark.parametrize(("shift_ms", "contradicted"), [
    ({}, True),  # read as stamped: the peer's UP looks newer than our streak
    ({"huginn": -300_000}, False),  # in one time it came long before it
])  # fmt: skip
def test_a_peer_clock_ahead_does_not_make_its_last_up_contradict_us(
    shift_ms: dict[str, int], contradicted: bool
) -> None:
    # huginn's clock runs five minutes ahead: its last UP, stamped 4 s after
    # muninn's streak began by huginn's clock, came 296 s before it in one time.
    up = Verdict(VerdictState.UP, checked=Hlc(604_000, 0, "huginn"), stale=True)
    down = Verdict(VerdictState.DOWN, since=Hlc(600_000, 0, "muninn"), fails=4,
                   streak_start=Hlc(600_000, 0, "muninn"), last_ok=False,
                   checked=Hlc(640_000, 0, "muninn"))  # fmt: skip
    passed = {"muninn": Hlc(650_000, 0, "muninn")}
    found = assess(AgreedState.PARTIAL, {"huginn": up, "muninn": down}, {"muninn"}, 2,
                   passed, Settings(), shift_ms=shift_ms)  # fmt: skip
    assert found is not None and found.mode is Mode.SINGLE_VANTAGE
    assert found.state is (AgreedState.PARTIAL if contradicted else AgreedState.DOWN)


@pytest.mark.parametrize(("last_ok", "contradicted"), [
    (True, True),  # its last check, after our streak began, answered
    (False, False),  # it failed too, once, then the peer fell silent
])  # fmt: skip
def test_a_silent_peers_failing_recheck_does_not_contradict_us(
    last_ok: bool, contradicted: bool
) -> None:
    # Huginn re-checked on Muninn's first failure 1 s later and crashed. Its
    # verdict is still UP (one failure moves nothing), but what it last saw
    # is the target failing: Muninn, alone, pages once it is sure.
    recheck = Hlc(601_000, 0, "huginn")
    up = Verdict(VerdictState.UP, last_ok=last_ok, checked=recheck, confirmed=recheck,
                 before_streak_ms=570_000 if not last_ok else None)  # fmt: skip
    down = Verdict(VerdictState.DOWN, since=Hlc(600_000, 0, "muninn"), fails=4,
                   streak_start=Hlc(600_000, 0, "muninn"), last_ok=False,
                   checked=Hlc(640_000, 0, "muninn"))  # fmt: skip
    passed = {"muninn": Hlc(650_000, 0, "muninn")}
    found = assess(AgreedState.PARTIAL, {"huginn": up, "muninn": down}, {"muninn"}, 2,
                   passed, Settings())  # fmt: skip
    assert found is not None and found.mode is Mode.SINGLE_VANTAGE
    assert found.state is (AgreedState.PARTIAL if contradicted else AgreedState.DOWN)
