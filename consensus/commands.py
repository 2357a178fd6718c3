"""What the core asks the shell to do. Facts go in, these come out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from consensus.events import Event
from consensus.lww import Entry


@dataclass(frozen=True, slots=True)
class Push:
    """Send these entries to every peer now, without waiting for the next sync."""

    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class Recheck:
    """Check this target again after delay_ms (0: at once)."""

    target: str
    delay_ms: int


@dataclass(frozen=True, slots=True)
class CheckCanaries:
    """Check the canaries now: a failure may be our own network's."""


@dataclass(frozen=True, slots=True)
class Publish:
    """Hand this event to the outbox for posting to ntfy."""

    event: Event


@dataclass(frozen=True, slots=True)
class Warn:
    """Something the operator should read in the log."""

    what: str
    detail: Mapping[str, str | int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HistoryMoved:
    """The target's agreed history changed (a move made here or merged):
    the shell refreshes what it keeps derived from it."""

    target: str


Command = Push | Recheck | CheckCanaries | Publish | Warn | HistoryMoved


@dataclass(slots=True)
class Step:
    """The result of one fact: entries to commit in one transaction (local
    writes and merged remote entries), then commands to carry out."""

    written: list[Entry] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)

    def extend(self, other: Step) -> None:
        self.written.extend(other.written)
        self.commands.extend(other.commands)
