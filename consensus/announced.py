"""What the pair has announced, as the log holds it: each event and each
acknowledgement, with when it was decided. The same on every node that
holds the same log: the event's anchor, an acknowledgement's own time (and
only for an event without either, when the entry was written)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from consensus import keys
from consensus.errors import InvalidEntry
from consensus.events import Event
from consensus.lww import Entry, JsonValue


@dataclass(frozen=True, slots=True)
class Announced:
    at_ms: int
    # One of the two: an event, or the id of the event acknowledged.
    event: Event | None = None
    acknowledged: str | None = None
    by: JsonValue = None
    note: JsonValue = None


def announced(entries: Iterable[Entry]) -> list[Announced]:
    """The events and acknowledgements among entries; others are skipped."""
    found = []
    for entry in entries:
        if entry.tombstone:
            continue
        event_id = keys.suffix(entry.key, keys.EVENT)
        if event_id is not None:
            try:
                event = Event.from_value(event_id, entry.value)
            except InvalidEntry:
                continue
            at_ms = event.at_ms if event.at_ms is not None else entry.hlc.wall_ms
            found.append(Announced(at_ms, event=event))
            continue
        acked = keys.suffix(entry.key, keys.ACK)
        if acked is not None and isinstance(entry.value, dict):
            at = entry.value.get("at_ms")
            at_ms = at if isinstance(at, int) and not isinstance(at, bool) else entry.hlc.wall_ms
            by, note = entry.value.get("by"), entry.value.get("note")
            found.append(Announced(at_ms, acknowledged=acked, by=by, note=note))
    return found
