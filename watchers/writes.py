"""Writing each step to the database, and what to do when the database
cannot take it (the disk is full, the disk fails, the file is locked).

The node keeps checking and voting from memory: a step the database
refused is kept, in order, with every later one, and all of them are
written in one transaction as soon as the database takes writes again.
Agreed state, events and the outbox are never dropped; raw checks, which
are history only, are bounded, and what had to be dropped is counted.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from consensus.hlc import Hlc
from consensus.lww import Entry
from watchers.hook_outbox_table import HookInsert
from watchers.storage import CheckRow, Interval, Store
from watchers.uncancelled import finish_then_cancel

log = logging.getLogger("ravens")

# SQLite's words for "the database cannot take writes now": worth waiting out.
TRANSIENT = (
    "SQLITE_FULL",
    "SQLITE_IOERR",
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_CANTOPEN",
    "SQLITE_READONLY",
)
MAX_UNSAVED_CHECKS = 50_000
# A step the database refused for good is dropped; the storage shows not ok
# this long after, so status, metrics and the operator see it.
REFUSAL_SHOWN_S = 600.0

OutboxInsert = tuple[str, str, str, str, int]


@dataclass
class Batch:
    """What one step writes."""

    entries: list[Entry]
    vector: dict[str, int]
    clock: Hlc
    checks: list[CheckRow] = field(default_factory=list)
    outbox: list[OutboxInsert] = field(default_factory=list)
    # The derived history of each target that moved, to replace its cache.
    histories: dict[str, list[Interval]] = field(default_factory=dict)
    hook_outbox: list[HookInsert] = field(default_factory=list)


def transient(exc: BaseException) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return isinstance(exc, sqlite3.OperationalError) and name.startswith(TRANSIENT)


@dataclass
class Writes:
    store: Store
    node: str
    unsaved: list[Batch] = field(default_factory=list)
    problem: str | None = None
    problem_since_ms: int | None = None
    checks_dropped: int = 0
    # Steps dropped because the database would never take them (a bug, or
    # a value it cannot store): the last reason, and when (monotonic s).
    steps_refused: int = 0
    refused: str | None = None
    refused_mono: float | None = None
    _flushing: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def ok(self) -> bool:
        recent = self.refused_mono is not None and (
            time.monotonic() - self.refused_mono < REFUSAL_SHOWN_S
        )
        return self.problem is None and not recent

    async def commit(self, batch: Batch, now_ms: int) -> bool:
        """Write the batch, after any kept ones; False when it had to be kept."""
        self.unsaved.append(batch)
        self._bound()
        return await self.flush(now_ms)

    async def flush(self, now_ms: int) -> bool:
        """Write everything kept, in one transaction. True when nothing is left.

        One flush at a time: steps arrive while a commit is in flight, and a
        second flush must not write again what the first is writing."""
        async with self._flushing:
            if not self.unsaved:
                return True
            taken = len(self.unsaved)
            # Written and noted as written at once: cancelled between the two
            # (the node stopping), a step written would be kept and its
            # checks written again.
            whole = _joined(self.unsaved[:taken])
            return await finish_then_cancel(self._write(whole, taken, now_ms))

    async def _write(self, whole: Batch, taken: int, now_ms: int) -> bool:
        try:
            await self.store.commit(
                whole.entries,
                whole.vector,
                whole.clock,
                whole.checks,
                whole.outbox,
                whole.histories,
                whole.hook_outbox,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any refusal: it must not stop later writes
            if not transient(exc):
                return await self._write_one_by_one(taken, now_ms)
            if self.problem is None:
                self.problem, self.problem_since_ms = str(exc), now_ms
                log.error(
                    "storage node=%s: %s; checking and voting go on from memory, "
                    "notifications are left to the peer; writing again when it can",
                    self.node,
                    exc,
                )
            return False
        if self.problem is not None:
            log.warning(
                "storage node=%s: writes work again after %d s; wrote %d kept steps "
                "(%d checks), dropped %d checks",
                self.node,
                (now_ms - (self.problem_since_ms or now_ms)) // 1000,
                taken,
                len(whole.checks),
                self.checks_dropped,
            )
        del self.unsaved[:taken]
        self.problem = self.problem_since_ms = None
        return True

    async def _write_one_by_one(self, taken: int, now_ms: int) -> bool:
        """The joined steps were refused for good: write each alone, drop
        the ones the database refuses for good, keep the rest in order."""
        while taken:
            batch = self.unsaved[0]
            try:
                await self.store.commit(
                    batch.entries,
                    batch.vector,
                    batch.clock,
                    batch.checks,
                    batch.outbox,
                    batch.histories,
                    batch.hook_outbox,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if transient(exc):
                    return await self._write(_joined(self.unsaved[:taken]), taken, now_ms)
                self.steps_refused += 1
                self.refused = f"{type(exc).__name__}: {exc}"[:300]
                self.refused_mono = time.monotonic()
                log.error(
                    "storage node=%s: dropped a step the database refuses for good "
                    "(%d entries: %s; %d checks): %s",
                    self.node,
                    len(batch.entries),
                    ", ".join(e.key for e in batch.entries[:5]) or "-",
                    len(batch.checks),
                    self.refused,
                )
            del self.unsaved[0]
            taken -= 1
        self.problem = self.problem_since_ms = None
        return True

    def pending_histories(self) -> dict[str, list[Interval]]:
        """Each target's derived history that is not in the database yet
        (being written now, or kept while it takes no writes): the latest."""
        return {t: h for b in self.unsaved for t, h in b.histories.items()}

    def _bound(self) -> None:
        """Drop the oldest kept checks past the limit; keep everything else."""
        excess = sum(len(b.checks) for b in self.unsaved) - MAX_UNSAVED_CHECKS
        for batch in self.unsaved:
            if excess <= 0:
                break
            cut = min(excess, len(batch.checks))
            del batch.checks[:cut]
            excess -= cut
            self.checks_dropped += cut

    def status(self) -> dict[str, Any]:
        # While writes work, what is in the list is only being written now.
        kept = self.unsaved if self.problem is not None else []
        return {
            "ok": self.ok,
            "error": self.problem or self.refused,
            "since_ms": self.problem_since_ms,
            "unsaved_steps": len(kept),
            "unsaved_checks": sum(len(b.checks) for b in kept),
            "unsaved_events": sum(len(b.outbox) + len(b.hook_outbox) for b in kept),
            "checks_dropped": self.checks_dropped,
            "steps_refused": self.steps_refused,
        }


def _joined(batches: Sequence[Batch]) -> Batch:
    """Batches in order as one: later entries overwrite earlier ones of the
    same key (the log upserts), the last vector and clock are the latest."""
    last = batches[-1]
    return Batch(
        [e for b in batches for e in b.entries],
        last.vector,
        last.clock,
        [c for b in batches for c in b.checks],
        [o for b in batches for o in b.outbox],
        {t: h for b in batches for t, h in b.histories.items()},
        [o for b in batches for o in b.hook_outbox],
    )
