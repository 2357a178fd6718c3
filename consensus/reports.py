"""When the weekly report is due, and its events: one per topic, with ids
both nodes compute alike (topic and week), so one node posts each once
through the usual claim and failover. What a report says is the shell's
to write from the agreed history when it goes into the outbox."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from consensus import keys
from consensus.agreement import Mode, Notice
from consensus.events import Event, event_id
from consensus.hlc import Hlc
from consensus.lww import JsonValue
from consensus.settings import DAY_MS

WEEK_MS = 7 * DAY_MS
# 1970-01-01 was a Thursday: weeks begin three days before.
MONDAY_OFFSET_MS = 3 * DAY_MS


def week_start_ms(at_ms: int) -> int:
    """Monday 00:00 UTC of the week holding at_ms."""
    return at_ms - (at_ms + MONDAY_OFFSET_MS) % WEEK_MS


def next_due_ms(after_ms: int, at_in_week_ms: int) -> int:
    """The first time the report is due after after_ms."""
    due = week_start_ms(after_ms) + at_in_week_ms
    return due if due > after_ms else due + WEEK_MS


def report_events(topics: Iterable[str], due_ms: int, voters: tuple[str, ...]) -> list[Event]:
    """The reports due at due_ms, one per topic, of the week before it."""
    anchor = Hlc(due_ms, 0, "")
    found = []
    for topic in sorted(set(topics)):
        subject = keys.report_subject(topic)
        id_ = event_id(subject, Notice.WEEKLY_REPORT, "REPORT", anchor, Mode.QUORUM)
        detail: dict[str, JsonValue] = {
            "topic": topic,
            "week_start_ms": due_ms - WEEK_MS,
            "week_end_ms": due_ms,
        }
        event = Event(id_, subject, Notice.WEEKLY_REPORT, "REPORT", "", anchor, Mode.QUORUM, voters)
        found.append(replace(event, detail=detail))
    return found
