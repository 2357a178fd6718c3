"""One prober process for the throughput benchmark: the node's own probe
code (a fresh connection per check, a full TLS handshake for https) kept
busy for a while on one core, on the event loop named.
``python -m tests.bench.prober http|https|tcp|dns|icmp|tls-floor PORT SECONDS CORE LOOP [CA]``
prints checks, failures, CPU seconds and peak RSS as JSON. ``tls-floor`` is
no probe: the same request over the same verifying TLS context, one at a time
on blocking sockets, with no event loop and no HTTP parsing. It is the least
CPU any prober on this machine's OpenSSL pays per HTTPS check."""

from __future__ import annotations

import asyncio
import json
import resource
import socket
import ssl
import sys
import time

from tests.bench.authoritative import ADDRESS, NAME
from tests.bench.targets import pin
from watchers import eventloop
from watchers.probes import AnyTarget, HttpClients, ProbeContext, run_check
from watchers.probes.dns import DnsTarget
from watchers.probes.http import HttpTarget
from watchers.probes.icmp import IcmpTarget
from watchers.probes.tcp import TcpTarget

CONCURRENCY = 64


async def hammer(kind: str, port: int, seconds: float, ca: str | None) -> dict[str, float]:
    target: AnyTarget
    if kind == "tcp":
        target = TcpTarget(kind="tcp", id="bench", host="127.0.0.1", port=port)
    elif kind in ("http", "https"):
        target = HttpTarget(kind="http", id="bench", url=f"{kind}://127.0.0.1:{port}/")
    elif kind == "dns":
        target = DnsTarget(kind="dns", id="bench", query=NAME, resolver="127.0.0.1", port=port,
                           expect=ADDRESS)  # fmt: skip
    else:
        target = IcmpTarget(kind="icmp", id="bench", host="127.0.0.1")
    trust = ssl.create_default_context(cafile=ca) if ca else None
    clients = HttpClients(trust=trust, node="bench")
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


def tls_floor(port: int, seconds: float, ca: str | None) -> dict[str, float]:
    clients = HttpClients(trust=ssl.create_default_context(cafile=ca) if ca else None)
    context = clients.verifying
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    done = failed = 0
    began, cpu = time.monotonic(), time.process_time()
    while time.monotonic() < began + seconds:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as plain,
            context.wrap_socket(plain, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(request)
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
        done += 1
        failed += not answer.startswith(b"HTTP/1.1 200")
    return {"checks": done, "failed": failed, "wall_s": time.monotonic() - began,
            "cpu_s": time.process_time() - cpu,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # fmt: skip


if __name__ == "__main__":
    kind, port, seconds, core = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    loop, ca = sys.argv[5], (sys.argv[6] if len(sys.argv) > 6 else None)
    pin(core)
    if kind == "tls-floor":
        print(json.dumps(tls_floor(port, seconds, ca)))
    else:
        print(json.dumps(eventloop.run(hammer(kind, port, seconds, ca), loop)))
