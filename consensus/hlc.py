"""Hybrid logical clock (Kulkarni et al., 2014).

A timestamp is ``(wall_ms, logical, node)``; compared as a tuple it is a total
order. The clock never reads time: every call is handed the physical time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from consensus.errors import InvalidEntry


class Hlc(NamedTuple):
    """One hybrid logical timestamp; tuple order is the total order."""

    wall_ms: int
    logical: int
    node: str

    def encode(self) -> str:
        """A text form that sorts like the tuple for equal-width walls."""
        return f"{self.wall_ms}.{self.logical}.{self.node}"

    @classmethod
    def decode(cls, text: str) -> Hlc:
        try:
            wall, logical, node = text.split(".", 2)
            return cls(int(wall), int(logical), node)
        except ValueError as exc:
            raise InvalidEntry(f"hlc {text!r}: expected WALL_MS.LOGICAL.NODE") from exc


ZERO = Hlc(0, 0, "")


@dataclass(frozen=True, slots=True)
class Received:
    """The outcome of merging a remote timestamp into the local clock."""

    hlc: Hlc
    # How far the remote wall time was ahead of ours when it was refused as a
    # clock source (more than max_skew_ms); None when it was within bounds.
    refused_skew_ms: int | None = None


class HybridClock:
    """The local clock of one node. Restartable from the last persisted value.

    Never more than ``max_skew_ms`` ahead of the wall clock it is handed:
    when it finds itself further ahead (the wall clock stepped back, or a
    restart from a value saved while it was stepped forward), it starts
    again from the wall clock and says so in ``restarted_ahead_ms``. What it
    stamped before stays ahead; a node overwriting such a key stamps just
    after it, so its own order of writes holds (see ``NodeCore._write_at``).
    """

    def __init__(self, node: str, max_skew_ms: int, last: Hlc = ZERO) -> None:
        if max_skew_ms <= 0:
            raise ValueError(f"max_skew_ms: expected a positive number, got {max_skew_ms}")
        self.node = node
        self.max_skew_ms = max_skew_ms
        # Restarting from a persisted value keeps the clock from going backwards.
        self._last = Hlc(last.wall_ms, last.logical, node)
        # How far ahead of the wall clock it was when it last started again
        # from it; the node reports it once and clears it.
        self.restarted_ahead_ms: int | None = None

    @property
    def last(self) -> Hlc:
        return self._last

    def _bound(self, now_ms: int) -> None:
        ahead_ms = self._last.wall_ms - now_ms
        # A wall clock before 1970 is not one to start again from.
        if ahead_ms > self.max_skew_ms and now_ms >= 0:
            self.restarted_ahead_ms = ahead_ms
            self._last = Hlc(now_ms, 0, self.node)

    def tick(self, now_ms: int) -> Hlc:
        """Timestamp a local event or a send."""
        self._bound(now_ms)
        last = self._last
        if now_ms > last.wall_ms:
            self._last = Hlc(now_ms, 0, self.node)
        else:
            self._last = Hlc(last.wall_ms, last.logical + 1, self.node)
        return self._last

    def receive(self, remote: Hlc, now_ms: int) -> Received:
        """Merge a remote timestamp; a far-future one does not drag the clock."""
        ahead_ms = remote.wall_ms - now_ms
        if ahead_ms > self.max_skew_ms:
            # Kept as data by the caller, but trusting it would pin our clock
            # in the future for everyone who syncs with us.
            return Received(self.tick(now_ms), refused_skew_ms=ahead_ms)
        self._bound(now_ms)
        last = self._last
        wall = max(last.wall_ms, remote.wall_ms, now_ms)
        if wall == last.wall_ms == remote.wall_ms:
            logical = max(last.logical, remote.logical) + 1
        elif wall == last.wall_ms:
            logical = last.logical + 1
        elif wall == remote.wall_ms:
            logical = remote.logical + 1
        else:
            logical = 0
        self._last = Hlc(wall, logical, self.node)
        return Received(self._last)
