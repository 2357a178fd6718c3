"""Wall time on the monotonic clock, and the wall clock's steps.

APScheduler and the core's timers run on wall time; a step of the wall
clock (an operator, a VM resumed, NTP after a long outage) would hold every
job back for the length of a step back, or fire them all at once after a
step forward. The node asks its watch every second how far the wall clock
jumped, and moves its jobs and the core's timers with it. Slow slewing (NTP's
normal work) stays below the tolerance and is taken as it comes.

Every time the node reads (``SteadyClock.now_s``) is the monotonic clock plus
the wall clock's offset as last confirmed, so a single wrong reading of the
wall clock (seen under libfaketime, which can return the true time once
while another thread reads its offset file) moves nothing: a new offset is
a step only once a reading at least ``CONFIRM_S`` later shows it again.
Before that, one such reading once set a deadline ten minutes out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from notify.courier import AsyncioTimer

# Smaller jumps are jitter or slewing, not a step.
STEP_TOLERANCE_S = 2.0
# A new offset must hold this long (monotonic) before it counts as a step.
CONFIRM_S = 0.5


@dataclass
class SteadyClock:
    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    tolerance_s: float = STEP_TOLERANCE_S
    confirm_s: float = CONFIRM_S
    # Wall minus monotonic, as last confirmed; and every step confirmed so far, summed.
    offset_s: float = field(init=False)
    stepped_s: float = field(init=False, default=0.0)
    # An offset seen once (its value, and when on the monotonic clock), not yet confirmed.
    _pending: tuple[float, float] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.offset_s = self.wall() - self.monotonic()

    def now_s(self) -> float:
        return self.monotonic() + self.offset_s

    def refresh(self) -> None:
        """Read the wall clock once: follow slewing, and take a step once
        it is confirmed."""
        mono = self.monotonic()
        offset = self.wall() - mono
        if abs(offset - self.offset_s) < self.tolerance_s:
            self.offset_s, self._pending = offset, None
            return
        pending = self._pending
        if pending is None or abs(offset - pending[0]) >= self.tolerance_s:
            self._pending = (offset, mono)
            return
        if mono - pending[1] < self.confirm_s:
            return
        self.stepped_s += offset - self.offset_s
        self.offset_s, self._pending = offset, None


# The clock every node in this process reads.
STEADY = SteadyClock()


def now_ms() -> int:
    """Wall time in epoch milliseconds, as the steady clock tells it."""
    return int(STEADY.now_s() * 1000)


@dataclass
class ClockWatch:
    """One reader's view of the steps: each step is told to each watch once."""

    clock: SteadyClock = field(default_factory=lambda: STEADY)
    _told_s: float = field(init=False)

    def __post_init__(self) -> None:
        self._told_s = self.clock.stepped_s

    def step_s(self) -> float:
        """How far the wall clock jumped since last asked; 0.0 when it did not."""
        self.clock.refresh()
        step = self.clock.stepped_s - self._told_s
        self._told_s = self.clock.stepped_s
        return step


class Clock(Protocol):
    """Everything a node asks of time. The node is handed one: the system's
    in production, a fake one that a test advances in its tests."""

    def now_ms(self) -> int:
        """Wall time in epoch milliseconds."""

    def monotonic(self) -> float:
        """Seconds on a clock no step of the wall clock moves."""

    def step_s(self) -> float:
        """How far the wall clock jumped since last asked; 0.0 when it did not."""

    async def sleep(self, seconds: float) -> None:
        """Wait this long (monotonic)."""

    async def wait(self, event: asyncio.Event, timeout_s: float) -> bool:
        """Wait for event, at most timeout_s; whether it was set."""


class SystemClock(AsyncioTimer):
    """The machine's clocks: wall time through the steady clock, asyncio's
    sleeps and waits on the monotonic clock."""

    def __init__(self) -> None:
        self._watch = ClockWatch()

    def now_ms(self) -> int:
        return now_ms()

    def step_s(self) -> float:
        return self._watch.step_s()
