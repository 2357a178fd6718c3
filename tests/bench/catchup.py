"""3. Sync catch-up: two nodes watching the same targets every 30 s were
apart for an hour; how long until each holds what the other wrote, and how
many bytes that took each way.

The hour apart is made by the core itself: each node's core runs the hour
alone (single vantage, its own check results, some outages), and its log is
written to its database. Then both nodes start for real, their sync passing
through a counting proxy that is closed until the heal."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from consensus.node import NodeCore
from consensus.settings import Settings
from tests.bench.common import (
    NODE_CORE,
    OTHER_CORE,
    get_json,
    http_targets,
    node_config,
    start_node,
    stop,
    wait,
)
from tests.bench.targets import loopback_target
from watchers.demo import free_port
from watchers.storage import DB_NAME, Store

HOUR_MS = 3_600_000
INTERVAL_MS = 30_000


def hour_alone(name: str, targets: list[str], began_ms: int, seed: int) -> NodeCore:
    """One node's hour without its peer: checks every 30 s, 5 % of the
    targets down for a while, as this node saw them."""
    chance = random.Random(seed)
    core = NodeCore(name, ["huginn", "muninn"], targets, Settings(), began_ms)
    core.canaries_observed(True, began_ms)
    outages = {t: (chance.uniform(0, HOUR_MS / 2), chance.uniform(60_000, HOUR_MS / 2))
               for t in chance.sample(targets, len(targets) // 20)}  # fmt: skip
    for n in range(HOUR_MS // INTERVAL_MS):
        now = began_ms + n * INTERVAL_MS
        for i, target in enumerate(targets):
            start, length = outages.get(target, (HOUR_MS, 0.0))
            ok = not start <= now - began_ms < start + length
            core.check_observed(target, ok, "status 200" if ok else "status 503", 12.0, now + i)
        if n % 4 == 0:
            core.canaries_observed(True, now)
        core.tick(now + len(targets))
    return core


async def persist(core: NodeCore, db: Path) -> None:
    store = await Store.open(db)
    await store.commit(list(core.log.entries()), dict(core.log.vector), core.clock.last)
    await store.close()


def vector(db: Path) -> dict[str, int]:
    with sqlite3.connect(db, timeout=10) as conn:
        row = conn.execute("SELECT value FROM meta WHERE name = 'vector'").fetchone()
    return {k: int(v) for k, v in json.loads(row[0]).items()} if row else {}


class Proxy:
    """A TCP forwarder on loopback that counts bytes each way; closed (every
    connection refused at once) until opened."""

    def __init__(self, upstream: int) -> None:
        self.upstream, self.port, self.open = upstream, free_port(), False
        self.up = self.down = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, way: str
                       ) -> None:  # fmt: skip
            try:
                while data := await reader.read(65_536):
                    setattr(self, way, getattr(self, way) + len(data))
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if not self.open:
                writer.close()
                return
            try:
                far_reader, far_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
            except OSError:
                writer.close()
                return
            await asyncio.gather(pipe(reader, far_writer, "up"), pipe(far_reader, writer, "down"))

        async def main() -> None:
            server = await asyncio.start_server(handle, "127.0.0.1", self.port)
            ready.set()
            async with server:
                await server.serve_forever()

        self.loop.run_until_complete(main())


def run(root: Path, targets: int) -> dict[str, Any]:
    names = [f"t{i:05d}" for i in range(targets)]
    began = int(time.time() * 1000) - HOUR_MS
    ports = {"huginn": free_port(), "muninn": free_port()}
    proxies = {name: Proxy(ports[name]) for name in ports}  # the way in to each node
    found: dict[str, Any] = {"targets": targets}
    sim = time.monotonic()
    cores = {name: hour_alone(name, names, began, seed) for seed, name in enumerate(ports)}
    found["simulated_hour_s"] = time.monotonic() - sim
    with loopback_target(root, OTHER_CORE) as (_what, target_port):
        nodes = []
        try:
            for name, peer in (("huginn", "muninn"), ("muninn", "huginn")):
                (root / name).mkdir(exist_ok=True)
                asyncio.run(persist(cores[name], root / name / DB_NAME))
                found[f"{name}_log_entries"] = len(cores[name].log)
                found[f"{name}_own_version"] = cores[name].log.vector.get(name, 0)
                peering = (
                    f'\n[[peers]]\nname = "{peer}"\nurl = "http://127.0.0.1:{proxies[peer].port}"\n'
                )
                watched = http_targets(targets, target_port, 30)
                config = node_config(root, name, ports[name], watched, peers=peering)
                nodes.append(start_node(config, NODE_CORE, root / f"{name}.log"))
            for port in ports.values():
                wait(lambda p=port: get_json(f"http://127.0.0.1:{p}/healthz")["ok"], "the nodes")
            # Apart long enough that both back off as far as they will.
            time.sleep(30)
            wants = {name: vector(root / name / DB_NAME).get(name, 0) for name in ports}
            healed = time.monotonic()
            for proxy in proxies.values():
                proxy.open = True
            wait(lambda: vector(root / "huginn" / DB_NAME).get("muninn", 0) >= wants["muninn"]
                 and vector(root / "muninn" / DB_NAME).get("huginn", 0) >= wants["huginn"],
                 "each node holds what the other wrote", 120)  # fmt: skip
            found["catch_up_s"] = time.monotonic() - healed
            found["bytes_to_huginn"] = proxies["huginn"].up + proxies["muninn"].down
            found["bytes_to_muninn"] = proxies["muninn"].up + proxies["huginn"].down
        finally:
            for node in nodes:
                stop(node)
    return found
