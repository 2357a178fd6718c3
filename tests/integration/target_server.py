"""A local HTTP target whose answers a test (or the demo) controls, in a thread."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Behaviour:
    """What the target answers: healthy, down, or down for one node only."""

    def __init__(self) -> None:
        self.down = False
        self.down_for: str | None = None  # a node name seen in the User-Agent


def serve(behaviour: Behaviour) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            agent = self.headers.get("User-Agent", "")
            blocked = behaviour.down_for is not None and behaviour.down_for in agent
            status = 503 if behaviour.down or blocked else 200
            body = b"Welcome" if status == 200 else b"unavailable"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]
