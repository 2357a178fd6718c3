"""6. Detection latency end to end: a real pair on loopback, targets
checked every 30 s, each going down once at a random moment; from the
moment it goes down to the ntfy test server receiving its DOWN."""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from tests.bench.common import (
    NODE_CORE,
    OTHER_CORE,
    get_json,
    node_config,
    percentile,
    pinned,
    start_node,
    stop,
    wait,
)
from watchers.demo import free_port

TOPIC = "bench"


def run(root: Path, outages: int, window_s: float) -> dict[str, Any]:
    state = root / "down.json"
    state.write_text(json.dumps({"down": []}))
    target_port, ntfy_port = free_port(), free_port()
    serve = [sys.executable, "-m", "tests.network.serve"]
    helpers = [
        pinned([*serve, "target", "--bind", "127.0.0.1", "--port", str(target_port),
                "--state", str(state)], OTHER_CORE, root / "target.log"),
        pinned([*serve, "ntfy", "--bind", "127.0.0.1", "--port", str(ntfy_port)], OTHER_CORE,
               root / "ntfy.log"),
    ]  # fmt: skip
    ports = {"huginn": free_port(), "muninn": free_port()}
    targets = "".join(
        f'\n[[targets]]\nid = "d{i:02d}"\nkind = "http"\n'
        f'url = "http://127.0.0.1:{target_port}/d{i:02d}"\ninterval_s = 30\n'
        for i in range(outages)
    )
    nodes = []
    try:
        for name, peer in (("huginn", "muninn"), ("muninn", "huginn")):
            config = node_config(
                root, name, ports[name], targets,
                peers=f'\n[[peers]]\nname = "{peer}"\nurl = "http://127.0.0.1:{ports[peer]}"\n',
                extra=f'\n[ntfy]\nurl = "http://127.0.0.1:{ntfy_port}"\ntopic = "{TOPIC}"\n',
                defaults="interval_s = 30",
            )  # fmt: skip
            nodes.append(start_node(config, NODE_CORE, root / f"{name}.log"))
        inbox = f"http://127.0.0.1:{ntfy_port}/{TOPIC}/json?poll=1"
        wait(lambda: all(
            all(t["state"] == "UP" for t in get_json(f"http://127.0.0.1:{p}/api/v1/targets")["targets"])
            for p in ports.values()), "every target UP on both nodes", 120)  # fmt: skip
        chance = random.Random(6)
        starts = {f"d{i:02d}": time.time() + chance.uniform(5, window_s) for i in range(outages)}
        down: set[str] = set()
        deadline = max(starts.values()) + 90
        while time.time() < deadline:
            now = time.time()
            wanted = {t for t, at in starts.items() if at <= now < at + 90}
            if wanted != down:
                down = wanted
                scratch = state.with_suffix(".new")
                scratch.write_text(json.dumps({"down": sorted(f"/{t}" for t in down)}))
                scratch.replace(state)
            time.sleep(0.2)
        time.sleep(10)
        received = _lines(inbox)
    finally:
        for proc in [*nodes, *helpers]:
            stop(proc)
    latencies = []
    for target, at in starts.items():
        hits = [m["time"] for m in received if m.get("title") == f"{target} is DOWN"]
        if hits:
            latencies.append(min(hits) - at)
    return {"outages": outages, "notified": len(latencies),
            "p50_s": percentile(latencies, 0.5), "p95_s": percentile(latencies, 0.95),
            "max_s": max(latencies) if latencies else None}  # fmt: skip


def _lines(url: str) -> list[dict[str, Any]]:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        return [json.loads(line) for line in response.read().decode().splitlines() if line]
