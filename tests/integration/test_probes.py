"""Each probe kind against real servers on loopback."""

from __future__ import annotations

import asyncio
import os
import ssl
import time
import tracemalloc
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.integration.servers import LATE_S, dns_server, gzip_bomb, http_server, tls_context
from watchers import eventloop
from watchers.probes import KINDS, AnyTarget, HttpClients, ProbeContext, run_check
from watchers.probes.base import CheckResult
from watchers.probes.dns import DnsTarget
from watchers.probes.http import HttpTarget
from watchers.probes.icmp import NO_PERMISSION, IcmpTarget
from watchers.probes.push import PushTarget, judge_push
from watchers.probes.tcp import TcpTarget

T = TypeVar("T")


# Each test runs on every loop installed: asyncio's own, and uvloop (the
# node's loop where it is installed). The probes must behave the same on both.
chosen: list[str] = ["asyncio"]


@pytest.fixture(autouse=True, params=list(eventloop.INSTALLED))
def event_loop_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    chosen[0] = request.param
    yield request.param
    chosen[0] = "asyncio"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return eventloop.run(coro, chosen[0])


async def check(
    target: Any, timeout_s: float = 5.0, trust: ssl.SSLContext | None = None
) -> CheckResult:
    clients = HttpClients(trust=trust)
    try:
        ctx = ProbeContext(clients, last_push_ms=lambda _id: None, now_ms=lambda: 0)
        return await run_check(target, ctx, timeout_s)
    finally:
        await clients.aclose()


def http(url: str, **fields: Any) -> HttpTarget:
    return HttpTarget(kind="http", id="site", url=url, **fields)


def test_the_registry_and_the_config_union_agree() -> None:
    import typing

    assert set(typing.get_args(AnyTarget)) == {kind.model for kind in KINDS.values()}
    for name, kind in KINDS.items():
        assert kind.model.model_fields["kind"].annotation == typing.Literal[name]


@pytest.mark.parametrize(
    ("path", "fields", "ok", "reason"),
    [
        ("/ok", {}, True, "status 200"),
        ("/down", {}, False, "status 503"),
        ("/down", {"expect_status": (503,)}, True, "status 503"),
        ("/ok", {"keyword": "Welcome"}, True, "status 200"),
        ("/ok", {"keyword": "Goodbye"}, False, "keyword 'Goodbye' missing"),
        ("/ok", {"keyword_absent": "Welcome"}, False, "keyword 'Welcome' present"),
        ("/ok", {"regex": r"Welcome to the \w+"}, True, "status 200"),
        ("/ok", {"regex": r"^\d+$"}, False, r"regex '^\\d+$' not matched"),
        ("/json", {"json_path": "status.db", "json_equals": "ok"}, True, "status 200"),
        ("/json", {"json_path": "status.replicas.1", "json_equals": 2}, True, "status 200"),
        ("/json", {"json_path": "version", "json_contains": "1.4"}, True, "status 200"),
        ("/json", {"json_path": "status.db", "json_equals": "down"}, False,
         "JSON status.db is 'ok', expected 'down'"),
        ("/json", {"json_path": "status.cache"}, False, "JSON path status.cache missing"),
        ("/ok", {"json_path": "status"}, False, "body is not JSON"),
        ("/redirect", {"keyword": "Welcome"}, True, "status 200"),
        ("/redirect", {"max_redirects": 0}, True, "status 302"),
        ("/loop", {"max_redirects": 3}, False, "more than 3 redirects"),
    ],
)  # fmt: skip
def test_http_conditions(path: str, fields: dict[str, Any], ok: bool, reason: str) -> None:
    async def go() -> CheckResult:
        async with http_server() as base:
            return await check(http(base + path, **fields))

    result = run(go())
    assert (result.ok, result.reason) == (ok, reason)
    assert result.latency_ms is not None and result.latency_ms >= 0


def test_http_gives_up_on_a_slow_server_after_the_timeout() -> None:
    async def go() -> CheckResult:
        async with http_server() as base:
            return await check(http(base + "/slow"), timeout_s=0.5)

    result = run(go())
    assert (result.ok, result.reason) == (False, "timeout after 500 ms waiting for the first byte")
    assert result.details["failed_phase"] == "first_byte"


def test_http_reads_a_bottomless_body_only_up_to_its_cap() -> None:
    async def go() -> CheckResult:
        async with http_server() as base:
            return await check(http(base + "/stream", max_body_kb=256, keyword="xxx"))

    result = run(go())
    assert result.ok, result.reason


def test_a_gzip_bomb_costs_no_more_than_the_body_cap() -> None:
    gzip_bomb()  # built before memory is traced

    async def go() -> tuple[CheckResult, CheckResult]:
        async with http_server() as base:
            plain = await check(http(base + "/gzipped", keyword="Welcome"))
            tracemalloc.start()
            try:
                return plain, await check(http(base + "/bomb", max_body_kb=256))
            finally:
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                # 64 MB once decompressed; the probe holds a few times its cap.
                assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"

    plain, bomb = run(go())
    assert (plain.ok, plain.reason) == (True, "status 200"), "gzip is decoded"
    assert (bomb.ok, bomb.details.get("body_cut_at_kb")) == (True, 256), bomb


def test_a_targets_headers_never_follow_a_redirect_to_another_origin() -> None:
    secret = {"Authorization": "Bearer s3cret", "X-Api-Key": "k3y"}

    async def go() -> tuple[CheckResult, CheckResult]:
        async with http_server() as base:
            port = base.rsplit(":", 1)[1]
            same = await check(http(base + "/to-headers", headers=secret, keyword="s3cret"))
            away = await check(http(base + f"/away/{port}", headers=secret,
                                    keyword="localhost", keyword_absent="s3cret"))  # fmt: skip
            return same, away

    same, away = run(go())
    assert (same.ok, same.reason) == (True, "status 200"), "kept within the origin"
    assert (away.ok, away.reason) == (True, "status 200"), away.reason
    assert "k3y" not in away.reason


def test_a_catastrophic_regex_ends_at_once() -> None:
    # Python's re takes minutes on this pattern and an 85-byte body.
    body_regex = r"((\w|\W)*)*!"

    async def go() -> CheckResult:
        async with http_server() as base:
            began = time.monotonic()
            result = await check(http(base + "/ok", regex=body_regex))
            assert time.monotonic() - began < 2.0
            return result

    result = run(go())
    assert (result.ok, result.reason) == (False, f"regex {body_regex!r} not matched")


def test_a_regex_re2_cannot_run_is_refused_naming_why() -> None:
    with pytest.raises(
        ValueError, match=r"(?s)regex.*linear time.*backreferences.*invalid escape sequence: \\1"
    ):
        http("http://127.0.0.1/", regex=r"(a)\1")


def test_a_json_value_in_a_reason_is_a_short_marked_excerpt() -> None:
    async def go() -> CheckResult:
        async with http_server() as base:
            return await check(http(base + "/json-long", json_path="status", json_equals="fine"))

    result = run(go())
    assert not result.ok and result.reason.endswith("… (excerpt), expected 'fine'"), result.reason
    assert len(result.reason) < 120


def test_http_latency_limit() -> None:
    async def go() -> CheckResult:
        async with http_server() as base:
            return await check(http(base + "/ok", max_latency_ms=0.001))

    result = run(go())
    assert not result.ok and result.reason.startswith("slow: ")


@pytest.mark.parametrize(
    ("path", "fields", "phase"),
    [("/down", {}, "status"), ("/ok", {"keyword": "Goodbye"}, "content"),
     ("/ok", {"max_latency_ms": 0.001}, "slow"), ("/loop", {"max_redirects": 1}, "status")],
)  # fmt: skip
def test_a_failed_check_names_its_phase(path: str, fields: dict[str, Any], phase: str) -> None:
    async def go() -> CheckResult:
        async with http_server() as base:
            return await check(http(base + path, **fields))

    result = run(go())
    assert not result.ok and result.details["failed_phase"] == phase


def test_each_check_times_its_phases_and_a_late_answer_shows_in_the_first_byte() -> None:
    async def go() -> CheckResult:
        async with http_server() as base:
            return await check(http(base + "/late"))

    result = run(go())
    phases = {k: float(v) for k, v in result.details.items() if k.endswith("_ms")}
    assert set(phases) == {"dns_ms", "connect_ms", "first_byte_ms", "total_ms"}, result.details
    # The server waited LATE_S before its first byte: that is where the time went.
    assert LATE_S * 1000 <= phases["first_byte_ms"] < LATE_S * 1000 + 500
    assert sum(v for k, v in phases.items() if k != "total_ms") <= phases["total_ms"] + 0.1
    assert result.latency_ms is not None and phases["total_ms"] <= result.latency_ms + 1


def test_http_connection_refused() -> None:
    async def go() -> CheckResult:
        async with http_server() as base:
            url = base + "/ok"
        return await check(http(url))  # the server is closed now

    result = run(go())
    assert (result.ok, result.reason) == (False, "connect failed: connection refused")
    assert result.details["failed_phase"] == "connect" and "first_byte_ms" not in result.details


def test_https_records_days_left_and_judges_the_certificate(tmp_path: Path) -> None:
    fresh = tls_context(tmp_path, days_left=30)
    expired = tls_context(tmp_path, days_left=-2)

    def trust(days: int) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=tmp_path / f"cert{days}.pem")
        return context

    async def go() -> list[CheckResult]:
        out = []
        async with http_server(fresh) as base:
            out.append(await check(http(base + "/ok"), trust=trust(30)))
            out.append(await check(http(base + "/ok")))  # not trusted
            out.append(await check(http(base + "/ok", verify_tls=False)))
        async with http_server(expired) as base:
            out.append(await check(http(base + "/ok"), trust=trust(-2)))
        return out

    trusted, untrusted, unverified, old = run(go())
    assert trusted.ok and 29 <= float(trusted.details["cert_days_left"]) <= 30
    assert untrusted.reason.startswith("TLS handshake failed: certificate invalid")
    assert not untrusted.ok and untrusted.details["failed_phase"] == "tls"
    assert unverified.ok and 29 <= float(unverified.details["cert_days_left"]) <= 30
    assert (old.ok, old.reason) == (False, "TLS handshake failed: certificate expired")
    assert float(trusted.details["tls_ms"]) > 0 and "failed_phase" not in trusted.details


def test_tcp_connect_and_refused() -> None:
    async def go() -> tuple[CheckResult, CheckResult]:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        up = await check(TcpTarget(kind="tcp", id="db", host="127.0.0.1", port=port))
        server.close()
        await server.wait_closed()
        down = await check(TcpTarget(kind="tcp", id="db", host="127.0.0.1", port=port))
        return up, down

    up, down = run(go())
    assert (up.ok, up.reason) == (True, f"connected to port {up.reason.rsplit(' ', 1)[1]}")
    assert (down.ok, down.reason) == (False, "connection refused")


def test_dns_answers_expected_records_and_names_what_is_wrong() -> None:
    async def go() -> list[CheckResult]:
        async with dns_server({"app.example.test.": "192.0.2.7"}) as port:

            def target(query: str, **fields: Any) -> DnsTarget:
                return DnsTarget(kind="dns", id="dns", query=query, resolver="127.0.0.1",
                                 port=port, **fields)  # fmt: skip

            return [
                await check(target("app.example.test", expect="192.0.2.7")),
                await check(target("app.example.test", expect="192.0.2.8")),
                await check(target("gone.example.test")),
            ]

    good, wrong, missing = run(go())
    assert (good.ok, good.reason) == (True, "A 192.0.2.7")
    assert (wrong.ok, wrong.reason) == (False, "answer '192.0.2.7' lacks '192.0.2.8'")
    assert (missing.ok, missing.reason) == (False, "rcode NXDOMAIN")


def test_dns_without_an_answer_times_out() -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mute:  # bound, never answers
        mute.bind(("127.0.0.1", 0))
        port = mute.getsockname()[1]
        target = DnsTarget(kind="dns", id="dns", query="x.test", resolver="127.0.0.1", port=port)
        result = run(check(target, timeout_s=0.3))
    assert (result.ok, result.reason) == (False, "no answer after 300 ms")


def test_icmp_ping_of_loopback() -> None:
    result = run(check(IcmpTarget(kind="icmp", id="lo", host="127.0.0.1"), timeout_s=2))
    if os.geteuid() != 0 and result.reason == NO_PERMISSION:
        pytest.skip("this user may not ping: " + NO_PERMISSION)
    assert (result.ok, result.reason) == (True, "echo reply from 127.0.0.1")


def test_push_is_judged_by_the_silence_since_the_last_heartbeat() -> None:
    target = PushTarget(kind="push", id="backup", grace_s=60, token_env="RAVENS_PUSH")
    assert judge_push(target, 1_000, 31_000, 0) == CheckResult(True, None, "heartbeat 30 s ago")
    late = judge_push(target, 1_000, 91_000, 0)
    assert (late.ok, late.reason) == (False, "no heartbeat for 90 s (grace 60 s)")


def test_a_new_push_target_gets_its_whole_grace_from_when_it_is_watched() -> None:
    target = PushTarget(kind="push", id="backup", grace_s=60, token_env="RAVENS_PUSH")
    watched = 500_000
    waiting = judge_push(target, None, watched + 5_000, watched)
    assert (waiting.ok, waiting.reason) == (True, "waiting for the first heartbeat (grace 60 s)")
    silent = judge_push(target, None, watched + 61_000, watched)
    assert (silent.ok, silent.reason) == (False, "no heartbeat received in 61 s")
    # A heartbeat from before this node watched (it was stopped meanwhile):
    # the silence counts from when it watched again.
    restarted = judge_push(target, 1_000, watched + 30_000, watched)
    assert restarted.ok
