"""5. The API under a bounded load from another process: the target list
with 1,000 targets, 90 days of history and uptime for one target, the
status page, one target's page and the metrics with 1,000 targets; p50 and
p99 latency."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.bench.common import (
    NODE_CORE,
    OTHER_CORE,
    get_json,
    http_targets,
    node_config,
    percentile,
    start_node,
    stop,
    wait,
)
from tests.bench.targets import loopback_target
from watchers.demo import free_port
from watchers.storage import DB_NAME, Store

DAY_MS = 86_400_000


def prefill(db: Path, target: str, now_ms: int) -> None:
    """Ninety days of hourly and daily rollups and an outage a week."""

    async def schema() -> None:
        await (await Store.open(db)).close()

    asyncio.run(schema())
    start = now_ms - 90 * DAY_MS
    hours = [(target, "hour", start - start % 3_600_000 + h * 3_600_000, 60, 59, 5.0, 1200.0,
              60, 90.0) for h in range(90 * 24)]  # fmt: skip
    days = [(target, "day", start - start % DAY_MS + d * DAY_MS, 1440, 1430, 5.0, 28800.0, 1440,
             90.0) for d in range(90)]  # fmt: skip
    intervals = []
    for week in range(13):
        down = start + week * 7 * DAY_MS
        intervals += [(target, "DOWN", "both", down, down + 900_000, f"bench-{week}"),
                      (target, "UP", "both", down + 900_000, down + 7 * DAY_MS, None)]  # fmt: skip
    with sqlite3.connect(db) as conn:
        conn.executemany("INSERT INTO rollups (target, resolution, bucket_ms, checks, ups, "
                         "latency_min_ms, latency_sum_ms, latency_count, latency_max_ms) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", hours + days)  # fmt: skip
        conn.executemany("INSERT INTO intervals (target, state, mode, start_ms, end_ms, event) "
                         "VALUES (?, ?, ?, ?, ?, ?)", intervals)  # fmt: skip


def run(root: Path, targets: int, requests: int) -> dict[str, Any]:
    port = free_port()
    found: dict[str, Any] = {"target_count": targets, "requests": requests}
    with loopback_target(root, OTHER_CORE) as (_what, target_port):
        config = node_config(root, "huginn", port, http_targets(targets, target_port))
        now = int(time.time() * 1000)
        prefill(root / "huginn" / DB_NAME, "t00000", now)
        node = start_node(config, NODE_CORE, root / "huginn.log")
        try:
            base = f"http://127.0.0.1:{port}"
            wait(lambda: len(get_json(base + "/api/v1/targets")["targets"]) == targets,
                 "the node serves", 60)  # fmt: skip
            time.sleep(5)
            since = now - 90 * DAY_MS
            paths = {
                "targets": "/api/v1/targets",
                "history_90d_daily": f"/api/v1/targets/t00000/history?resolution=day"
                                     f"&from={since}",
                "history_90d_hourly": f"/api/v1/targets/t00000/history?resolution=hour"
                                      f"&from={since}&limit=5000",
                "uptime_90d": "/api/v1/targets/t00000/uptime?windows=24h,7d,30d,90d",
                "status_page": "/",
                "target_page": "/t/t00000",
                "metrics": "/metrics",
            }  # fmt: skip
            for name, path in paths.items():
                out = subprocess.run(
                    ["taskset", "-c", str(OTHER_CORE), sys.executable, "-m", "tests.bench.load",
                     base + path, str(requests), "20"],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                latencies = json.loads(out.stdout)
                found[name] = {"p50_ms": percentile(latencies, 0.5),
                               "p99_ms": percentile(latencies, 0.99)}  # fmt: skip
        finally:
            stop(node)
    return found
