"""A loopback target for the benchmarks that answers as fast as the prober
can ask, on the other core: nginx when it is installed, otherwise a few
Python processes sharing one port (SO_REUSEPORT)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.bench.tlsfiles import TlsFiles, local_ca
from watchers.demo import free_port

NGINX_CONF = """
worker_processes 1;
worker_cpu_affinity {mask};
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port} {tls}backlog=4096;
        {certificate}
        location / {{ return 200 "ok"; }}
    }}
}}
"""
# A full handshake on every connection, as a fresh visitor makes: no
# session cache, no tickets to resume from.
NGINX_TLS = """ssl_certificate {cert}; ssl_certificate_key {key};
        ssl_session_cache off; ssl_session_tickets off;"""


def pin(core: int) -> None:
    """Keep this process (and what it starts) on one core."""
    if hasattr(os, "sched_setaffinity") and core < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {core})


@contextlib.contextmanager
def loopback_target(root: Path, core: int) -> Iterator[tuple[str, int]]:
    """(what serves, port) while it runs."""
    port = free_port()
    if shutil.which("nginx") is not None:
        with _nginx(root, core, port, "") as what:
            yield what, port
        return
    what = "Python (2 processes, SO_REUSEPORT)"
    procs = [subprocess.Popen([sys.executable, "-m", "tests.bench.targets", str(port),
                               str(core)]) for _ in range(2)]  # fmt: skip
    try:
        _wait_for(port)
        yield what, port
    finally:
        stop_all(procs)


@contextlib.contextmanager
def tls_target(root: Path, core: int) -> Iterator[tuple[str, int, TlsFiles] | None]:
    """(what serves, port, the local CA's files) of nginx over TLS, or None
    without nginx (the Python fallback serves no TLS)."""
    if shutil.which("nginx") is None:
        yield None
        return
    tls_root = root / "tls"
    tls_root.mkdir(exist_ok=True)
    files = local_ca(tls_root)
    port = free_port()
    with _nginx(tls_root, core, port, NGINX_TLS.format(cert=files.cert, key=files.key)) as what:
        yield f"{what} (TLS 1.3, ECDSA P-256, no resumption)", port, files


@contextlib.contextmanager
def _nginx(root: Path, core: int, port: int, certificate: str) -> Iterator[str]:
    nginx = shutil.which("nginx")
    assert nginx is not None
    mask = format(1 << core, "b")
    conf = root / "nginx.conf"
    tls = "ssl " if certificate else ""
    conf.write_text(NGINX_CONF.format(root=root, port=port, mask=mask, tls=tls,
                                      certificate=certificate))  # fmt: skip
    proc = subprocess.Popen([nginx, "-c", str(conf), "-e", str(root / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    said = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False).stderr
    try:
        _wait_for(port)
        yield "nginx " + said.strip().split("/")[-1]
    finally:
        stop_all([proc])


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serve(port: int, core: int) -> None:
    """The Python fallback: HTTP/1.1 200 "ok", connection closed."""
    import asyncio

    pin(core)
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, reuse_port=True,
                                            backlog=4096)  # fmt: skip
        async with server:
            await server.serve_forever()

    asyncio.run(main())


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
