"""Icinga-style flap detection over the last 20 check results.

Each result records whether the state changed; recent changes weigh more
(0.8 for the oldest up to 1.18 for the newest). Flapping starts above the
high threshold and ends below the low one, so it does not itself flap.
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOW = 20
WEIGHTS = tuple(0.8 + 0.02 * i for i in range(WINDOW))


@dataclass(frozen=True, slots=True)
class FlapHistory:
    # '1' where a result changed the state, oldest first, at most WINDOW long.
    changes: str = ""
    flapping: bool = False

    @property
    def settled(self) -> bool:
        """A full window without a change: another steady result changes nothing."""
        return not self.flapping and len(self.changes) == WINDOW and "1" not in self.changes

    def percent(self) -> float:
        if "1" not in self.changes:
            return 0.0
        padded = self.changes.rjust(WINDOW, "0")
        weighted = sum(w for w, bit in zip(WEIGHTS, padded, strict=True) if bit == "1")
        return 100.0 * weighted / WINDOW

    def record(self, changed: bool, high_pct: float, low_pct: float) -> FlapHistory:
        changes = (self.changes + ("1" if changed else "0"))[-WINDOW:]
        pct = FlapHistory(changes).percent()
        flapping = pct >= low_pct if self.flapping else pct > high_pct
        return FlapHistory(changes, flapping)
