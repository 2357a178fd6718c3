"""Icinga-style flap detection over the last 20 check results.

Each result records whether the state changed; recent changes weigh more
(0.8 for the oldest up to 1.18 for the newest). Flapping starts above the
high threshold and ends below the low one, so it does not itself flap.
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOW = 20


@dataclass(frozen=True, slots=True)
class FlapHistory:
    # '1' where a result changed the state, oldest first, at most WINDOW long.
    changes: str = ""
    flapping: bool = False

    def percent(self) -> float:
        padded = self.changes.rjust(WINDOW, "0")
        weighted = sum(0.8 + 0.02 * i for i, bit in enumerate(padded) if bit == "1")
        return 100.0 * weighted / WINDOW

    def record(self, changed: bool, high_pct: float, low_pct: float) -> FlapHistory:
        changes = (self.changes + ("1" if changed else "0"))[-WINDOW:]
        pct = FlapHistory(changes).percent()
        flapping = pct >= low_pct if self.flapping else pct > high_pct
        return FlapHistory(changes, flapping)
