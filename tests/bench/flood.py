"""7. Anonymous load: a pair watching 1,000 targets, one node asked by 200
visitors at once on every open path for a while. Is the node still itself?
Check lateness over the last minute, /healthz answer time (from another
thread, every 100 ms), peak RSS against the unit's MemoryMax, sync lag both
ways, and what the visitors got (answers, and 503s shed with Retry-After)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
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

INTERVAL_S = 30
SYNC_INTERVAL_S = 2  # node_config's
MEMORY_MAX_MB = 300  # deploy/ravens.service
# A pull that has not completed in this long missed at least two rounds.
SYNC_MISS_MS = 3 * SYNC_INTERVAL_S * 1000


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class HealthProbe(threading.Thread):
    """GET /healthz every 100 ms; the answer times (ms)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.times: list[float] = []
        self.failed = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            began = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=5) as answer:
                    answer.read()
                self.times.append((time.perf_counter() - began) * 1000)
            except OSError:
                self.failed += 1
            self.done.wait(0.1)


def run(root: Path, targets: int, clients: int, seconds: float) -> dict[str, Any]:
    ports = {"huginn": free_port(), "muninn": free_port()}
    found: dict[str, Any] = {"targets": targets, "clients": clients, "seconds": seconds}
    with loopback_target(root, OTHER_CORE) as (_what, target_port):
        nodes = {}
        try:
            for name, peer in (("huginn", "muninn"), ("muninn", "huginn")):
                config = node_config(
                    root, name, ports[name], http_targets(targets, target_port, INTERVAL_S),
                    peers=f'\n[[peers]]\nname = "{peer}"\nurl = "http://127.0.0.1:{ports[peer]}"\n',
                    defaults=f"interval_s = {INTERVAL_S}",
                )  # fmt: skip
                nodes[name] = start_node(config, NODE_CORE, root / f"{name}.log")
            base = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
            wait(lambda: all(len(get_json(b + "/api/v1/targets")["targets"]) == targets
                             for b in base.values()), "both nodes serve", 120)  # fmt: skip
            time.sleep(INTERVAL_S)  # a first round of checks, spread over the interval
            probe = HealthProbe(base["huginn"] + "/healthz")
            probe.start()
            crowd = subprocess.Popen(
                ["taskset", "-c", str(OTHER_CORE), sys.executable, "-m", "tests.bench.crowd",
                 base["huginn"], str(clients), str(seconds), str(targets)],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            polls = watch(base, seconds, crowd)
            out, _ = crowd.communicate(timeout=120)
            probe.done.set()
            probe.join()
            seen = {int(k): v for k, v in json.loads(out).items()}
            found.update(summary(seen, probe, polls, peak_rss_mb(nodes["huginn"].pid)))
        finally:
            for node in nodes.values():
                stop(node)
    return found


def patiently(url: str) -> Any:
    """A GET the crowd's node may shed: asked again, as its Retry-After says."""
    for _ in range(30):
        try:
            return get_json(url, timeout=30)
        except urllib.error.HTTPError as exc:
            if exc.code != 503:
                raise
            time.sleep(int(exc.headers.get("retry-after", "1")))
    raise TimeoutError(f"benchmark: {url} shed 30 times in a row")


def watch(base: dict[str, str], seconds: float, crowd: subprocess.Popen[str]) -> list[Any]:
    """Both nodes' /api/v1/nodes every 2 s while the crowd lasts."""
    polls = []
    deadline = time.monotonic() + seconds + 60
    while crowd.poll() is None and time.monotonic() < deadline:
        polls.append({name: patiently(url + "/api/v1/nodes") for name, url in base.items()})
        time.sleep(SYNC_INTERVAL_S)
    return polls


def summary(seen: dict[int, list[float]], probe: HealthProbe, polls: list[Any],
            rss_mb: float) -> dict[str, Any]:  # fmt: skip
    answered = seen.get(200, []) + seen.get(404, [])
    lateness = [p["huginn"]["check_lateness"]["last_minute"] for p in polls]
    lags = {f"{n}_from_{p['name']}": [p["sync_lag_ms"] or 0 for poll in polls
                                       for p in poll[n]["peers"]]
            for n in ("huginn", "muninn") for p in polls[0][n]["peers"]}  # fmt: skip
    return {
        "requests": sum(len(v) for v in seen.values()),
        "answered": len(answered),
        "shed_503": len(seen.get(503, [])),
        "other": {code: len(v) for code, v in seen.items() if code not in (200, 404, 503)},
        "answer_ms": {"p50": percentile(answered, 0.5), "p99": percentile(answered, 0.99)},
        "healthz_ms": {
            "p50": percentile(probe.times, 0.5),
            "p99": percentile(probe.times, 0.99),
            "max": round(max(probe.times, default=0.0), 1),
            "failed": probe.failed,
        },
        "lateness_last_minute_p99_ms": max((x["p99_ms"] or 0 for x in lateness), default=None),
        "lateness_last_minute_max_ms": max((x["max_ms"] or 0 for x in lateness), default=None),
        "peak_rss_mb": round(rss_mb, 1),
        "memory_max_mb": MEMORY_MAX_MB,
        "sync_lag_max_ms": {k: max(v) for k, v in lags.items()},
        "sync_misses": sum(1 for v in lags.values() for lag in v if lag > SYNC_MISS_MS),
    }
