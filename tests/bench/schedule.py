"""2. The schedule at scale: one node on one core watching N targets every
60 s (a loopback target on the other core answers). How late each check
starts against its due time, the mean interval against the configured one,
the node's CPU and memory."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from tests.bench.common import (
    NODE_CORE,
    OTHER_CORE,
    cpu_s,
    get_json,
    http_targets,
    node_config,
    rss_mb,
    start_node,
    stop,
    wait,
)
from tests.bench.targets import loopback_target
from watchers.demo import free_port
from watchers.storage import DB_NAME

INTERVAL_S = 60


def run(root: Path, targets: int, minutes: float) -> dict[str, Any]:
    port = free_port()
    root = root / f"schedule-{targets}"
    root.mkdir()
    with loopback_target(root, OTHER_CORE) as (_what, target_port):
        config = node_config(root, "huginn", port, http_targets(targets, target_port, INTERVAL_S))
        node = start_node(config, NODE_CORE, root / "huginn.log")
        try:
            base = f"http://127.0.0.1:{port}"
            wait(lambda: get_json(base + "/healthz")["ok"], "the node", 120)
            # The first checks are spread over the first interval; measure after.
            time.sleep(INTERVAL_S)
            cpu0, wall0 = cpu_s(node.pid), time.monotonic()
            time.sleep(max(0.0, minutes * 60 - INTERVAL_S))
            cpu_share = (cpu_s(node.pid) - cpu0) / (time.monotonic() - wall0)
            late = get_json(base + "/api/v1/nodes")["check_lateness"]
            rss = rss_mb(node.pid)
        finally:
            stop(node)
    with sqlite3.connect(root / "huginn" / DB_NAME) as db:
        spans = db.execute("SELECT count(*), min(at_ms), max(at_ms) FROM checks GROUP BY target "
                           "HAVING count(*) >= 2").fetchall()  # fmt: skip
        failed = db.execute("SELECT count(*) FROM checks WHERE ok = 0").fetchone()[0]
        total = db.execute("SELECT count(*) FROM checks").fetchone()[0]
    intervals = [(last - first) / (n - 1) / 1000 for n, first, last in spans]
    mean = sum(intervals) / len(intervals) if intervals else float("nan")
    return {"targets": targets, "minutes": minutes, "checks": total, "failed": failed,
            "late_p50_ms": late["p50_ms"], "late_p99_ms": late["p99_ms"],
            "late_max_ms": late["max_ms"], "mean_interval_s": mean,
            "interval_error_pct": (mean - INTERVAL_S) / INTERVAL_S * 100,
            "cpu_pct": cpu_share * 100, "rss_mb": rss}  # fmt: skip
