"""A registry's RDAP server on loopback, answering as RFC 9083 shapes
them: a domain object with its events, or an error object with its code."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CONFORMANCE = ["rdap_level_0", "icann_rdap_response_profile_0"]


def domain_object(name: str, expires_ms: int, base: str) -> dict[str, Any]:
    def moment(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return {
        "objectClassName": "domain",
        "rdapConformance": CONFORMANCE,
        "handle": name.upper().replace(".", "-"),
        "ldhName": name.upper(),
        "status": ["client transfer prohibited"],
        "events": [
            {"eventAction": "registration", "eventDate": "2015-03-01T10:00:00Z"},
            {"eventAction": "expiration", "eventDate": moment(expires_ms)},
            {"eventAction": "last update of RDAP database", "eventDate": "2026-11-30T00:00:00Z"},
        ],
        "links": [{"value": f"{base}domain/{name}", "rel": "self",
                   "href": f"{base}domain/{name}", "type": "application/rdap+json"}],
        "notices": [{"title": "Terms of Use", "description": ["For tests only."]}],
    }  # fmt: skip


def error_object(code: int, title: str) -> dict[str, Any]:
    return {"errorCode": code, "title": title, "rdapConformance": CONFORMANCE}


@contextmanager
def rdap_server(registry: dict[str, int | None]) -> Iterator[tuple[str, list[str]]]:
    """Yields the server's base URL and the list of domains asked, in order.
    registry: domain -> expiry (epoch ms); None answers 500 (a broken registry),
    a domain not listed 404."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.rsplit("/", 1)[-1].lower()
            asked.append(name)
            if not self.path.startswith("/domain/"):
                status, body = 400, error_object(400, "Bad Request")
            elif name not in registry:
                status, body = 404, error_object(404, "Not Found")
            elif registry[name] is None:
                status, body = 500, error_object(500, "Internal Server Error")
            else:
                expires = registry[name]
                assert expires is not None
                status, body = 200, domain_object(name, expires, base)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/rdap+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base, asked
    finally:
        server.shutdown()
        server.server_close()
