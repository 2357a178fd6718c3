"""How far this node's own clock is off, from the time its targets tell.

A pair cannot tell which of two disagreeing clocks is right. The servers a
node checks can: every HTTP answer carries a ``Date`` header from a clock of
its own. The median offset over many distinct targets (a hostile or wrong
minority cannot move it) says how far this node's clock is off; history is
stamped in that corrected time, so a node whose clock is minutes off still
tells outages at the times they happened. Below ``TRUST_MS`` the estimate
is noise of a one-second header and is not applied.

A clock that was off a quarter-hour ago still is, unless it stepped: while
too few fresh servers answer (the node's network is down, or it has just
started), the last estimate they gave is carried, moved with every step the
node saw. It survives a restart in the node's health entry, so the moves a
node decides in its first seconds back are stamped in true time too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median

MIN_SOURCES = 3
TRUST_MS = 2_000
# A sample older than this says nothing of the clock now on its own; the
# estimate it gave is carried instead.
FRESH_MS = 15 * 60_000
MAX_SOURCES = 101


@dataclass
class TimeReference:
    """The latest offset per source: (their time minus ours, when taken)."""

    _offsets: dict[str, tuple[int, int]] = field(default_factory=dict)
    # The last estimate enough fresh sources gave, or the one carried over a
    # restart; None while nothing is known.
    carried_ms: int | None = None

    def observe(self, source: str, their_ms: int, now_ms: int) -> None:
        if source not in self._offsets and len(self._offsets) >= MAX_SOURCES:
            oldest = min(self._offsets, key=lambda s: self._offsets[s][1])
            del self._offsets[oldest]
        self._offsets[source] = (their_ms - now_ms, now_ms)
        fresh = self._fresh(now_ms)
        if fresh is not None:
            self.carried_ms = fresh

    def forget(self, source: str) -> None:
        self._offsets.pop(source, None)

    def stepped(self, delta_ms: int) -> None:
        """Our wall clock jumped by delta_ms: every server is now that much
        less ahead of it."""
        self._offsets = {
            source: (off - delta_ms, at + delta_ms) for source, (off, at) in self._offsets.items()
        }
        if self.carried_ms is not None:
            self.carried_ms -= delta_ms

    def error_ms(self, now_ms: int) -> int:
        """What to add to this node's clock to get the servers' time: from
        enough fresh sources, else the last estimate they gave; 0 when
        nothing is known, or when within TRUST_MS."""
        offset = self._fresh(now_ms)
        if offset is None:
            offset = self.carried_ms or 0
        return offset if abs(offset) >= TRUST_MS else 0

    def _fresh(self, now_ms: int) -> int | None:
        fresh = [off for off, at in self._offsets.values() if now_ms - at <= FRESH_MS]
        return int(median(fresh)) if len(fresh) >= MIN_SOURCES else None
