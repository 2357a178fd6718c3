"""A webhook receiver for the tests: it records every delivery (headers,
body, what it answered), answers as the test says (204, or a 5xx storm, or
a refusal), and keeps what it accepted once per webhook-id, as the
Standard Webhooks convention asks a receiver to. Served in process (ASGI)
or on a loopback port (a thread)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from notify.signing import verify

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYqr"


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def data(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.body)["data"]
        return found

    def signed_by(self, key: bytes) -> bool:
        h = self.headers
        stamp = h.get("webhook-timestamp", "")
        now = int(stamp) if stamp.isdigit() else 0
        return verify(key, h.get("webhook-id", ""), stamp, h.get("webhook-signature", ""),
                      self.body, now)  # fmt: skip


@dataclass
class Receiver:
    # What it answers POSTs with; 204 takes the delivery.
    status: int = 204
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, method: str, headers: dict[str, str], body: bytes) -> int:
        if method != "POST":
            return 405  # a HEAD probe: answered, so the receiver is there
        with self.lock:
            status = self.status
            self.deliveries.append(Delivery(headers, body, status))
        return status

    def accepted(self) -> list[Delivery]:
        """Each webhook-id's first delivery answered 2xx, in arrival order."""
        seen: set[str] = set()
        found = []
        with self.lock:
            for d in self.deliveries:
                if 200 <= d.answered < 300 and d.headers["webhook-id"] not in seen:
                    seen.add(d.headers["webhook-id"])
                    found.append(d)
        return found

    def copies(self) -> int:
        """Deliveries answered 2xx beyond each webhook-id's first."""
        with self.lock:
            taken = sum(1 for d in self.deliveries if 200 <= d.answered < 300)
        return taken - len(self.accepted())

    def told(self, target: str) -> list[str]:
        return [d.data["notice"] for d in self.accepted() if d.data.get("target") == target]

    def tried_by(self, agent_part: str) -> int:
        with self.lock:
            return sum(1 for d in self.deliveries if agent_part in d.headers.get("user-agent", ""))


def asgi_app(receiver: Receiver) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        status = receiver.take(scope["method"], headers, body)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


@contextmanager
def serve_in_thread(receiver: Receiver) -> Iterator[str]:
    """The receiver on a loopback port; its URL. Stopped on exit."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            self.send_response(receiver.take(self.command, headers, body))
            self.send_header("content-length", "0")
            self.end_headers()

        do_POST = do_HEAD = _answer

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/ravens"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
