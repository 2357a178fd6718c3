"""Who posts which notification, and when the standby takes over.

One designated sender per event, by rendezvous hashing over the event's
voters, so both nodes name the same sender without talking. The sender claims,
waits briefly for the peer to acknowledge the claim, posts, and records
``sent``. Every other node is a standby: it posts only when neither ``sent``
nor a claim held by a live node that can still reach ntfy appears within the
failover time. A claim is a lease: its holder keeps it only while it is
delivering, so a sender cut off from ntfy (but not from its peer) never holds
a page back. A node whose claim was taken becomes a standby itself, so the
event is never dropped when the taker fails in turn.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass, replace
from enum import StrEnum

from consensus.errors import IllegalTransition


def designated_sender(event_id: str, candidates: Collection[str]) -> str:
    """Rendezvous (highest random weight) hashing: stable, no coordination."""
    if not candidates:
        raise ValueError(f"event {event_id}: no candidate sender")

    def weight(node: str) -> bytes:
        return hashlib.sha256(f"{event_id}/{node}".encode()).digest()

    return max(sorted(candidates), key=weight)


class Role(StrEnum):
    SENDER = "SENDER"
    STANDBY = "STANDBY"


class DispatchState(StrEnum):
    WAITING = "WAITING"  # standby: watching for a claim or sent
    CLAIMED = "CLAIMED"  # our claim is written; waiting for the peer's ack
    POSTING = "POSTING"  # handed to the notifier
    SENT = "SENT"  # ntfy accepted our post
    YIELDED = "YIELDED"  # someone else sent it, or holds a live claim


class Move(StrEnum):
    TAKE_OVER = "take over"
    CLAIM_ACKED = "claim acknowledged"
    ACK_TIMEOUT = "ack wait over"
    POSTED = "posted"
    SENT_SEEN = "sent seen"
    CLAIM_LOST = "claim lost"


W, C, P, T, Y = (
    DispatchState.WAITING,
    DispatchState.CLAIMED,
    DispatchState.POSTING,
    DispatchState.SENT,
    DispatchState.YIELDED,
)

TRANSITIONS: dict[tuple[DispatchState, Move], DispatchState] = {
    (W, Move.TAKE_OVER): C,
    (W, Move.SENT_SEEN): Y,
    (C, Move.CLAIM_ACKED): P,
    (C, Move.ACK_TIMEOUT): P,
    (C, Move.SENT_SEEN): Y,
    # Our claim was taken (we stopped delivering, or both claimed at once):
    # we stand by in case the taker fails too.
    (C, Move.CLAIM_LOST): W,
    (P, Move.CLAIM_LOST): W,
    # A post already in flight still completes; the notifier asks before
    # each attempt, so a peer's sent stops further attempts.
    (P, Move.POSTED): T,
    (P, Move.SENT_SEEN): Y,
    (T, Move.SENT_SEEN): T,
    (T, Move.POSTED): T,
    (Y, Move.SENT_SEEN): Y,
    (Y, Move.POSTED): T,
    # A post that went out before a restart completes whatever we were doing.
    (W, Move.POSTED): T,
    (C, Move.POSTED): T,
}


@dataclass(frozen=True, slots=True)
class Dispatch:
    """One node's part in delivering one event."""

    event_id: str
    role: Role
    state: DispatchState
    deadline_ms: int

    def move(self, move: Move, deadline_ms: int | None = None) -> Dispatch:
        nxt = TRANSITIONS.get((self.state, move))
        if nxt is None:
            raise IllegalTransition(f"dispatch {self.event_id}", self.state.value, move.value)
        return replace(
            self, state=nxt, deadline_ms=self.deadline_ms if deadline_ms is None else deadline_ms
        )

    @property
    def open(self) -> bool:
        """Still waiting on a deadline of ours."""
        return self.state in (W, C)

    @property
    def finished(self) -> bool:
        """Nothing left to do: ours was sent, or someone else's was."""
        return self.state in (T, Y)


def start(
    event_id: str,
    node: str,
    candidates: Collection[str],
    now_ms: int,
    failover_ms: int,
    subject: str | None = None,
) -> Dispatch:
    """The first step: the sender claims at once, a standby waits.

    The sender is chosen by subject when one is given: all events of one
    target go through the same node, whose outbox keeps them in order (a
    DOWN held back by an ntfy outage is never overtaken by its UP)."""
    if node in candidates and designated_sender(subject or event_id, candidates) == node:
        return Dispatch(event_id, Role.SENDER, W, now_ms)
    return Dispatch(event_id, Role.STANDBY, W, now_ms + failover_ms)


def standby_should_take_over(
    claimant: str | None,
    claimant_live: bool,
    sent: bool,
    node: str,
    claimant_delivering: bool = True,
) -> bool:
    """At the failover deadline: post unless it was sent or a live node
    that is still delivering to ntfy holds the claim."""
    if sent:
        return False
    if claimant is None or claimant == node:
        return True
    return not (claimant_live and claimant_delivering)
