"""What runs inside the test namespaces besides the nodes: a target that
answers 503 while its state file says down, hostile targets, a canary
listener, and the ntfy test server.
``python -m tests.network.serve target|hostile|canary|ntfy ...``"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import socket
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from notify.inbox import Inbox, serving


def target(bind: str, port: int, state: Path) -> None:
    """Answers 200, or 503 while the state file says down; while it says
    flap, each node (by its User-Agent) sees it alternate, check by check.
    A JSON state file ({"down": [paths]}) takes down those paths only."""
    seen: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            said = state.read_text().strip() if state.exists() else "up"
            if said.startswith("{"):
                said = "down" if self.path in json.loads(said).get("down", ()) else "up"
            agent = self.headers.get("User-Agent", "")
            seen[agent] = seen.get(agent, 0) + 1
            down = said == "down" or (said == "flap" and seen[agent] % 2 == 1)
            body = b"unavailable" if down else b"Welcome"
            self.send_response(503 if down else 200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    ThreadingHTTPServer((bind, port), Handler).serve_forever()


# Ports of the hostile targets, from --port on.
HOSTILE = ("endless", "gigabyte", "trickle", "redirect_loop", "stalled_tls", "silent_dns",
           "gzip_bomb", "plain", "elsewhere_redirect", "elsewhere")  # fmt: skip
# A redirect elsewhere that carried a target's credentials is logged with this.
LEAKED = "LEAKED credentials to another origin"


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def answering(bind: str, port: int) -> dict[int, Handler]:
    """The hostile targets that answer, by port offset: a gzip bomb, a short
    plain body, and a redirect to another origin that logs any credentials
    that followed it."""
    # 64 MB of zeros in 64 KB: a body that is small on the wire only.
    bomb_body = gzip.compress(b"\0" * (64 << 20), compresslevel=9)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     head: bytes, body: bytes) -> bytes:  # fmt: skip
        asked = await reader.readuntil(b"\r\n\r\n")
        writer.write(head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
        writer.write(body)
        await writer.drain()
        writer.close()
        return asked

    async def gzip_bomb(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer(reader, writer, b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n", bomb_body)

    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # What a catastrophic regex backtracks on for ever (where it can).
        await answer(reader, writer, b"HTTP/1.1 200 OK\r\n", b"a" * 85)

    async def elsewhere_redirect(reader: asyncio.StreamReader,
                                 writer: asyncio.StreamWriter) -> None:  # fmt: skip
        location = b"Location: http://%s:%d/\r\n" % (bind.encode(), port + 9)
        await answer(reader, writer, b"HTTP/1.1 302 Found\r\n" + location, b"")

    async def elsewhere(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        asked = await answer(reader, writer, b"HTTP/1.1 200 OK\r\n", b"ok")
        if b"\r\nauthorization:" in asked.lower():
            print(LEAKED, flush=True)

    return {6: gzip_bomb, 7: plain, 8: elsewhere_redirect, 9: elsewhere}


def hostile(bind: str, port: int) -> None:
    """Targets that misbehave on purpose, one per port: a body that never
    ends, a gigabyte body, a body that trickles a byte a second, a redirect
    to itself, a TLS port that never answers the handshake, a DNS server
    (UDP) that never answers, a gzip bomb, a short plain body (for a
    catastrophic regex), and a redirect to another origin whose server logs
    any credentials that followed it."""

    async def endless(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (65_536, b"x" * 65_536)
        with contextlib.suppress(OSError):
            while True:
                writer.write(chunk)
                await writer.drain()

    async def gigabyte(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (1 << 30))
        block = b"\0" * 65_536
        with contextlib.suppress(OSError):
            for _ in range((1 << 30) // len(block)):
                writer.write(block)
                await writer.drain()

    async def trickle(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        with contextlib.suppress(OSError):
            for _ in range(1000):
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(1)

    async def redirect_loop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n"
                     b"Connection: close\r\n\r\n")  # fmt: skip
        await writer.drain()
        writer.close()

    async def stalled(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while await reader.read(4096):
                pass  # takes the ClientHello and every byte after it; says nothing

    class Silent(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            pass

    async def forever() -> None:
        handlers = {0: endless, 1: gigabyte, 2: trickle, 3: redirect_loop, 4: stalled,
                    **answering(bind, port)}  # fmt: skip
        servers = [await asyncio.start_server(h, bind, port + i) for i, h in handlers.items()]
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(Silent, local_addr=(bind, port + 5))
        async with contextlib.AsyncExitStack() as stack:
            for server in servers:
                await stack.enter_async_context(server)
            await asyncio.sleep(3600 * 24)

    asyncio.run(forever())


def canary(bind: str, port: int) -> None:
    with socket.create_server((bind, port)) as server:
        while True:
            connection, _ = server.accept()
            connection.close()


def ntfy(bind: str, port: int, faults: Path | None) -> None:
    """The ntfy test server; while the faults file says 429, every publish
    is refused with 429 and Retry-After: 2."""

    def on_cue(inbox: Inbox) -> None:
        cue = faults.read_text().strip() if faults is not None and faults.exists() else ""
        inbox.retry_after_s = 2 if cue == "429" else None
        if cue == "429":
            print(json.dumps({"refusing": 429}), flush=True)  # the world counts these

    def on_published(message: dict[str, Any], client: str) -> None:
        # The world reads who posted each copy from this log.
        line = {"published": message.get("sequence_id", message["id"]), "from": client}
        print(json.dumps(line), flush=True)

    async def forever() -> None:
        async with serving(Inbox(before_request=on_cue, on_published=on_published), bind, port):
            while True:
                await asyncio.sleep(3600)

    asyncio.run(forever())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["target", "hostile", "canary", "ntfy"])
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path)
    parser.add_argument("--faults", type=Path)
    args = parser.parse_args()
    if args.what == "target":
        target(args.bind, args.port, args.state)
    elif args.what == "hostile":
        hostile(args.bind, args.port)
    elif args.what == "canary":
        canary(args.bind, args.port)
    else:
        ntfy(args.bind, args.port, args.faults)


if __name__ == "__main__":
    main()
