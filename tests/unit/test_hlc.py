"""The hybrid logical clock: total order, monotonic, restartable, skew-bounded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.errors import InvalidEntry
from consensus.hlc import Hlc, HybridClock

SKEW = 60_000
walls = st.integers(min_value=0, max_value=10**13)
remote = st.builds(Hlc, walls, st.integers(0, 50), st.sampled_from(["muninn", "node3"]))
ops = st.lists(st.one_of(st.tuples(st.just("tick"), walls), st.tuples(remote, walls)), max_size=60)


def apply(clock: HybridClock, op: tuple[object, int]) -> Hlc:
    what, now = op
    if what == "tick":
        return clock.tick(now)
    assert isinstance(what, Hlc)
    return clock.receive(what, now).hlc


@given(ops)
def test_every_timestamp_is_larger_than_the_last_unless_the_wall_clock_went_back(
    sequence: list[tuple[object, int]],
) -> None:
    clock = HybridClock("huginn", SKEW)
    last = clock.last
    for op in sequence:
        stamp = apply(clock, op)
        _, now = op
        assert stamp.node == "huginn"
        # Never further ahead of the wall clock than the bound.
        assert stamp.wall_ms - now <= SKEW
        if last.wall_ms - now <= SKEW:
            assert stamp > last
        else:
            assert clock.restarted_ahead_ms == last.wall_ms - now, "started again, and said so"
        last = stamp


@given(ops, ops)
def test_a_restart_from_the_persisted_value_never_goes_backwards(
    before: list[tuple[object, int]], after: list[tuple[object, int]]
) -> None:
    clock = HybridClock("huginn", SKEW)
    for op in before:
        apply(clock, op)
    persisted = clock.last
    restarted = HybridClock("huginn", SKEW, persisted)
    last = persisted
    for op in after:
        stamp = apply(restarted, op)
        _, now = op
        if last.wall_ms - now <= SKEW:
            assert stamp > last
        last = stamp


@given(remote, walls)
def test_a_received_timestamp_within_bounds_orders_after_the_remote(stamp: Hlc, now: int) -> None:
    clock = HybridClock("huginn", SKEW)
    got = clock.receive(stamp, now)
    if stamp.wall_ms - now <= SKEW:
        assert got.refused_skew_ms is None
        assert (got.hlc.wall_ms, got.hlc.logical) > (stamp.wall_ms, stamp.logical)


@given(walls, st.integers(min_value=SKEW + 1, max_value=10**9))
def test_a_far_future_remote_does_not_drag_the_clock_and_says_so(now: int, ahead: int) -> None:
    clock = HybridClock("huginn", SKEW)
    got = clock.receive(Hlc(now + ahead, 3, "muninn"), now)
    assert got.refused_skew_ms == ahead
    assert got.hlc.wall_ms == now


def test_receive_follows_the_paper_rules() -> None:
    clock = HybridClock("huginn", SKEW, Hlc(100, 4, "huginn"))
    # Remote ahead of us and of physical time: adopt its wall, logical + 1.
    assert clock.receive(Hlc(150, 7, "muninn"), 120).hlc == Hlc(150, 8, "huginn")
    # Same wall on both sides: the larger logical + 1.
    assert clock.receive(Hlc(150, 9, "muninn"), 120).hlc == Hlc(150, 10, "huginn")
    # Physical time moved past both: logical restarts.
    assert clock.receive(Hlc(150, 9, "muninn"), 200).hlc == Hlc(200, 0, "huginn")
    assert clock.tick(200) == Hlc(200, 1, "huginn")


def test_text_form_round_trips_and_bad_text_names_the_problem() -> None:
    stamp = Hlc(1_700_000_000_123, 7, "muninn")
    assert Hlc.decode(stamp.encode()) == stamp
    with pytest.raises(InvalidEntry, match=r"expected WALL_MS\.LOGICAL\.NODE"):
        Hlc.decode("yesterday")


def test_a_bad_max_skew_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="max_skew_ms: expected a positive number, got 0"):
        HybridClock("huginn", 0)
