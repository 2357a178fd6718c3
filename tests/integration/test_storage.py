"""The node's SQLite file: steps round-trip, migrations, retention, integrity."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from consensus.hlc import Hlc
from consensus.lww import LwwMap
from watchers.storage import MIGRATIONS, CheckRow, StorageError, Store


def test_committed_steps_come_back_as_the_same_log_vector_and_clock(tmp_path: Path) -> None:
    path = tmp_path / "node.sqlite3"

    async def go() -> tuple[LwwMap, LwwMap, Hlc]:
        log = LwwMap("huginn")
        entries = [log.write(f"obs/huginn/t{i}", {"state": "UP", "i": i}, Hlc(100 + i, 0, "huginn"))
                   for i in range(50)]  # fmt: skip
        log.write("target/old", None, Hlc(200, 0, "huginn"), tombstone=True)
        store = await Store.open(path)
        await store.commit(entries, dict(log.vector), Hlc(150, 3, "huginn"))
        await store.commit([log.raw("target/old")], dict(log.vector), Hlc(200, 0, "huginn"),  # type: ignore[list-item]
                           checks=[CheckRow("t1", 1000, False, 12.5, "status 503")],
                           outbox=[("e1", "t1", "DOWN", "{}", 1000)])  # fmt: skip
        await store.close()
        store = await Store.open(path)
        loaded, clock = await store.load("huginn")
        assert [r.reason for r in await store.recent_checks("t1")] == ["status 503"]
        assert await store.outbox_depth() == 1
        assert await store.integrity() == "ok"
        await store.close()
        return log, loaded, clock

    original, loaded, clock = asyncio.run(go())
    assert loaded.digest() == original.digest()
    assert loaded.vector == original.vector == {"huginn": 51}
    assert clock == Hlc(200, 0, "huginn")


def test_retention_drops_only_old_raw_checks(tmp_path: Path) -> None:
    async def go() -> tuple[int, list[int]]:
        store = await Store.open(tmp_path / "node.sqlite3")
        rows = [CheckRow("t", at, True, 1.0, "status 200") for at in range(0, 12_000, 1)]
        await store.commit([], {}, Hlc(1, 0, "huginn"), checks=rows)
        removed = await store.prune_checks(before_ms=10_000, batch=3_000)
        left = [r.at_ms for r in await store.recent_checks("t", limit=5_000)]
        await store.close()
        return removed, left

    removed, left = asyncio.run(go())
    assert removed == 10_000
    assert min(left) == 10_000 and len(left) == 2_000


def test_the_schema_is_versioned_and_a_newer_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.sqlite3"
    asyncio.run(_open_close(path))
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StorageError, match="newer than this ravens"):
        asyncio.run(_open_close(path))


async def _open_close(path: Path) -> None:
    store = await Store.open(path)
    await store.close()
