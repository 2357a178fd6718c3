"""Uptime from agreed-state intervals: exact seconds, not a count of checks.

Pure arithmetic over (state, start, end) stretches. Within a window, time in
MAINTENANCE is left out of the sum, and so is time nobody could judge
(UNKNOWN, or before the target was watched): uptime is the share of the
judged time that was not DOWN. PARTIAL (down from one side only) counts as
up, since visitors elsewhere were served; FLAPPING is reported as degraded
and counts as up too, with its seconds shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

DAY_MS = 86_400_000
WINDOWS_MS = {
    "24h": DAY_MS,
    "7d": 7 * DAY_MS,
    "30d": 30 * DAY_MS,
    "90d": 90 * DAY_MS,
    "365d": 365 * DAY_MS,
}
# Agreed states that make an incident, and that the incident list shows.
INCIDENT_STATES = ("DOWN", "PARTIAL", "FLAPPING")


class Stretch(Protocol):
    @property
    def state(self) -> str: ...
    @property
    def start_ms(self) -> int: ...
    @property
    def end_ms(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Uptime:
    window_start_ms: int
    window_end_ms: int
    seconds: dict[str, float] = field(default_factory=dict)
    incidents: int = 0

    @property
    def judged_s(self) -> float:
        left_out = self.seconds.get("MAINTENANCE", 0.0) + self.seconds.get("UNKNOWN", 0.0)
        return (self.window_end_ms - self.window_start_ms) / 1000 - left_out

    @property
    def down_s(self) -> float:
        return self.seconds.get("DOWN", 0.0)

    @property
    def percent(self) -> float | None:
        """None when no second of the window could be judged."""
        judged = self.judged_s
        if judged <= 0:
            return None
        return 100.0 * (judged - self.down_s) / judged


def uptime(stretches: Iterable[Stretch], start_ms: int, end_ms: int, now_ms: int) -> Uptime:
    """Seconds per agreed state within [start_ms, end_ms), and the incidents
    (DOWN stretches) that overlap it. An open stretch lasts until now_ms;
    time not covered by any stretch is UNKNOWN."""
    end_ms = min(end_ms, now_ms)
    if end_ms <= start_ms:
        return Uptime(start_ms, max(start_ms, end_ms), {}, 0)
    seconds: dict[str, float] = {}
    covered = 0
    incidents = 0
    for stretch in stretches:
        lo = max(stretch.start_ms, start_ms)
        hi = min(stretch.end_ms if stretch.end_ms is not None else now_ms, end_ms)
        if hi <= lo:
            continue
        seconds[stretch.state] = seconds.get(stretch.state, 0.0) + (hi - lo) / 1000
        covered += hi - lo
        incidents += stretch.state == "DOWN"
    gap = (end_ms - start_ms) - covered
    if gap > 0:
        seconds["UNKNOWN"] = seconds.get("UNKNOWN", 0.0) + gap / 1000
    return Uptime(start_ms, end_ms, seconds, incidents)


def daily(stretches: Sequence[Stretch], days: int, now_ms: int) -> list[Uptime]:
    """Per UTC day, oldest first, the last ``days`` days up to today."""
    today = now_ms - now_ms % DAY_MS
    first = today - (days - 1) * DAY_MS
    return [uptime(stretches, d, d + DAY_MS, now_ms) for d in range(first, today + 1, DAY_MS)]


def parse_windows(text: str) -> list[str]:
    """'24h,7d' -> ['24h', '7d']; ValueError naming what is not a window."""
    names = [w.strip() for w in text.split(",") if w.strip()]
    unknown = [w for w in names if w not in WINDOWS_MS]
    if unknown or not names:
        raise ValueError(
            f"windows: unknown window {', '.join(unknown) or '(none)'}; "
            f"expected a comma-separated list of {', '.join(WINDOWS_MS)}"
        )
    return names
