"""The outbox table: what waits for ntfy, what ntfy refused, and the marks
the courier makes on each row. Part of the node's ``Store``, on its one
connection and under its write lock."""

from __future__ import annotations

import asyncio

import aiosqlite

from watchers.rows import OutboxRow


class OutboxTable:
    _db: aiosqlite.Connection
    _lock: asyncio.Lock

    async def outbox_rows(self, statuses: tuple[str, ...]) -> list[OutboxRow]:
        marks = ",".join("?" for _ in statuses)
        async with self._db.execute(
            "SELECT event_id, subject, notice, event, status, attempts, last_error, created_ms, "
            f"sequence_id FROM outbox WHERE status IN ({marks}) ORDER BY created_ms, event_id",
            statuses,
        ) as cursor:
            return [OutboxRow(*row) async for row in cursor]

    async def mark(
        self,
        event_id: str,
        status: str,
        now_ms: int,
        error: str | None = None,
        message_id: str | None = None,
        attempt: bool = False,
        sequence_id: str | None = None,
    ) -> None:
        async with self._lock:
            await self._db.execute(
                "UPDATE outbox SET status = ?, updated_ms = ?, "
                "last_error = coalesce(?, last_error), message_id = coalesce(?, message_id), "
                "attempts = attempts + ?, sequence_id = ? "
                "WHERE event_id = ?",
                (status, now_ms, error, message_id, int(attempt), sequence_id, event_id),
            )

    async def requeue_refused(self, now_ms: int) -> int:
        """After a config change: try what ntfy refused once more."""
        async with self._lock:
            cursor = await self._db.execute(
                "UPDATE outbox SET status = 'queued', updated_ms = ? WHERE status = 'refused'",
                (now_ms,),
            )
            return cursor.rowcount

    async def outbox_refused(self) -> list[tuple[str, str | None]]:
        async with self._db.execute(
            "SELECT event_id, last_error FROM outbox WHERE status = 'refused' ORDER BY created_ms"
        ) as cursor:
            return [(str(e), err) async for e, err in cursor]

    async def outbox_by_reason(self) -> list[tuple[str, str, int]]:
        """(waiting or refused, what ntfy or the network last said, how many)."""
        async with self._db.execute(
            "SELECT CASE WHEN status = 'refused' THEN 'refused' ELSE 'waiting' END, "
            "coalesce(last_error, ''), count(*) FROM outbox "
            "WHERE status IN ('queued', 'posting', 'refused') GROUP BY 1, 2 ORDER BY 1, 2"
        ) as cursor:
            return [(str(s), str(r), int(n)) async for s, r, n in cursor]

    async def outbox_depth(self) -> int:
        async with self._db.execute(
            "SELECT count(*) FROM outbox WHERE status IN ('queued', 'posting')"
        ) as c:
            row = await c.fetchone()
        return int(row[0]) if row else 0
