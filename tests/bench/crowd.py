"""Anonymous visitors from their own process: N clients at once, each asking
for one open path after another (the page, a target's page, badges, the
metrics, the API) for S seconds, each on its own connection. Prints, per
status code, how many answers and their latencies (ms) as JSON.
``python -m tests.bench.crowd BASE_URL CLIENTS SECONDS TARGETS``"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import defaultdict

import httpx


def paths(targets: int, rng: random.Random) -> list[str]:
    t = f"t{rng.randrange(targets):05d}"
    return ["/", f"/t/{t}", f"/badge/{t}/status.svg", f"/badge/{t}/uptime.svg",
            f"/badge/{t}/latency.svg", "/metrics", "/api/v1/targets",
            f"/api/v1/targets/{t}/uptime?windows=24h,7d", "/api/v1/incidents"]  # fmt: skip


async def visitor(base: str, seconds: float, targets: int, seed: int,
                  seen: dict[int, list[float]]) -> None:  # fmt: skip
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=1)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        while time.monotonic() < deadline:
            path = rng.choice(paths(targets, rng))
            began = time.perf_counter()
            try:
                status = (await client.get(path)).status_code
            except httpx.HTTPError:
                status = 0  # no answer at all
            seen[status].append((time.perf_counter() - began) * 1000)
            if status == 503:
                await asyncio.sleep(rng.uniform(0.5, 2.0))  # as Retry-After asks, roughly


async def crowd(base: str, clients: int, seconds: float, targets: int) -> dict[int, list[float]]:
    seen: dict[int, list[float]] = defaultdict(list)
    await asyncio.gather(*(visitor(base, seconds, targets, i, seen) for i in range(clients)))
    return seen


def main() -> None:
    base, clients, seconds, targets = (
        sys.argv[1],
        int(sys.argv[2]),
        float(sys.argv[3]),
        int(sys.argv[4]),
    )
    print(json.dumps(asyncio.run(crowd(base, clients, seconds, targets))))


if __name__ == "__main__":
    main()
