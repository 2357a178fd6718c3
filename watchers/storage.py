"""The node's one SQLite file: the log, the clock, raw checks and the outbox.

One writer connection; every ``Step`` of the core is committed in one
``BEGIN IMMEDIATE`` transaction together with what it caused (checks,
outbox rows), so a kill -9 at any moment leaves a consistent database. WAL
mode lets readers run beside the writer. The schema is versioned with
``PRAGMA user_version`` and migrated at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path

import aiosqlite

from consensus.hlc import ZERO, Hlc
from consensus.lww import Entry, LwwMap
from watchers.checks_table import ChecksTable
from watchers.hook_outbox_table import HookInsert, HookOutboxTable
from watchers.outbox_table import OutboxTable
from watchers.rows import CheckRow, Interval, OutboxRow, Rollup
from watchers.schema import HISTORY_CACHE_VERSION, MIGRATIONS
from watchers.uncancelled import finish_then_cancel

# The database file in a node's data_dir.
DB_NAME = "ravens.sqlite3"
# Hourly rollups are kept [storage] hourly_retention_days, daily ones for good.
RESOLUTIONS_MS = {"hour": 3_600_000, "day": 86_400_000}


class StorageError(Exception):
    """The database could not be opened or migrated. (A failed write is the
    database's own error, which the write queue in watchers/writes.py handles.)"""


def _private(path: Path) -> None:
    """The data directory 0700 and the database 0600, whatever the umask:
    the log holds tokens of push targets and the outbox what users are told.
    SQLite gives its WAL and shared-memory files the database's mode."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(PermissionError):  # a directory someone else owns
        path.parent.chmod(0o700)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    path.chmod(0o600)


class Store(ChecksTable, OutboxTable, HookOutboxTable):
    """The single writer of one node's database."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Store:
        try:
            _private(path)
            db = await aiosqlite.connect(path, isolation_level=None)
        except (aiosqlite.Error, OSError) as exc:
            raise StorageError(f"{path}: cannot open the database: {exc}") from exc
        store = cls(db, path)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA busy_timeout=5000")
            await store._migrate()
        except aiosqlite.Error as exc:
            await db.close()
            raise StorageError(f"{path}: cannot open the database: {exc}") from exc
        except BaseException:
            await db.close()
            raise
        return store

    async def close(self) -> None:
        await self._db.close()

    async def _transaction(self, body: Callable[[], Awaitable[None]]) -> None:
        """``BEGIN IMMEDIATE``, body, ``COMMIT`` under the writer's lock, carried
        to its end even when the caller is cancelled (a node stopping): each
        aiosqlite call runs on the connection's thread whether or not its
        caller still waits, so a cancel between ``BEGIN`` and ``COMMIT`` would
        leave the connection in a transaction, and every later write refused
        ("cannot start a transaction within a transaction")."""

        async def whole() -> None:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                await body()
                await self._db.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back already (a full disk does).
                if self._db.in_transaction:
                    await self._db.execute("ROLLBACK")
                raise

        async with self._lock:
            await finish_then_cancel(whole())

    async def _migrate(self) -> None:
        async with self._db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        current = int(row[0]) if row else 0
        if current > len(MIGRATIONS):
            raise StorageError(
                f"{self.path}: schema version {current} is newer than this ravens "
                f"({len(MIGRATIONS)}); upgrade ravens or restore a backup"
            )
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):

            async def migrate(script: str = script, version: int = version) -> None:
                for statement in filter(str.strip, script.split(";")):
                    await self._db.execute(statement)
                await self._db.execute(f"PRAGMA user_version = {version}")

            await self._transaction(migrate)

    async def load(self, node: str) -> tuple[LwwMap, Hlc]:
        """The log and the persisted clock, as the core restarts from them."""
        log = LwwMap(node)
        async with self._db.execute(
            "SELECT key, value, wall_ms, logical, origin, version, tombstone FROM log"
        ) as cursor:
            async for key, value, wall, logical, origin, version, tomb in cursor:
                log.merge(
                    Entry(
                        key,
                        json.loads(value),
                        Hlc(wall, logical, origin),
                        origin,
                        version,
                        bool(tomb),
                    )
                )
        meta = await self._meta()
        log.vector = {k: int(v) for k, v in json.loads(meta.get("vector", "{}")).items()}
        clock = Hlc.decode(meta["clock"]) if "clock" in meta else ZERO
        return log, clock

    async def put_meta(self, name: str, value: str) -> None:
        """A small fact of this node's own (not replicated), kept across restarts."""
        async with self._lock:
            await self._db.execute(
                "INSERT INTO meta (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                (name, value),
            )

    async def meta_with_prefix(self, prefix: str) -> dict[str, str]:
        async with self._db.execute(
            "SELECT name, value FROM meta WHERE substr(name, 1, ?) = ?", (len(prefix), prefix)
        ) as cursor:
            return {name: value async for name, value in cursor}

    async def _meta(self) -> dict[str, str]:
        async with self._db.execute("SELECT name, value FROM meta") as cursor:
            return {name: value async for name, value in cursor}

    async def commit(
        self,
        entries: Sequence[Entry],
        vector: dict[str, int],
        clock: Hlc,
        checks: Iterable[CheckRow] = (),
        outbox: Iterable[tuple[str, str, str, str, int]] = (),
        histories: Mapping[str, Sequence[Interval]] | None = None,
        hook_outbox: Iterable[HookInsert] = (),
    ) -> None:
        """One transaction: log entries, vector, clock, checks with their
        rollups, outbox rows (ntfy's and the webhooks'), and the derived
        history of targets that moved."""
        checks = list(checks)

        async def write() -> None:
            await self._db.executemany(
                "INSERT INTO log (key, value, wall_ms, logical, origin, version, tombstone) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                "value=excluded.value, wall_ms=excluded.wall_ms, logical=excluded.logical, "
                "origin=excluded.origin, version=excluded.version, "
                "tombstone=excluded.tombstone",
                [
                    (
                        e.key,
                        json.dumps(e.value),
                        e.hlc.wall_ms,
                        e.hlc.logical,
                        e.origin,
                        e.version,
                        int(e.tombstone),
                    )
                    for e in entries
                ],
            )
            await self._db.executemany(
                "INSERT INTO meta (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                [("vector", json.dumps(vector, sort_keys=True)), ("clock", clock.encode())],
            )
            await self._db.executemany(
                "INSERT INTO checks (target, at_ms, ok, latency_ms, reason, details) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        c.target,
                        c.at_ms,
                        int(c.ok),
                        c.latency_ms,
                        c.reason,
                        json.dumps(c.details) if c.details else None,
                    )
                    for c in checks
                ],
            )
            await self._db.executemany(
                "INSERT INTO rollups (target, resolution, bucket_ms, checks, ups, "
                "latency_min_ms, latency_sum_ms, latency_count, latency_max_ms) "
                "VALUES (?, ?, ?, 1, ?, ?, coalesce(?, 0), ?, ?) "
                "ON CONFLICT(target, resolution, bucket_ms) DO UPDATE SET "
                "checks = checks + 1, ups = ups + excluded.ups, "
                "latency_min_ms = min(coalesce(latency_min_ms, excluded.latency_min_ms), "
                "coalesce(excluded.latency_min_ms, latency_min_ms)), "
                "latency_sum_ms = latency_sum_ms + excluded.latency_sum_ms, "
                "latency_count = latency_count + excluded.latency_count, "
                "latency_max_ms = max(coalesce(latency_max_ms, excluded.latency_max_ms), "
                "coalesce(excluded.latency_max_ms, latency_max_ms))",
                [
                    (
                        c.target,
                        name,
                        c.at_ms - c.at_ms % size,
                        int(c.ok),
                        c.latency_ms,
                        c.latency_ms,
                        int(c.latency_ms is not None),
                        c.latency_ms,
                    )
                    for c in checks
                    for name, size in RESOLUTIONS_MS.items()
                ],
            )
            for target, stretches in (histories or {}).items():
                await self._replace_history(target, stretches)
            await self._db.executemany(
                "INSERT INTO outbox (event_id, subject, notice, event, created_ms) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(event_id) DO NOTHING",
                list(outbox),
            )
            await self._db.executemany(
                "INSERT INTO hook_outbox (hook, event_id, subject, event, created_ms) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(hook, event_id) DO NOTHING",
                list(hook_outbox),
            )

        await self._transaction(write)

    async def _replace_history(self, target: str, stretches: Sequence[Interval]) -> None:
        await self._db.execute("DELETE FROM intervals WHERE target = ?", (target,))
        await self._db.executemany(
            "INSERT INTO intervals (target, state, mode, start_ms, end_ms, event) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(s.target, s.state, s.mode, s.start_ms, s.end_ms, s.event) for s in stretches],
        )

    async def history_cache_current(self) -> bool:
        return (await self._meta()).get("history_cache") == HISTORY_CACHE_VERSION

    async def rebuild_history(self, histories: Mapping[str, Sequence[Interval]]) -> None:
        """Replace the whole interval cache with freshly derived history."""

        async def rebuild() -> None:
            await self._db.execute("DELETE FROM intervals")
            for target, stretches in histories.items():
                await self._replace_history(target, stretches)
            await self._db.execute(
                "INSERT INTO meta (name, value) VALUES ('history_cache', ?) "
                "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                (HISTORY_CACHE_VERSION,),
            )

        await self._transaction(rebuild)

    async def legacy_intervals(self) -> list[Interval]:
        """History kept per node before it derived from the log (schema 5 and
        older), set aside by migration 6; empty when there is none."""
        async with self._db.execute(
            "SELECT target, state, mode, start_ms, end_ms, event FROM intervals_v1 "
            "ORDER BY target, start_ms"
        ) as cursor:
            return [Interval(*row) async for row in cursor]

    async def drop_legacy_intervals(self) -> None:
        async with self._lock:
            await self._db.execute("DELETE FROM intervals_v1")

    async def forget(self, keys: Sequence[str]) -> None:
        """Drop log entries this node no longer keeps (history past retention)."""
        async with self._lock:
            await self._db.executemany("DELETE FROM log WHERE key = ?", [(k,) for k in keys])

    async def intervals_since(self, start_ms: int) -> dict[str, list[Interval]]:
        """Every target's intervals that overlap [start_ms, now), oldest first."""
        found: dict[str, list[Interval]] = {}
        async with self._db.execute(
            "SELECT target, state, mode, start_ms, end_ms, event FROM intervals "
            "WHERE end_ms IS NULL OR end_ms > ? ORDER BY target, start_ms",
            (start_ms,),
        ) as cursor:
            async for row in cursor:
                found.setdefault(row[0], []).append(Interval(*row))
        return found

    async def intervals(self, target: str) -> list[Interval]:
        async with self._db.execute(
            "SELECT target, state, mode, start_ms, end_ms, event FROM intervals "
            "WHERE target = ? ORDER BY start_ms",
            (target,),
        ) as cursor:
            return [Interval(*row) async for row in cursor]

    async def integrity(self) -> str:
        async with self._db.execute("PRAGMA integrity_check") as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else "no answer"


__all__ = [
    "DB_NAME",
    "MIGRATIONS",
    "CheckRow",
    "Interval",
    "OutboxRow",
    "Rollup",
    "StorageError",
    "Store",
]
