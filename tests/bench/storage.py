"""4. Storage: bytes per target-day, and the database of a node after a year.

Raw checks are written through the node's own store (rollups included), a
check a minute per target; what a year leaves behind is then built as the
retention leaves it: raw checks for raw_retention_days, hourly rollups for
hourly_retention_days, daily rollups and agreed-state intervals for the
whole year. The size is measured on a checkpointed file, for `targets`
targets, and scaled to 1,000 (the size is linear in the number of targets).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path
from typing import Any

from consensus.hlc import Hlc
from watchers.config import StorageSection
from watchers.storage import CheckRow, Store

DAY_MS = 86_400_000
MINUTE_MS = 60_000


def size(path: Path) -> int:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages, page = db.execute("PRAGMA page_count").fetchone()[0], db.execute(
            "PRAGMA page_size").fetchone()[0]  # fmt: skip
    return int(pages * page)


async def write_days(store: Store, targets: int, first_day: int, days: int) -> None:
    chance = random.Random(first_day)
    for minute in range(days * 1440):
        at = (first_day * 1440 + minute) * MINUTE_MS
        rows = [
            CheckRow(f"t{i:05d}", at + i, chance.random() > 0.001,
                     round(chance.uniform(5, 80), 2), "status 200")
            for i in range(targets)
        ]  # fmt: skip
        await store.commit([], {}, Hlc(at, 0, "huginn"), checks=rows)


def run(root: Path, targets: int) -> dict[str, Any]:
    retention = StorageSection()
    raw_days = int(retention.raw_retention_days)
    hourly_days = int(retention.hourly_retention_days)
    one_day = root / "one-day.sqlite3"
    year = root / "year.sqlite3"

    async def build() -> None:
        store = await Store.open(one_day)
        await store.close()
        empty = size(one_day)
        store = await Store.open(one_day)
        await write_days(store, targets, 0, 1)
        await store.close()
        found["bytes_per_target_day"] = (size(one_day) - empty) / targets

        store = await Store.open(year)
        await write_days(store, targets, 365 - raw_days, raw_days)
        await store.close()

    found: dict[str, Any] = {"targets": targets}
    asyncio.run(build())
    with sqlite3.connect(year) as db:
        # Older rollups, as the year left them: hourly ones within their
        # retention, daily ones for the whole year; two outages a month.
        hourly = [(f"t{i:05d}", "hour", h * 3_600_000, 60, 60, 5.0, 2400.0, 60, 80.0)
                  for i in range(targets)
                  for h in range((365 - hourly_days) * 24, (365 - raw_days) * 24)]  # fmt: skip
        daily = [(f"t{i:05d}", "day", d * DAY_MS, 1440, 1439, 5.0, 57600.0, 1440, 80.0)
                 for i in range(targets) for d in range(0, 365 - raw_days)]  # fmt: skip
        db.executemany("INSERT OR IGNORE INTO rollups (target, resolution, bucket_ms, checks, ups, "
                       "latency_min_ms, latency_sum_ms, latency_count, latency_max_ms) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", hourly + daily)  # fmt: skip
        intervals = []
        for i in range(targets):
            for n in range(24):
                start = n * 15 * DAY_MS + i
                intervals += [(f"t{i:05d}", "DOWN", "both", start, start + 600_000, f"e{i}-{n}"),
                              (f"t{i:05d}", "UP", "both", start + 600_000,
                               (n + 1) * 15 * DAY_MS + i, None)]  # fmt: skip
        db.executemany("INSERT OR IGNORE INTO intervals (target, state, mode, start_ms, end_ms, "
                       "event) VALUES (?, ?, ?, ?, ?, ?)", intervals)  # fmt: skip
    found["year_bytes"] = size(year)
    found["year_bytes_per_1000_targets"] = found["year_bytes"] * 1000 / targets
    found["raw_retention_days"] = raw_days
    found["hourly_retention_days"] = hourly_days
    return found
