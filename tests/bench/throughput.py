"""1. Probe throughput on one core: the node's probe code against a
loopback target on the other core, a fresh connection per check (and a full
TLS handshake for HTTPS, against nginx with a certificate from a local CA),
on uvloop and on asyncio's own loop; and the Prometheus blackbox exporter on
the same core and targets, if installed."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.bench.authoritative import NAME, authoritative
from tests.bench.common import NODE_CORE, OTHER_CORE, cpu_s, pinned, rss_mb, stop, wait
from tests.bench.targets import loopback_target, pin, tls_target
from watchers import eventloop
from watchers.demo import free_port

DRIVERS = 8
BLACKBOX_MODULES = {"http": "http_2xx", "https": "http_2xx", "tcp": "tcp_connect",
                    "dns": "dns_a", "icmp": "icmp"}  # fmt: skip
BLACKBOX_CONFIG = """modules:
  http_2xx:
    prober: http
    timeout: 5s{trust}
  tcp_connect:
    prober: tcp
    timeout: 5s
  dns_a:
    prober: dns
    timeout: 5s
    dns:
      query_name: {name}
      query_type: A
      transport_protocol: udp
      preferred_ip_protocol: ip4
  icmp:
    prober: icmp
    timeout: 5s
    icmp:
      preferred_ip_protocol: ip4
"""
# The node runs on uvloop where it is installed; asyncio's loop is its fallback.
LOOPS = tuple(eventloop.INSTALLED)


def ravens_rate(
    kind: str, port: int, seconds: float, loop: str, ca: Path | None = None
) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "tests.bench.prober", kind, str(port), str(seconds), str(NODE_CORE),
         loop, *([str(ca)] if ca else [])],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = json.loads(out.stdout)
    return {"checks_per_s": found["checks"] / found["wall_s"],
            "cpu_us_per_check": found["cpu_s"] / found["checks"] * 1e6,
            "cpu_share": found["cpu_s"] / found["wall_s"], "rss_mb": found["rss_mb"],
            "failed": found["failed"]}  # fmt: skip


def blackbox_rate(
    kind: str, port: int, seconds: float, root: Path, ca: Path | None = None
) -> dict[str, float] | None:
    binary = shutil.which("prometheus-blackbox-exporter")
    if binary is None:
        return None
    config = root / "blackbox.yml"
    trust = f"\n    http:\n      tls_config:\n        ca_file: {ca}" if ca else ""
    config.write_text(BLACKBOX_CONFIG.format(trust=trust, name=NAME))
    listen = free_port()
    proc = pinned([binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{listen}"],
                  NODE_CORE, root / "blackbox.log")  # fmt: skip
    try:
        wait(lambda: httpx.get(f"http://127.0.0.1:{listen}/metrics").status_code == 200,
             "the blackbox exporter", 20)  # fmt: skip
        target = {"tcp": f"127.0.0.1:{port}", "dns": f"127.0.0.1:{port}",
                  "icmp": "127.0.0.1"}.get(kind, f"{kind}://127.0.0.1:{port}/")  # fmt: skip
        url = f"http://127.0.0.1:{listen}/probe?module={BLACKBOX_MODULES[kind]}&target={target}"
        before = cpu_s(proc.pid)
        mine = os.sched_getaffinity(0)
        try:
            done, ok, wall = asyncio.run(drive(url, seconds))
        finally:
            os.sched_setaffinity(0, mine)
        used = cpu_s(proc.pid) - before
        return {"checks_per_s": done / wall, "cpu_us_per_check": used / done * 1e6,
                "cpu_share": used / wall, "rss_mb": rss_mb(proc.pid),
                "failed": done - ok}  # fmt: skip
    finally:
        stop(proc)


async def drive(url: str, seconds: float) -> tuple[int, int, float]:
    """Ask the exporter to probe, from the other core, keeping it busy."""
    pin(OTHER_CORE)
    done = ok = 0
    deadline = time.monotonic() + seconds
    # httpx's pool slows down past a few dozen connections: eight kept alive
    # drive the exporter harder than sixty-four would.
    limits = httpx.Limits(max_connections=DRIVERS, max_keepalive_connections=DRIVERS)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def worker() -> None:
            nonlocal done, ok
            while time.monotonic() < deadline:
                body = (await client.get(url)).text
                done += 1
                ok += "probe_success 1" in body

        began = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(DRIVERS)))
        return done, ok, time.monotonic() - began


def run(root: Path, seconds: float, loops: tuple[str, ...] = LOOPS) -> dict[str, Any]:
    found: dict[str, Any] = {"loops": list(loops)}
    with loopback_target(root, OTHER_CORE) as (what, port):
        found["target"] = what
        for kind in ("http", "tcp"):
            for loop in loops:
                found[f"ravens_{kind}_{loop}"] = ravens_rate(kind, port, seconds, loop)
            found[f"blackbox_{kind}"] = blackbox_rate(kind, port, seconds, root)
    with tls_target(root, OTHER_CORE) as tls:
        if tls is not None:
            found["tls_target"], port, files = tls
            for loop in loops:
                found[f"ravens_https_{loop}"] = ravens_rate("https", port, seconds, loop, files.ca)
            found["blackbox_https"] = blackbox_rate("https", port, seconds, root, files.ca)
            found["floor_https"] = ravens_rate("tls-floor", port, seconds, "asyncio", files.ca)
    with authoritative(root, OTHER_CORE) as (what, port):
        found["dns_server"] = what
        for loop in loops:
            found[f"ravens_dns_{loop}"] = ravens_rate("dns", port, seconds, loop)
        found["blackbox_dns"] = blackbox_rate("dns", port, seconds, root)
    # ICMP to loopback: the kernel answers. Raw sockets need root or
    # CAP_NET_RAW, unless net.ipv4.ping_group_range allows unprivileged ping.
    for loop in loops:
        found[f"ravens_icmp_{loop}"] = ravens_rate("icmp", 0, seconds, loop)
    found["blackbox_icmp"] = blackbox_rate("icmp", 0, seconds, root)
    return found
