"""How late checks start against the time they were due: whether a node
keeps up with its schedule (too many targets for its CPU, a blocked loop)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

WINDOW = 10_000  # the most recent checks
RECENT_S = 60.0  # and, apart, those of the last minute: how the node keeps up now


class Lateness:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.recent: deque[float] = deque(maxlen=WINDOW)
        # (when it started, on the monotonic clock; how late), for the last minute.
        self.timed: deque[tuple[float, float]] = deque(maxlen=WINDOW)
        self.due_ms: dict[str, float] = {}
        self.clock = clock

    def due(self, job: str, at_ms: float) -> None:
        """The scheduler handed over the job that was due at at_ms."""
        self.due_ms[job] = at_ms

    def started(self, job: str, now_ms: float) -> None:
        """The check began (after waiting for a free slot, if it had to)."""
        due = self.due_ms.pop(job, None)
        if due is not None:
            late = max(0.0, now_ms - due)
            self.recent.append(late)
            self.timed.append((self.clock(), late))

    def summary(self) -> dict[str, Any]:
        since = self.clock() - RECENT_S
        last_minute = [late for at, late in self.timed if at >= since]
        return {**_spread(self.recent), "last_minute": _spread(last_minute)}


def _spread(values: Iterable[float]) -> dict[str, Any]:
    ordered = sorted(values)
    if not ordered:
        return {"samples": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {
        "samples": len(ordered),
        "p50_ms": at(0.5),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1], 1),
    }
