"""How far this node's own clock is off, from the time its targets tell.

A pair cannot tell which of two disagreeing clocks is right. The servers a
node checks can: every HTTP answer carries a ``Date`` header from a clock of
its own. The median offset over many distinct targets (a hostile or wrong
minority cannot move it) says how far this node's clock is off; history is
stamped in that corrected time, so a node whose clock is minutes off still
tells outages at the times they happened. Below ``TRUST_MS`` the estimate
is noise of a one-second header and is not applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median

MIN_SOURCES = 3
TRUST_MS = 2_000
# A sample older than this says nothing of the clock now (it may have stepped).
FRESH_MS = 15 * 60_000
MAX_SOURCES = 101


@dataclass
class TimeReference:
    """The latest offset per source: (their time minus ours, when taken)."""

    _offsets: dict[str, tuple[int, int]] = field(default_factory=dict)

    def observe(self, source: str, their_ms: int, now_ms: int) -> None:
        if source not in self._offsets and len(self._offsets) >= MAX_SOURCES:
            oldest = min(self._offsets, key=lambda s: self._offsets[s][1])
            del self._offsets[oldest]
        self._offsets[source] = (their_ms - now_ms, now_ms)

    def forget(self, source: str) -> None:
        self._offsets.pop(source, None)

    def error_ms(self, now_ms: int) -> int:
        """What to add to this node's clock to get the servers' time; 0 when
        fewer than MIN_SOURCES fresh sources say, or when within TRUST_MS."""
        fresh = [off for off, at in self._offsets.values() if now_ms - at <= FRESH_MS]
        if len(fresh) < MIN_SOURCES:
            return 0
        offset = int(median(fresh))
        return offset if abs(offset) >= TRUST_MS else 0
