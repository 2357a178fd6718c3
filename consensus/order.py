"""The order of one subject's events, whichever node posts them.

Events of one target reach ntfy in the order they were decided (the hlc of
their log entry): an event waits while an earlier one of its subject is
unsent anywhere. A note that a later event made moot (a PARTIAL that lasted,
a reminder, once anything newer happened to the target) is never posted
late: it is superseded. So is an event that a node cut off decided and
that its subject's later event, already told, overtook: told now, it would
say a state that is over. A certificate's expiry is no move of the target
and keeps no order.

An earlier event holds a later one back only if it was decided within
``HOLD_MS`` before it: one that ntfy refuses for good must not silence the
target for ever.

Two nodes cut apart may each decide the same move (both see the target
come back, each alone): two events, next to each other in the subject's
order, that tell the same thing. They are twins; users are told once.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from consensus.agreement import Notice
from consensus.hlc import Hlc

HOLD_MS = 3_600_000
UNORDERED = frozenset({Notice.TLS_EXPIRING, Notice.DOMAIN_EXPIRING})
# Notes about a state that a later event of the target makes moot.
MOOT_WHEN_LATER = frozenset({Notice.PARTIAL_LASTING, Notice.STILL_DOWN})
# Timed notices whose ids both nodes compute alike (the outage and its
# round, the week): one decided on both sides is one event, so two of them
# are never twins. Reminder 3 after reminder 2 from the other node is the
# next reminder, not the same one.
NEVER_TWINS = frozenset(
    {
        Notice.STILL_DOWN,
        Notice.ESCALATED,
        Notice.TLS_EXPIRING,
        Notice.DOMAIN_EXPIRING,
        Notice.WEEKLY_REPORT,
    }
)


@dataclass(frozen=True, slots=True)
class Placed:
    event_id: str
    notice: Notice
    decided: Hlc


@dataclass
class EventOrder:
    """Each subject's ordered events, by when they were decided."""

    _by_subject: dict[str, dict[str, Placed]] = field(default_factory=dict)
    _subject_of: dict[str, str] = field(default_factory=dict)

    def place(self, event_id: str, subject: str, notice: Notice, decided: Hlc) -> None:
        """Record (or move, when the log's entry changed) one event."""
        if notice in UNORDERED:
            return
        self._by_subject.setdefault(subject, {})[event_id] = Placed(event_id, notice, decided)
        self._subject_of[event_id] = subject

    def latest(self, subject: str) -> Hlc | None:
        """When the newest ordered event of the subject was decided."""
        events = self._by_subject.get(subject)
        return max((p.decided for p in events.values()), default=None) if events else None

    def newest(self, subject: str, notices: Collection[Notice]) -> str | None:
        """The newest ordered event of the subject of one of notices (its id)."""
        found = [p for p in self._by_subject.get(subject, {}).values() if p.notice in notices]
        return max(found, key=lambda p: p.decided).event_id if found else None

    def subject_of(self, event_id: str) -> str | None:
        return self._subject_of.get(event_id)

    def _placed(self, event_id: str) -> tuple[Placed, dict[str, Placed]] | None:
        subject = self._subject_of.get(event_id)
        if subject is None:
            return None
        events = self._by_subject[subject]
        return events[event_id], events

    def superseded(self, event_id: str) -> bool:
        """A moot note: something newer happened to its target since."""
        found = self._placed(event_id)
        if found is None:
            return False
        placed, events = found
        return placed.notice in MOOT_WHEN_LATER and any(
            other.decided > placed.decided for other in events.values()
        )

    def earlier(self, event_id: str) -> list[str]:
        """Events of the same subject decided before this one, within the hold."""
        found = self._placed(event_id)
        if found is None:
            return []
        placed, events = found
        floor = placed.decided.wall_ms - HOLD_MS
        return [
            other.event_id
            for other in sorted(events.values(), key=lambda p: p.decided)
            if other.decided < placed.decided and other.decided.wall_ms >= floor
        ]

    def twin_before(self, event_id: str) -> str | None:
        """The event right before this one in its subject's order when it
        tells the same (the same notice, decided by another node within the
        hold): what the other side of a cut decided alike."""
        found = self._placed(event_id)
        if found is None:
            return None
        placed, events = found
        ordered = sorted(events.values(), key=lambda p: p.decided)
        at = ordered.index(placed)
        if at == 0:
            return None
        other = ordered[at - 1]
        alike = (
            other.notice is placed.notice
            and placed.notice not in NEVER_TWINS
            and other.decided.node != placed.decided.node
        )
        close = placed.decided.wall_ms - other.decided.wall_ms <= HOLD_MS
        return other.event_id if alike and close else None

    def later(self, event_id: str) -> list[str]:
        """Events of the same subject decided after this one."""
        found = self._placed(event_id)
        if found is None:
            return []
        placed, events = found
        return [
            other.event_id
            for other in sorted(events.values(), key=lambda p: p.decided)
            if other.decided > placed.decided
        ]
