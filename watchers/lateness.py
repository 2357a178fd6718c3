"""How late checks start against the time they were due: whether a node
keeps up with its schedule (too many targets for its CPU, a blocked loop)."""

from __future__ import annotations

from collections import deque
from typing import Any

WINDOW = 10_000  # the most recent checks


class Lateness:
    def __init__(self) -> None:
        self.recent: deque[float] = deque(maxlen=WINDOW)
        self.due_ms: dict[str, float] = {}

    def due(self, job: str, at_ms: float) -> None:
        """The scheduler handed over the job that was due at at_ms."""
        self.due_ms[job] = at_ms

    def started(self, job: str, now_ms: float) -> None:
        """The check began (after waiting for a free slot, if it had to)."""
        due = self.due_ms.pop(job, None)
        if due is not None:
            self.recent.append(max(0.0, now_ms - due))

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.recent)
        if not ordered:
            return {"samples": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}

        def at(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

        return {"samples": len(ordered), "p50_ms": at(0.5), "p99_ms": at(0.99),
                "max_ms": round(ordered[-1], 1)}  # fmt: skip
