"""Each subject's events in the order decided; the clock's error from the
time targets tell."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from consensus.agreement import Notice
from consensus.hlc import Hlc
from consensus.node import NodeCore
from consensus.order import HOLD_MS, EventOrder
from consensus.reference import MIN_SOURCES, TRUST_MS, TimeReference


def test_a_later_event_waits_for_earlier_ones_of_its_subject_only() -> None:
    order = EventOrder()
    order.place("down", "web", Notice.DOWN, Hlc(1_000, 0, "huginn"))
    order.place("up", "web", Notice.UP, Hlc(2_000, 0, "muninn"))
    order.place("other", "shop", Notice.DOWN, Hlc(1_500, 0, "huginn"))
    order.place("tls", "web", Notice.TLS_EXPIRING, Hlc(500, 0, "huginn"))
    assert order.earlier("up") == ["down"]
    assert order.earlier("down") == []
    assert order.later("down") == ["up"]
    assert order.earlier("tls") == [] and "tls" not in order.later("down")


def test_a_note_is_superseded_by_anything_newer_of_its_target() -> None:
    order = EventOrder()
    order.place("note", "web", Notice.PARTIAL_LASTING, Hlc(1_000, 0, "muninn"))
    assert not order.superseded("note")
    order.place("up", "web", Notice.UP, Hlc(2_000, 0, "huginn"))
    assert order.superseded("note")
    assert not order.superseded("up")


def test_two_moves_alike_from_two_nodes_are_twins_but_reminders_never() -> None:
    """Both sides of a cut decide DOWN: one move, told once. Reminder 3
    after reminder 2, each decided by whichever node ticked first, is the
    next reminder (their ids differ by round): both go out."""
    order = EventOrder()
    order.place("down-h", "web", Notice.DOWN, Hlc(1_000, 0, "huginn"))
    order.place("down-m", "web", Notice.DOWN, Hlc(9_000, 0, "muninn"))
    assert order.twin_before("down-m") == "down-h"
    for n, node in enumerate(("huginn", "muninn", "huginn"), start=1):
        order.place(f"still-{n}", "web", Notice.STILL_DOWN, Hlc(60_000 * n, 0, node))
    assert [order.twin_before(f"still-{n}") for n in (1, 2, 3)] == [None, None, None]
    order.place("weekly-1", "report:ops", Notice.WEEKLY_REPORT, Hlc(1, 0, "huginn"))
    order.place("weekly-2", "report:ops", Notice.WEEKLY_REPORT, Hlc(2, 0, "muninn"))
    assert order.twin_before("weekly-2") is None


def test_an_event_long_before_holds_nothing_back() -> None:
    order = EventOrder()
    order.place("old", "web", Notice.DOWN, Hlc(1_000, 0, "huginn"))
    order.place("new", "web", Notice.UP, Hlc(1_000 + HOLD_MS + 1, 0, "huginn"))
    assert order.earlier("new") == []


@given(
    st.integers(min_value=-3_600_000, max_value=3_600_000),
    st.lists(st.integers(min_value=-(10**9), max_value=10**9), max_size=4),
)
def test_a_minority_of_lying_servers_cannot_move_the_estimate(
    true_ms: int, lies: list[int]
) -> None:
    reference = TimeReference()
    now = 10**12
    honest = len(lies) + MIN_SOURCES
    for i in range(honest):
        reference.observe(f"honest{i}", now + true_ms + (i % 3) * 300, now)
    for i, lie in enumerate(lies):
        reference.observe(f"liar{i}", now + lie, now)
    error = reference.error_ms(now)
    if abs(true_ms) >= TRUST_MS + 600:
        assert abs(error - true_ms) <= 600
    elif abs(true_ms) < TRUST_MS - 600:
        assert error == 0


def test_too_few_or_stale_sources_say_nothing() -> None:
    reference = TimeReference()
    now = 10**12
    for i in range(MIN_SOURCES - 1):
        reference.observe(f"t{i}", now + 300_000, now)
    assert reference.error_ms(now) == 0
    reference.observe("t9", now + 300_000, now)
    assert reference.error_ms(now) == 300_000
    later = now + 16 * 60_000
    assert reference.error_ms(later) == 300_000, "a quarter-hour on, the last estimate is carried"
    reference.stepped(300_000)
    assert reference.error_ms(later) == 0, "until the clock steps forward to the servers' time"
    fresh = TimeReference()
    fresh.observe("t0", now + 300_000, now)
    assert fresh.error_ms(later) == 0, "one server alone never gave an estimate"


def test_the_estimate_survives_a_restart_in_the_health_entry() -> None:
    """Muninn's clock is five minutes ahead; its targets said so. It
    restarts: the moves it decides before any target answered again are
    stamped in true time all the same."""
    from tests.unit.pair import Net

    net = Net(("huginn", "muninn"), ("blog",))
    net.start()
    muninn = net.cores["muninn"]
    for i in range(MIN_SOURCES):
        muninn.targets.add(f"s{i}")
        muninn.server_time_observed(f"s{i}", net.now_ms - 300_000, net.now_ms)
    net.advance(net.settings.heartbeat_interval_ms)
    net.sync()
    assert muninn.health_of("muninn").clock_error_ms == -300_000
    assert net.cores["huginn"].health_of("muninn").clock_error_ms == -300_000, "published"
    later = net.now_ms + 3_600_000
    again = NodeCore("muninn", net.names, net.targets, net.settings, later, log=muninn.log)
    assert again.reference.error_ms(later) == -300_000
    again.time_stepped(-300_000)
    assert again.reference.error_ms(later) == 0, "a step back of five minutes set it right"


def test_an_event_decided_after_one_stamped_by_a_fast_clock_comes_after_it() -> None:
    """Muninn's clock runs five minutes ahead: its DOWN carries a stamp from
    the future. Huginn's UP, decided after it, must still come after it."""
    from tests.unit.pair import Net, results

    net = Net(("huginn", "muninn"), ("blog",))
    net.start()
    net.rounds("blog", results(("huginn", "muninn"), True), 2)
    huginn, muninn = net.cores["huginn"], net.cores["muninn"]
    down = Hlc(net.now_ms + 300_000, 0, "muninn")
    muninn.order.place("down-id", "blog", Notice.DOWN, down)
    huginn.order.place("down-id", "blog", Notice.DOWN, down)
    net.rounds("blog", results(("huginn", "muninn"), False), 3)
    net.rounds("blog", results(("huginn", "muninn"), True), 3)
    later = [e for e in huginn.log.items("event/") if e.hlc > down]
    assert later, "every event decided after the fast-clock one is stamped after it"
    for entry in huginn.log.items("event/"):
        assert entry.hlc > down


def test_an_event_learnt_of_after_a_later_one_was_told_is_never_posted() -> None:
    """Huginn, cut off, decided a DOWN that nobody heard; Muninn meanwhile
    told users the target's later UP. When Huginn's DOWN arrives it would
    say a state that is over, out of order: it is superseded, not posted."""
    from tests.unit.pair import Net

    net = Net(("huginn", "muninn"), ("blog",))
    net.start()
    muninn = net.cores["muninn"]
    start = net.now_ms
    muninn.order.place("up", "blog", Notice.UP, Hlc(start + 60_000, 0, "muninn"))
    muninn.order.place("down", "blog", Notice.DOWN, Hlc(start, 0, "huginn"))
    assert not muninn.superseded("down"), "the UP is not told yet: the DOWN holds it back"
    assert muninn.order.earlier("up") == ["down"]
    muninn.publish_succeeded("up", start + 61_000)
    assert muninn.superseded("down")
    assert not muninn.should_post("down")
    assert not muninn.superseded("up")
