"""The webhooks' outbox: one row per event and webhook, written with the
step that handed it over, marked by that webhook's courier. Part of the
node's ``Store``, on its one connection and under its write lock."""

from __future__ import annotations

import asyncio

import aiosqlite

from watchers.rows import HookRow

# (webhook, event id, subject, the event as JSON, created_ms)
HookInsert = tuple[str, str, str, str, int]


class HookOutboxTable:
    _db: aiosqlite.Connection
    _lock: asyncio.Lock

    async def hook_rows(self, hook: str, statuses: tuple[str, ...]) -> list[HookRow]:
        marks = ",".join("?" for _ in statuses)
        async with self._db.execute(
            "SELECT hook, event_id, subject, event, status, attempts, last_error, created_ms "
            f"FROM hook_outbox WHERE hook = ? AND status IN ({marks}) "
            "ORDER BY created_ms, rowid",
            (hook, *statuses),
        ) as cursor:
            return [HookRow(*row) async for row in cursor]

    async def hook_mark(
        self,
        hook: str,
        event_id: str,
        status: str,
        now_ms: int,
        error: str | None = None,
        attempt: bool = False,
    ) -> None:
        async with self._lock:
            await self._db.execute(
                "UPDATE hook_outbox SET status = ?, updated_ms = ?, "
                "last_error = coalesce(?, last_error), attempts = attempts + ? "
                "WHERE hook = ? AND event_id = ?",
                (status, now_ms, error, int(attempt), hook, event_id),
            )

    async def hook_requeue_refused(self, now_ms: int) -> int:
        """After a config change: try what a webhook refused once more."""
        async with self._lock:
            cursor = await self._db.execute(
                "UPDATE hook_outbox SET status = 'queued', updated_ms = ? WHERE status = 'refused'",
                (now_ms,),
            )
            return cursor.rowcount

    async def hook_refused(self) -> list[tuple[str, str, str | None]]:
        """(webhook, event id, what it answered) of every refused delivery."""
        async with self._db.execute(
            "SELECT hook, event_id, last_error FROM hook_outbox WHERE status = 'refused' "
            "ORDER BY created_ms"
        ) as cursor:
            return [(str(h), str(e), err) async for h, e, err in cursor]

    async def hook_waiting(self) -> dict[str, int]:
        """Deliveries not yet made, per webhook."""
        async with self._db.execute(
            "SELECT hook, count(*) FROM hook_outbox WHERE status IN ('queued', 'posting') "
            "GROUP BY hook"
        ) as cursor:
            return {str(h): int(n) async for h, n in cursor}
