"""Wall-clock steps, seen against the monotonic clock.

APScheduler and the core's timers run on wall time; a step of the wall
clock (an operator, a VM resumed, NTP after a long outage) would hold every
job back for the length of a step back, or fire them all at once after a
step forward. The node asks this watch every second how far the wall clock
jumped, and moves its jobs and the core's timers with it. Slow slewing (NTP's
normal work) stays below the tolerance and is taken as it comes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Smaller jumps are jitter or slewing, not a step.
STEP_TOLERANCE_S = 2.0


@dataclass
class ClockWatch:
    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    tolerance_s: float = STEP_TOLERANCE_S
    _offset: float = field(init=False)

    def __post_init__(self) -> None:
        self._offset = self.wall() - self.monotonic()

    def step_s(self) -> float:
        """How far the wall clock jumped since last asked; 0.0 when it did not."""
        offset = self.wall() - self.monotonic()
        step = offset - self._offset
        self._offset = offset
        return step if abs(step) >= self.tolerance_s else 0.0
