"""The HTTP probe's own engine against servers that answer byte for byte
what the test says: framing (chunked, 1xx, HEAD), answers that are not
HTTP, and what goes on the wire (Host, quoted paths, one request)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from watchers.probes import HttpClients, ProbeContext, run_check
from watchers.probes.base import CheckResult
from watchers.probes.http import HttpTarget


@asynccontextmanager
async def canned(*answers: bytes) -> AsyncIterator[tuple[int, list[bytes]]]:
    """A server that reads each request's head, then sends the next answer
    and closes; yields its port and the request heads it read."""
    heads: list[bytes] = []
    queue = list(answers)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(queue.pop(0) if queue else b"")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], heads
    finally:
        server.close()
        await server.wait_closed()


def check(url: str, *answers: bytes, **fields: Any) -> tuple[CheckResult, list[bytes]]:
    async def go() -> tuple[CheckResult, list[bytes]]:
        async with canned(*answers) as (port, heads):
            target = HttpTarget(kind="http", id="t", url=url.format(port=port), **fields)
            ctx = ProbeContext(HttpClients(node="huginn"), lambda _t: None, lambda: 0)
            return await run_check(target, ctx, 3.0), heads

    return asyncio.run(go())


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nWelcome"


def test_a_chunked_body_is_read_across_its_chunks() -> None:
    body = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWelc\r\n3\r\nome\r\n0\r\n\r\n"
    )
    result, _ = check("http://127.0.0.1:{port}/", body, keyword="Welcome")
    assert (result.ok, result.reason) == (True, "status 200")


def test_an_informational_answer_before_the_real_one_is_skipped() -> None:
    result, _ = check("http://127.0.0.1:{port}/", b"HTTP/1.1 103 Early Hints\r\n\r\n" + OK)
    assert (result.ok, result.reason) == (True, "status 200")


def test_head_reads_no_body_whatever_the_length_says() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"
    result, heads = check("http://127.0.0.1:{port}/", answer, method="HEAD")
    assert (result.ok, result.reason) == (True, "status 200")
    assert heads[0].startswith(b"HEAD / HTTP/1.1\r\n")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "the answer is not HTTP/1.1: "),
        (b"", "the server closed the connection without answering"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort", "the answer is not HTTP/1.1: "),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n",
         "the answer is not HTTP/1.1: "),
    ],
    ids=["not-http", "closed", "body-cut-short", "head-over-100kb"],
)  # fmt: skip
def test_an_answer_that_is_not_http_fails_the_check_naming_why(answer: bytes, reason: str) -> None:
    result, _ = check("http://127.0.0.1:{port}/", answer)
    assert not result.ok and result.reason.startswith(reason), result.reason
    assert len(result.reason) <= 160


def test_what_goes_on_the_wire_host_agent_and_a_quoted_redirect() -> None:
    moved = b"HTTP/1.1 302 Found\r\nLocation: /caf\xc3\xa9 menu?q=a b\r\nContent-Length: 0\r\n\r\n"
    result, heads = check("http://127.0.0.1:{port}/start", moved, OK, keyword="Welcome")
    assert (result.ok, result.reason) == (True, "status 200")
    first, second = (h.decode("latin-1") for h in heads)
    assert first.startswith("GET /start HTTP/1.1\r\n")
    assert "\r\nhost: 127.0.0.1:" in first.lower()
    assert "ravens/huginn (uptime watcher)" in first and "connection: close" in first.lower()
    assert second.startswith("GET /caf%C3%A9%20menu?q=a%20b HTTP/1.1\r\n"), second


def test_a_redirect_off_the_web_is_named() -> None:
    away = b"HTTP/1.1 301 Moved\r\nLocation: ftp://files.example/x\r\nContent-Length: 0\r\n\r\n"
    result, _ = check("http://127.0.0.1:{port}/", away)
    assert not result.ok
    assert result.reason == "cannot fetch 'ftp://files.example/x': expected an http or https URL"


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        (b"http://127.0.0.1:99999/", "cannot fetch 'http://127.0.0.1:99999/': Port out of range"),
        (b"http://[::1/", "redirect to a bad URL: Invalid IPv6 URL"),
        (b"http://" + b"a" * 70 + b"\xc3\xa9.example/", "cannot fetch from host "),
    ],
    ids=["port-out-of-range", "broken-ipv6", "bad-idna-label"],
)
def test_a_redirect_to_a_url_no_request_can_use_fails_the_check(
    location: bytes, reason: str
) -> None:
    """A hostile Location ends the check with a reason, never an exception
    that would leave the target unchecked."""
    away = b"HTTP/1.1 302 Found\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n\r\n"
    result, _ = check("http://127.0.0.1:{port}/", away)
    assert not result.ok and result.reason.startswith(reason), result.reason
