"""Limits on what a client may make the node hold: the size of a request
body, and the time a client may take to send its request.

uvicorn bounds the request head (h11 refuses heads over 16 KB) but neither
the body nor the pace: a client could send a gigabyte, or one byte a
minute and hold a connection for ever. The body limit is ASGI middleware;
the pace limit is uvicorn's HTTP/1.1 protocol with a read deadline.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("ravens")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]


class BodyLimit:
    """Refuse with 413 a request body over ``limit_for(path)`` bytes, whether
    declared by Content-Length or sent chunked, before the app sees any of it."""

    def __init__(self, app: Any, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(send, f"body of {int(declared)} bytes is over {limit}")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await _refuse(send, f"body is over {limit} bytes")
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        whole: Message | None = {"type": "http.request", "body": b"".join(chunks)}

        async def replay() -> Message:
            nonlocal whole
            if whole is not None:
                message, whole = whole, None
                return message
            return await receive()  # type: ignore[no-any-return]

        await self.app(scope, replay, send)


async def _refuse(send: Send, message: str) -> None:
    await send_error(send, 413, message, [(b"connection", b"close")])


async def send_error(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]]
) -> None:
    """A JSON error answered from ASGI middleware, before any route ran."""
    body = json.dumps({"error": message, "status": status}).encode()
    length = (b"content-length", str(len(body)).encode())
    head = [(b"content-type", b"application/json"), length, *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def paced_protocol(read_timeout_s: float) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol, cutting off a client that has not sent
    a whole request (head and body) within ``read_timeout_s`` of its first
    byte, or of opening the connection. Idle keep-alive connections between
    requests stay uvicorn's business (its keep-alive timeout)."""

    class PacedH11Protocol(H11Protocol):
        reading_since: float | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._begin()

        def data_received(self, data: bytes) -> None:
            if self.reading_since is None and self.conn.their_state is h11.IDLE:
                self._begin()
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE and self.conn.their_state is not h11.SEND_BODY:
                self.reading_since = None  # the request is in; the app has it

        def _begin(self) -> None:
            since = self.loop.time()
            self.reading_since = since
            self.loop.call_later(read_timeout_s, self._deadline, since)

        def _deadline(self, since: float) -> None:
            if self.reading_since == since and not self.transport.is_closing():
                client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
                log.warning(
                    "http: %s sent no whole request within %g s; closed", client, read_timeout_s
                )
                self.transport.close()

    return PacedH11Protocol
