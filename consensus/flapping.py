"""Icinga-style flap detection over the last 20 check results.

Each result records whether the state changed; recent changes weigh more
(0.8 for the oldest up to 1.18 for the newest). Flapping starts above the
high threshold. It ends once the score has stayed below the low threshold,
with no change at all, for a calm period: a target that flips in bursts
gets one "started" and one "settled", not one per burst.
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
    # While flapping: since when the score has been low and nothing changed.
    calm_since_ms: int | None = None

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

    def record(
        self, changed: bool, at_ms: int, high_pct: float, low_pct: float, calm_ms: int
    ) -> FlapHistory:
        changes = (self.changes + ("1" if changed else "0"))[-WINDOW:]
        pct = FlapHistory(changes).percent()
        if not self.flapping:
            return FlapHistory(changes, pct > high_pct)
        if changed or pct >= low_pct:
            return FlapHistory(changes, True)
        calm_since = self.calm_since_ms if self.calm_since_ms is not None else at_ms
        if at_ms - calm_since >= calm_ms:
            return FlapHistory(changes, False)
        return FlapHistory(changes, True, calm_since)
