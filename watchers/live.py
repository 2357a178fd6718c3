"""Each node's latest check of each target: the live figures users read.

The log carries a node's view only when its verdict moves, so latency and
the time of the last check would freeze there. This keeps the latest check
per node and target instead: this node's own from every check (and from
the database after a restart), the peer's from each sync pull, which asks
for the checks newer than the last one it holds. Peers are hostile like
everyone else: what they send is bounded and checked field by field, and
a bad row is refused without touching the rest.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from watchers.probes.phases import KEYS, PHASES

MAX_ROWS = 20_000
MAX_REASON_CHARS = 200
MAX_TIME_MS = 2**53
MAX_LATENCY_MS = 86_400_000.0


class LiveError(ValueError):
    """A peer's live checks that break the wire's rules."""


@dataclass(frozen=True, slots=True)
class LiveCheck:
    at_ms: int
    ok: bool
    latency_ms: float | None
    reason: str
    # Where an HTTP check spent its time, and the phase it failed in
    # (watchers/probes/phases.py); None for other kinds.
    phases: Mapping[str, float | str] | None = None

    def to_row(self, target: str) -> list[Any]:
        row = [target, self.at_ms, self.ok, self.latency_ms, self.reason]
        return row if self.phases is None else [*row, dict(self.phases)]


def phases_of(details: Mapping[str, object] | None) -> dict[str, float | str] | None:
    """The phase timings among a check's details (None when it has none)."""
    if not details:
        return None
    found: dict[str, float | str] = {
        k: float(v) for k, v in details.items() if k in KEYS and isinstance(v, int | float)
    }
    failed = details.get("failed_phase")
    if isinstance(failed, str) and failed in PHASES:
        found["failed_phase"] = failed
    return found or None


class LiveChecks:
    """The latest check per node and target."""

    def __init__(self, node: str) -> None:
        self.node = node
        self._by_node: dict[str, dict[str, LiveCheck]] = {node: {}}

    def record(self, node: str, target: str, check: LiveCheck) -> None:
        held = self._by_node.setdefault(node, {})
        current = held.get(target)
        if current is None or check.at_ms >= current.at_ms:
            held[target] = check

    def latest(self, node: str, target: str) -> LiveCheck | None:
        return self._by_node.get(node, {}).get(target)

    def newest_ms(self, node: str) -> int:
        """The time of the newest check held from node (0: none)."""
        return max((c.at_ms for c in self._by_node.get(node, {}).values()), default=0)

    def own_after(self, after_ms: int) -> list[list[Any]]:
        """This node's checks newer than after_ms, as wire rows, newest last."""
        own = self._by_node[self.node]
        rows = sorted((c.at_ms, t) for t, c in own.items() if c.at_ms > after_ms)
        return [own[t].to_row(t) for _, t in rows[-MAX_ROWS:]]

    def take(self, peer: str, rows: object, known: Collection[str]) -> int:
        """A peer's rows, all checked before any is kept; unknown targets
        are skipped. Returns how many were kept."""
        checked = list(parse_rows(rows))
        kept = 0
        for target, check in checked:
            if target in known:
                self.record(peer, target, check)
                kept += 1
        return kept

    def forget(self, target: str) -> None:
        for held in self._by_node.values():
            held.pop(target, None)


def parse_rows(rows: object) -> Iterable[tuple[str, LiveCheck]]:
    if not isinstance(rows, list) or len(rows) > MAX_ROWS:
        raise LiveError(f"live: expected a list of at most {MAX_ROWS} rows")
    found = []
    for index, row in enumerate(rows):
        where = f"live[{index}]"
        if not isinstance(row, list) or len(row) not in (5, 6):
            raise LiveError(f"{where}: expected [target, at_ms, ok, latency_ms, reason, phases?]")
        target, at_ms, ok, latency, reason = row[:5]
        phases = _phases(where, row[5]) if len(row) == 6 else None
        if not isinstance(target, str) or not 1 <= len(target) <= 200:
            raise LiveError(f"{where}: target: expected 1 to 200 characters")
        if isinstance(at_ms, bool) or not isinstance(at_ms, int) or not 0 <= at_ms < MAX_TIME_MS:
            raise LiveError(f"{where}: at_ms: expected epoch milliseconds")
        if not isinstance(ok, bool):
            raise LiveError(f"{where}: ok: expected true or false")
        if latency is not None and as_latency(latency) is None:
            raise LiveError(f"{where}: latency_ms: expected null or 0 to {MAX_LATENCY_MS:.0f}")
        if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS:
            raise LiveError(f"{where}: reason: expected at most {MAX_REASON_CHARS} characters")
        latency_ms = None if latency is None else float(latency)
        found.append((target, LiveCheck(at_ms, ok, latency_ms, reason, phases)))
    return found


def _phases(where: str, value: object) -> dict[str, float | str] | None:
    """A peer's phase timings: known keys only, each a bounded number."""
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > len(KEYS) + 1:
        raise LiveError(f"{where}: phases: expected an object of phase timings")
    found: dict[str, float | str] = {}
    for key, item in value.items():
        if key == "failed_phase":
            if item not in PHASES:
                raise LiveError(f"{where}: phases.failed_phase: expected one of {PHASES}")
            found[key] = str(item)
        elif key in KEYS and as_latency(item) is not None:
            found[key] = float(item)
        else:
            raise LiveError(
                f"{where}: phases.{str(key)[:40]}: expected one of {KEYS}, "
                f"each 0 to {MAX_LATENCY_MS:.0f}"
            )
    return found


def as_latency(value: object) -> float | None:
    """value as milliseconds, if it is a finite number from 0 to a day (what
    a peer may send as a latency); None otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and 0 <= value <= MAX_LATENCY_MS else None
