"""The HTTP probe's engine: one HTTP/1.1 request on a fresh connection
(asyncio streams, TLS from the event loop), the answer parsed by h11, the
body read and decoded only up to its cap.

httpx reaches the same wire through a client, a connection pool and two
layers of request and response models; a check needs none of that, and that
machinery was most of a check's CPU (BENCHMARKS.md, part 1). The node keeps
httpx where its client API earns its cost: sync between the nodes and ntfy.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import zlib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import h11

from watchers.probes.phases import PhaseClock

# Like httpcore's: a status line and headers larger than this are refused.
MAX_HEAD_BYTES = 100 * 1024
READ_BYTES = 64 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}
# What a path may hold as it is; anything else is percent-encoded (a
# redirect's Location may carry spaces or non-ASCII, as browsers accept).
PATH_SAFE = "/%:@!$&'()*+,;=-._~"
QUERY_SAFE = PATH_SAFE + "?"
# Only encodings the probe decodes itself, within the body's cap.
ACCEPT_ENCODING = "gzip, deflate"


class AnswerError(Exception):
    """The server's answer broke HTTP/1.1, or it closed without one."""


class Response:
    """A response whose head has been read; its body is read on demand.
    Header names are lower case; a repeated header's values are joined."""

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str],
        connection: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.status = status
        self.headers = headers
        self._connection = connection
        self._reader = reader
        self._writer = writer

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        found = self._writer.get_extra_info("ssl_object")
        return found if isinstance(found, ssl.SSLObject) else None

    async def read(self, cap: int) -> tuple[bytes, bool]:
        """At most cap bytes of the decoded body, and whether it was cut. A
        compressed body is inflated here, never past the cap: a small gzip
        that expands to a gigabyte costs no more than cap."""
        encoding = self.headers.get("content-encoding", "").strip().lower()
        inflate = None
        if encoding in ("gzip", "x-gzip"):
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            inflate = zlib.decompressobj()
        body = bytearray()
        while True:
            event = await self._next_event()
            if not isinstance(event, h11.Data):
                return bytes(body), False  # the end of the message, or of the connection
            if inflate is None:
                body += event.data[: cap - len(body)]
            else:
                try:
                    body += inflate.decompress(event.data, cap - len(body))
                except zlib.error:
                    return bytes(body), False  # what was decoded so far is judged
            if len(body) >= cap:
                return bytes(body), True

    def close(self) -> None:
        self._writer.transport.abort()

    async def _next_event(self) -> object:
        return await _next_event(self._connection, self._reader)


async def send(
    method: str,
    url: str,
    headers: Mapping[str, str],
    tls: ssl.SSLContext,
    phases: PhaseClock | None = None,
) -> Response:
    """Connect, send the request, read the response's head. The caller
    bounds the time (asyncio.timeout) and closes the response. phases: told
    of each phase as it begins (DNS, connect, TLS, first byte)."""
    phases = phases or PhaseClock()
    try:
        parts = urlsplit(url)
        given_port = parts.port  # raises on a port out of range
    except ValueError as exc:
        raise AnswerError(f"cannot fetch {url[:80]!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise AnswerError(f"cannot fetch {url[:80]!r}: expected an http or https URL")
    host = _ascii_host(parts.hostname)
    port = given_port or DEFAULT_PORTS[scheme]
    secure = scheme == "https"
    target = quote(parts.path or "/", safe=PATH_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=QUERY_SAFE)
    authority = f"[{host}]" if ":" in host else host
    if port != DEFAULT_PORTS[scheme]:
        authority += f":{port}"
    sent = {"host": authority, "accept": "*/*", "accept-encoding": ACCEPT_ENCODING}
    sent.update((name.lower(), value) for name, value in headers.items())
    if method in ("POST", "PUT"):
        sent.setdefault("content-length", "0")
    sent["connection"] = "close"
    connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
    try:
        head = h11.Request(method=method, target=target, headers=list(sent.items()))
        request = connection.send(head)
        end = connection.send(h11.EndOfMessage())
    except h11.LocalProtocolError as exc:
        raise AnswerError(f"cannot send the request: {exc}") from exc
    reader, writer = await _connect(host, port, phases)
    try:
        if secure:
            phases.begin("tls")
            await writer.start_tls(tls, server_hostname=host)
        phases.begin("first_byte")
        writer.write((request or b"") + (end or b""))
        while True:
            event = await _next_event(connection, reader)
            if isinstance(event, h11.Response):
                found: dict[str, str] = {}
                for name, value in event.headers:
                    key, text = name.decode("ascii"), _text(value)
                    found[key] = f"{found[key]}, {text}" if key in found else text
                return Response(event.status_code, found, connection, reader, writer)
            if not isinstance(event, h11.InformationalResponse):
                raise AnswerError("the server closed the connection without answering")
    except BaseException:
        writer.transport.abort()
        raise


async def _connect(
    host: str, port: int, phases: PhaseClock
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The DNS lookup, then a connection to the first address that takes it."""
    phases.begin("dns")
    loop = asyncio.get_running_loop()
    found: Sequence[tuple[Any, ...]] = _literal(host, port) or await loop.getaddrinfo(
        host, port, type=socket.SOCK_STREAM
    )
    phases.begin("connect")
    failure: OSError | None = None
    for _family, _kind, _proto, _, address in found:
        try:
            # A numeric address: the loop connects without a lookup (in C, on uvloop).
            return await asyncio.open_connection(address[0], port, limit=READ_BYTES)
        except OSError as exc:
            failure = failure or exc
    raise failure or OSError(f"no address for {host}")


def _literal(host: str, port: int) -> list[tuple[Any, ...]] | None:
    """An address written as one needs no lookup (a resolver thread costs a
    check about a fifth of its CPU)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.version == 4:
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]
    return [(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port, 0, 0))]


async def _next_event(connection: h11.Connection, reader: asyncio.StreamReader) -> object:
    """The next h11 event (or PAUSED), reading from the server as h11 needs."""
    while True:
        try:
            event = connection.next_event()
        except h11.RemoteProtocolError as exc:
            raise AnswerError(f"the answer is not HTTP/1.1: {exc}") from exc
        if event is not h11.NEED_DATA:
            return event
        data = await reader.read(READ_BYTES)
        nothing_yet = (
            connection.their_state is h11.SEND_RESPONSE and not connection.trailing_data[0]
        )
        if not data and nothing_yet:
            raise AnswerError("the server closed the connection without answering")
        connection.receive_data(data)


def _ascii_host(hostname: str) -> str:
    """The host as it goes on the wire: an internationalised name in IDNA."""
    try:
        hostname.encode("ascii")
    except UnicodeEncodeError:
        try:
            return hostname.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise AnswerError(f"cannot fetch from host {hostname[:80]!r}: {exc}") from exc
    return hostname


def _text(value: bytes) -> str:
    """A header value as text: UTF-8 where it is (a Location with a raw
    non-ASCII path, as browsers read it), else ISO 8859-1, byte for byte."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")
