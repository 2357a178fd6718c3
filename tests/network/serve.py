"""What runs inside the test namespaces besides the nodes: a target that
answers 503 while its state file says down, a canary listener, and the
ntfy test server. ``python -m tests.network.serve target|canary|ntfy ...``"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from notify.inbox import Inbox, serving


def target(bind: str, port: int, state: Path) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            down = state.exists() and state.read_text().strip() == "down"
            body = b"unavailable" if down else b"Welcome"
            self.send_response(503 if down else 200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    ThreadingHTTPServer((bind, port), Handler).serve_forever()


def canary(bind: str, port: int) -> None:
    with socket.create_server((bind, port)) as server:
        while True:
            connection, _ = server.accept()
            connection.close()


def ntfy(bind: str, port: int) -> None:
    async def forever() -> None:
        async with serving(Inbox(), bind, port):
            while True:
                await asyncio.sleep(3600)

    asyncio.run(forever())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["target", "canary", "ntfy"])
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path)
    args = parser.parse_args()
    if args.what == "target":
        target(args.bind, args.port, args.state)
    elif args.what == "canary":
        canary(args.bind, args.port)
    else:
        ntfy(args.bind, args.port)
    time.sleep(0)


if __name__ == "__main__":
    main()
