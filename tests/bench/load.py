"""A bounded load from its own process: N sequential GETs of one URL, at
most RATE a second, over one keep-alive connection. Prints the latencies
(ms) as JSON. ``python -m tests.bench.load URL N RATE``"""

from __future__ import annotations

import json
import sys
import time

import httpx


def main() -> None:
    url, count, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    latencies = []
    with httpx.Client(timeout=30) as client:
        client.get(url)  # warm: the first request pays for imports and caches
        for _ in range(count):
            began = time.perf_counter()
            response = client.get(url)
            took = time.perf_counter() - began
            if response.status_code != 200:
                sys.exit(f"{url}: {response.status_code} {response.text[:200]}")
            latencies.append(took * 1000)
            time.sleep(max(0.0, 1 / rate - took))
    print(json.dumps(latencies))


if __name__ == "__main__":
    main()
