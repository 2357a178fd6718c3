"""The rows a node keeps in its database, as the rest of the node reads them."""

from __future__ import annotations

from dataclasses import dataclass

from consensus.history import Stretch

# A row of the interval cache: one stretch of agreed history, as the core
# derives it from the log.
Interval = Stretch


@dataclass(frozen=True, slots=True)
class Rollup:
    target: str
    resolution: str
    bucket_ms: int
    checks: int
    ups: int
    latency_min_ms: float | None
    latency_avg_ms: float | None
    latency_max_ms: float | None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    event_id: str
    subject: str
    notice: str
    event: str  # the event as JSON
    status: str  # queued, posting, sent, yielded, refused, stale
    attempts: int
    last_error: str | None
    created_ms: int
    # While 'posting': the sequence id the post carried (a summary's, or None
    # for the event's own), to look it up on ntfy if the answer was lost.
    sequence_id: str | None = None


@dataclass(frozen=True, slots=True)
class HookRow:
    """One delivery of an event to one webhook: ntfy's row, less what only
    ntfy's posts need (the notice, the sequence id of a summary)."""

    hook: str
    event_id: str
    subject: str
    event: str  # the event as JSON
    status: str  # queued, posting, sent, yielded, refused, stale
    attempts: int
    last_error: str | None
    created_ms: int


@dataclass(frozen=True, slots=True)
class CheckRow:
    target: str
    at_ms: int
    ok: bool
    latency_ms: float | None
    reason: str
    # Facts beside the verdict, such as cert_days_left on every HTTPS check.
    details: dict[str, float | int | str] | None = None
