"""Real local servers for probe tests: HTTP(S), a DNS responder, TLS certificates.

Everything binds 127.0.0.1 on port 0 and is closed by the test that opened it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import gzip
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import dns.message
import dns.rcode
import dns.rrset
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

OK_PAGE = b"<html><body>Welcome to the blog</body></html>"
JSON_PAGE = b'{"status": {"db": "ok", "replicas": [1, 2]}, "version": "1.4.2"}'


@functools.cache
def gzip_bomb() -> bytes:
    """64 MB of zeros, gzipped to about 64 KB."""
    return gzip.compress(bytes(64 * 1024 * 1024), compresslevel=9)


# Every path any server here was asked for, in order (tests clear it).
SERVED: list[str] = []


def _response(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


LATE_S = 0.3


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        request = await reader.readuntil(b"\r\n\r\n")
        path = request.split(b" ", 2)[1].decode()
        SERVED.append(path)
        if path == "/ok":
            writer.write(_response(200, OK_PAGE))
        elif path == "/down":
            writer.write(_response(503, b"maintenance"))
        elif path == "/json":
            writer.write(_response(200, JSON_PAGE, {"Content-Type": "application/json"}))
        elif path == "/json-long":
            body = b'{"status": "' + b"all good here " * 20 + b'"}'
            writer.write(_response(200, body, {"Content-Type": "application/json"}))
        elif path == "/bomb":
            writer.write(_response(200, gzip_bomb(), {"Content-Encoding": "gzip"}))
        elif path == "/gzipped":
            writer.write(_response(200, gzip.compress(OK_PAGE), {"Content-Encoding": "gzip"}))
        elif path == "/headers":
            # The request's own headers, as the body: what reached this server.
            writer.write(_response(200, request))
        elif path == "/to-headers":
            writer.write(_response(302, b"", {"Location": "/headers"}))
        elif path.startswith("/away/"):
            # To the same server under another name: another origin.
            port = path.removeprefix("/away/")
            writer.write(_response(302, b"", {"Location": f"http://localhost:{port}/headers"}))
        elif path == "/redirect":
            writer.write(_response(302, b"", {"Location": "/ok"}))
        elif path.startswith("/loop"):
            n = int(path.removeprefix("/loop") or 0)
            writer.write(_response(302, b"", {"Location": f"/loop{n + 1}"}))
        elif path == "/late":
            # The first byte LATE_S after the request: what the phases must show.
            await asyncio.sleep(LATE_S)
            writer.write(_response(200, OK_PAGE))
        elif path == "/slow":
            await asyncio.sleep(3)
            writer.write(_response(200, OK_PAGE))
        elif path == "/stream":
            # Headers, then a body that never ends.
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            while True:
                writer.write(b"x" * 65_536)
                await writer.drain()
                await asyncio.sleep(0)
        else:
            writer.write(_response(404, b"not here"))
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
        pass
    finally:
        writer.close()


@asynccontextmanager
async def http_server(tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """Yields the base URL of a local HTTP(S) server."""
    server = await asyncio.start_server(_handle, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def tls_context(tmp: Path, days_left: int) -> ssl.SSLContext:
    """A server context with a self-signed certificate for 127.0.0.1 that
    expires in days_left days (negative: already expired)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    not_after = now + dt.timedelta(days=days_left)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(now, not_after) - dt.timedelta(days=30))
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"cert{days_left}.pem", tmp / f"key{days_left}.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


class _Dns(asyncio.DatagramProtocol):
    """Answers A queries from a fixed table; NXDOMAIN for the rest."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text()
        if name in self.table:
            response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", self.table[name]))
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@asynccontextmanager
async def dns_server(table: dict[str, str]) -> AsyncIterator[int]:
    """Yields the UDP port of a local DNS responder."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Dns(table), local_addr=("127.0.0.1", 0)
    )
    try:
        yield transport.get_extra_info("sockname")[1]
    finally:
        transport.close()
