"""Who sends: rendezvous hashing, the dispatch table, the standby's failover."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.dispatch import (
    TRANSITIONS,
    Dispatch,
    DispatchState,
    Move,
    Role,
    designated_sender,
    standby_should_take_over,
    start,
)
from consensus.errors import IllegalTransition

names = st.lists(st.sampled_from(["huginn", "muninn", "n3", "n4", "n5"]), min_size=1, unique=True)
ids = st.text("0123456789abcdef", min_size=8, max_size=24)


@given(ids, names, st.randoms())
def test_every_node_names_the_same_sender_from_the_same_voters(
    event: str, voters: list[str], rnd: object
) -> None:
    shuffled = list(voters)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    sender = designated_sender(event, voters)
    assert sender in voters
    assert designated_sender(event, shuffled) == sender
    roles = [start(event, n, voters, 0, 90_000).role for n in voters]
    assert roles.count(Role.SENDER) == 1


def test_senders_spread_over_the_pair() -> None:
    senders = [designated_sender(f"{i:024x}", ["huginn", "muninn"]) for i in range(400)]
    assert 150 < senders.count("huginn") < 250


def test_a_standby_waits_the_failover_time() -> None:
    record = start("e1", "huginn", ["muninn"], 1_000, 90_000)
    assert record.role is Role.STANDBY
    assert record.deadline_ms == 91_000


def test_standby_takes_over_only_without_a_live_claim_or_sent() -> None:
    assert standby_should_take_over(None, False, False, "huginn")
    assert not standby_should_take_over(None, False, True, "huginn")
    assert not standby_should_take_over("muninn", True, False, "huginn")
    assert standby_should_take_over("muninn", False, False, "huginn")


def test_moves_outside_the_table_raise_with_state_and_move() -> None:
    sent = Dispatch("e1", Role.SENDER, DispatchState.SENT, 0)
    with pytest.raises(IllegalTransition, match="take over is not allowed in state SENT"):
        sent.move(Move.TAKE_OVER)
    assert (DispatchState.SENT, Move.TAKE_OVER) not in TRANSITIONS


def test_every_state_can_finish() -> None:
    for state in DispatchState:
        assert any(s is state for s, _ in TRANSITIONS), state
