"""One prober process for the throughput benchmark: the node's own probe
code (shared httpx clients, a fresh connection per check) kept busy for a
while on one core. ``python -m tests.bench.prober http|tcp PORT SECONDS CORE``
prints checks, failures, CPU seconds and peak RSS as JSON."""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time

from tests.bench.targets import pin
from watchers.probes import HttpClients, ProbeContext, run_check
from watchers.probes.http import HttpTarget
from watchers.probes.tcp import TcpTarget

CONCURRENCY = 64


async def hammer(kind: str, port: int, seconds: float) -> dict[str, float]:
    target: HttpTarget | TcpTarget = TcpTarget(kind="tcp", id="bench", host="127.0.0.1", port=port)
    if kind == "http":
        target = HttpTarget(kind="http", id="bench", url=f"http://127.0.0.1:{port}/")
    clients = HttpClients(node="bench")
    ctx = ProbeContext(clients, last_push_ms=lambda _t: None, now_ms=lambda: 0)
    done = failed = 0
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal done, failed
        while time.monotonic() < deadline:
            result = await run_check(target, ctx, 5.0)
            done += 1
            failed += not result.ok

    began = time.monotonic()
    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    wall = time.monotonic() - began
    cpu = time.process_time() - cpu
    await clients.aclose()
    return {"checks": done, "failed": failed, "wall_s": wall, "cpu_s": cpu,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # fmt: skip


if __name__ == "__main__":
    kind, port, seconds, core = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    pin(core)
    print(json.dumps(asyncio.run(hammer(kind, port, seconds))))
