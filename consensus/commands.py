"""What the core asks the shell to do. Facts go in, these come out."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ParamSpec

from consensus import keys
from consensus.events import Event
from consensus.lww import Entry

P = ParamSpec("P")


@dataclass(frozen=True, slots=True)
class Push:
    """Send these entries to every peer now, without waiting for the next sync."""

    entries: tuple[Entry, ...]

    def claims_by(self, node: str) -> dict[str, str]:
        """node's own claims among the entries (entry key -> the event id,
        or ``<hook>/<event id>`` for a webhook's delivery): once
        a peer has taken one, tell node's core (``claim_acknowledged``), so
        it posts without waiting out its timer. A push that cannot go may
        drop other entries to the next pull, never these."""
        found = {}
        for entry in self.entries:
            if entry.origin != node:
                continue
            # A webhook's claim names its delivery, ``<hook>/<event id>``.
            claimed = keys.suffix(entry.key, keys.CLAIM) or keys.suffix(entry.key, keys.HOOK_CLAIM)
            if claimed is not None:
                found[entry.key] = claimed
        return found


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
    """Hand this event to the outbox for posting to ntfy, or with hook, to
    that webhook."""

    event: Event
    hook: str | None = None


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


@dataclass(frozen=True, slots=True)
class AgreedMoved:
    """This node wrote the target's agreed state (a move, or a note on one)."""

    target: str
    state: str
    mode: str
    event: str | None


@dataclass(frozen=True, slots=True)
class TargetsChanged:
    """The targets the log holds changed (written here or merged): the shell
    schedules checks for what the log now says."""


@dataclass(frozen=True, slots=True)
class WindowsChanged:
    """Maintenance windows or silences changed: the shell looks again at
    which are open."""


Command = (
    Push
    | Recheck
    | CheckCanaries
    | Publish
    | Warn
    | HistoryMoved
    | AgreedMoved
    | TargetsChanged
    | WindowsChanged
)


@dataclass(slots=True)
class Step:
    """The result of one fact: entries to commit in one transaction (local
    writes and merged remote entries), then commands to carry out."""

    to_commit: list[Entry] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)

    def extend(self, other: Step) -> None:
        self.to_commit.extend(other.to_commit)
        self.commands.extend(other.commands)


def told(step: Step) -> Step:
    """The step with what its entries change for the shell said as commands
    (once each), so no shell reads key names to decide."""
    if not step.to_commit:
        return step
    changed = [entry.key for entry in step.to_commit]
    said = {type(command) for command in step.commands}
    if TargetsChanged not in said and any(k.startswith(keys.TARGET) for k in changed):
        step.commands.append(TargetsChanged())
    windows = (keys.MAINTENANCE, keys.SILENCE)
    if WindowsChanged not in said and any(k.startswith(windows) for k in changed):
        step.commands.append(WindowsChanged())
    return step


def telling(method: Callable[P, Step]) -> Callable[P, Step]:
    """For the core's public methods: the Step they return is ``told``."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Step:
        return told(method(*args, **kwargs))

    return wrapper
