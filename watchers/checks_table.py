"""The raw checks and their rollups: what one node measured of each target,
by check, by hour and by day, and the latency percentiles of each hour.
Part of the node's ``Store``, on its one connection and under its write lock.

An hour's p50 and p95 are taken from its raw checks (nearest rank) once the
hour is over and kept in its rollup ("sealed"), so they outlive the raw
checks' retention; an hour not yet sealed is computed when asked.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from watchers.rows import CheckRow, Rollup

HOUR_MS = 3_600_000
# A sealed hour whose raw checks were gone before it was sealed.
NO_PERCENTILE = -1.0
# Unsealed hours computed in one read of latency_hours (the rest stay open).
MAX_OPEN_HOURS = 48


@dataclass(frozen=True, slots=True)
class LatencyHour:
    bucket_ms: int
    checks: int
    ups: int
    p50_ms: float | None
    p95_ms: float | None


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest rank of a sorted, non-empty sequence: the value at or below
    which a fraction q of them lie."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class ChecksTable:
    _db: aiosqlite.Connection
    _lock: asyncio.Lock

    async def rollups(self, target: str, resolution: str) -> list[Rollup]:
        async with self._db.execute(
            "SELECT target, resolution, bucket_ms, checks, ups, latency_min_ms, "
            "latency_sum_ms, latency_count, latency_max_ms FROM rollups "
            "WHERE target = ? AND resolution = ? ORDER BY bucket_ms",
            (target, resolution),
        ) as cursor:
            return [
                Rollup(t, r, b, n, ups, lo, (total / count) if count else None, hi)
                async for t, r, b, n, ups, lo, total, count, hi in cursor
            ]

    async def prune_checks(self, before_ms: int, batch: int = 5_000) -> int:
        """Drop raw checks older than before_ms."""
        return await self._delete_in_batches(
            "DELETE FROM checks WHERE rowid IN (SELECT rowid FROM checks WHERE at_ms < ? LIMIT ?)",
            (before_ms,),
            batch,
        )

    async def prune_rollups(self, resolution: str, before_ms: int, batch: int = 5_000) -> int:
        """Drop rollups of one resolution older than before_ms."""
        return await self._delete_in_batches(
            "DELETE FROM rollups WHERE rowid IN (SELECT rowid FROM rollups "
            "WHERE resolution = ? AND bucket_ms < ? LIMIT ?)",
            (resolution, before_ms),
            batch,
        )

    async def _delete_in_batches(self, sql: str, params: tuple[object, ...], batch: int) -> int:
        """A batch per transaction, so the writer is never held for long."""
        removed = 0
        while True:
            async with self._lock:
                cursor = await self._db.execute(sql, (*params, batch))
                count = cursor.rowcount
            removed += count
            if count < batch:
                return removed

    async def checks_between(
        self, target: str, start_ms: int, end_ms: int, limit: int
    ) -> list[CheckRow]:
        """Raw checks of target in [start_ms, end_ms), oldest first, at most limit."""
        async with self._db.execute(
            "SELECT target, at_ms, ok, latency_ms, reason, details FROM checks "
            "WHERE target = ? AND at_ms >= ? AND at_ms < ? ORDER BY at_ms LIMIT ?",
            (target, start_ms, end_ms, limit),
        ) as cursor:
            return [
                CheckRow(t, a, bool(o), lat, r, json.loads(d) if d else None)
                async for t, a, o, lat, r, d in cursor
            ]

    async def rollups_between(
        self, target: str, resolution: str, start_ms: int, end_ms: int, limit: int
    ) -> list[Rollup]:
        async with self._db.execute(
            "SELECT target, resolution, bucket_ms, checks, ups, latency_min_ms, "
            "latency_sum_ms, latency_count, latency_max_ms FROM rollups "
            "WHERE target = ? AND resolution = ? AND bucket_ms >= ? AND bucket_ms < ? "
            "ORDER BY bucket_ms LIMIT ?",
            (target, resolution, start_ms, end_ms, limit),
        ) as cursor:
            return [
                Rollup(t, r, b, n, ups, lo, (total / count) if count else None, hi)
                async for t, r, b, n, ups, lo, total, count, hi in cursor
            ]

    async def recent_checks(self, target: str, limit: int = 50) -> list[CheckRow]:
        async with self._db.execute(
            "SELECT target, at_ms, ok, latency_ms, reason, details FROM checks WHERE target = ? "
            "ORDER BY at_ms DESC LIMIT ?",
            (target, limit),
        ) as cursor:
            return [
                CheckRow(t, a, bool(o), lat, r, json.loads(d) if d else None)
                async for t, a, o, lat, r, d in cursor
            ]

    async def latest_checks(self) -> dict[str, CheckRow]:
        """Each target's latest check, as a restart seeds the live figures."""
        async with self._db.execute(
            "SELECT c.target, c.at_ms, c.ok, c.latency_ms, c.reason, c.details FROM checks c "
            "JOIN (SELECT target, max(at_ms) AS at_ms FROM checks GROUP BY target) l "
            "ON c.target = l.target AND c.at_ms = l.at_ms"
        ) as cursor:
            return {
                t: CheckRow(t, a, bool(o), lat, r, json.loads(d) if d else None)
                async for t, a, o, lat, r, d in cursor
            }

    async def _hour_latencies(self, target: str, bucket_ms: int) -> list[float]:
        async with self._db.execute(
            "SELECT latency_ms FROM checks WHERE target = ? AND at_ms >= ? AND at_ms < ? "
            "AND latency_ms IS NOT NULL ORDER BY latency_ms",
            (target, bucket_ms, bucket_ms + HOUR_MS),
        ) as cursor:
            return [float(v) async for (v,) in cursor]

    async def latency_hours(self, target: str, start_ms: int, end_ms: int) -> list[LatencyHour]:
        """Hour by hour in [start_ms, end_ms): checks, ups, p50 and p95 of
        latency (None where no check measured one, or its raw checks are gone)."""
        async with self._db.execute(
            "SELECT bucket_ms, checks, ups, latency_count, latency_p50_ms, latency_p95_ms "
            "FROM rollups WHERE target = ? AND resolution = 'hour' AND bucket_ms >= ? "
            "AND bucket_ms < ? ORDER BY bucket_ms",
            (target, start_ms, end_ms),
        ) as cursor:
            rows = [row async for row in cursor]
        out = []
        open_hours = 0
        for bucket, checks, ups, count, kept_p50, kept_p95 in rows:
            p50, p95 = (None, None) if kept_p50 == NO_PERCENTILE else (kept_p50, kept_p95)
            if count and kept_p50 is None and open_hours < MAX_OPEN_HOURS:
                open_hours += 1
                found = await self._hour_latencies(target, bucket)
                if found:
                    p50, p95 = percentile(found, 0.5), percentile(found, 0.95)
            out.append(LatencyHour(bucket, checks, ups, p50, p95))
        return out

    async def seal_hours(self, since_ms: int, before_ms: int, batch: int = 500) -> int:
        """Keep p50 and p95 in each hour's rollup that ended before before_ms
        (and began after since_ms, while its raw checks are kept). Returns
        how many hours were sealed."""
        sealed = 0
        while True:
            async with self._db.execute(
                "SELECT target, bucket_ms FROM rollups WHERE resolution = 'hour' "
                "AND latency_count > 0 AND latency_p50_ms IS NULL AND bucket_ms >= ? "
                "AND bucket_ms + ? <= ? ORDER BY bucket_ms LIMIT ?",
                (since_ms, HOUR_MS, before_ms, batch),
            ) as cursor:
                open_rows = [row async for row in cursor]
            updates = []
            for target, bucket in open_rows:
                found = await self._hour_latencies(target, bucket)
                # No raw latency left to take them from: NO_PERCENTILE marks the
                # hour as looked at, and it reads as unknown.
                p50 = percentile(found, 0.5) if found else NO_PERCENTILE
                p95 = percentile(found, 0.95) if found else NO_PERCENTILE
                updates.append((p50, p95, target, bucket))
            async with self._lock:
                await self._db.executemany(
                    "UPDATE rollups SET latency_p50_ms = ?, latency_p95_ms = ? "
                    "WHERE target = ? AND resolution = 'hour' AND bucket_ms = ?",
                    updates,
                )
            sealed += len(updates)
            if len(open_rows) < batch:
                return sealed
