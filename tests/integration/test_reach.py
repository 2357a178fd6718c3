"""Targets added through the admin API reach only public addresses unless
the config allows more: the node's loopback services, private ranges, the
cloud's metadata address and the node's own API stay out of an admin
token's reach. Every refusal below is asserted with nothing connecting."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.integration.inprocess import node_in_process
from tests.integration.servers import SERVED, http_server
from tests.integration.test_probes import http
from watchers.probes import HttpClients, ProbeContext, Reach, run_check
from watchers.probes.http import HttpTarget
from watchers.probes.reach import Address, not_public, resolve
from watchers.secrets import ApiTokens
from watchers.web import app_for

T = TypeVar("T")
TOKEN = "a" * 40


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def config_text(data_dir: Path, extra: str = "") -> str:
    return f"""
[node]
name = "huginn"
listen = "127.0.0.1:1"
data_dir = "{data_dir}"
public_url = "http://127.0.0.7:8470"
[[peers]]
name = "muninn"
url = "http://127.0.0.8:8470"
[sync]
secret_env = "UNUSED"
[[canaries]]
host = "127.0.0.1"
{extra}
"""


async def add_targets(data_dir: Path, bodies: list[dict[str, Any]], extra: str = "") -> list[Any]:
    """Each body POSTed to a node built in this process; the answers."""
    answers = []
    tokens = ApiTokens(None, {TOKEN: "ops"})
    async with node_in_process(config_text(data_dir, extra), api=tokens) as node:
        transport = httpx.ASGITransport(app=app_for(node))
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            for body in bodies:
                got = await client.post("/api/v1/admin/targets", json=body,
                                        headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
                answers.append((got.status_code, got.json()))
    return answers


REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"kind": "http", "url": "http://127.0.0.1:{port}/ok"}, "url: refused: 127.0.0.1 is loopback"),
    ({"kind": "http", "url": "http://localhost:{port}/ok"}, "url: refused: localhost ("),
    ({"kind": "http", "url": "http://169.254.169.254/latest/meta-data/"},
     "url: refused: 169.254.169.254 is link-local"),
    ({"kind": "http", "url": "http://[::1]:{port}/"}, "url: refused: ::1 is loopback"),
    ({"kind": "http", "url": "http://[::ffff:127.0.0.1]:{port}/"}, "is loopback"),
    ({"kind": "tcp", "host": "10.0.0.5", "port": 5432}, "host: refused: 10.0.0.5 is private"),
    ({"kind": "tcp", "host": "0.0.0.0", "port": 22}, "host: refused: 0.0.0.0 is unspecified"),
    ({"kind": "icmp", "host": "100.64.0.1"}, "host: refused: 100.64.0.1 is not a public address"),
    ({"kind": "dns", "query": "example.com", "resolver": "192.168.1.1"},
     "resolver: refused: 192.168.1.1 is private"),
]  # fmt: skip


def test_admin_targets_on_internal_addresses_are_refused_naming_the_key(tmp_path: Path) -> None:
    async def go() -> tuple[list[Any], list[str]]:
        async with http_server() as base:
            port = base.rsplit(":", 1)[1]
            SERVED.clear()
            bodies = [{**body, "id": f"t{i}"} for i, (body, _) in enumerate(REFUSED)]
            for body in bodies:
                if "url" in body:
                    body["url"] = body["url"].format(port=port)
            answers = await add_targets(tmp_path, bodies)
            return answers, list(SERVED)

    answers, served = run(go())
    for (status, answer), (_, words) in zip(answers, REFUSED, strict=True):
        assert status == 400 and words in answer["error"], answer
        assert "[admin] allow_private_targets" in answer["error"]
    assert served == [], "nothing connected to the local server"


def test_the_node_s_own_and_its_peer_s_address_are_refused(tmp_path: Path) -> None:
    """127.0.0.7 and .8 stand for the public addresses of this node and its peer."""

    async def as_public(host: str) -> list[Address]:
        found = await resolve(host)
        if found and str(found[0]).startswith("127.0.0."):
            return [ipaddress.ip_address("9.9.9." + str(found[0]).rsplit(".", 1)[1])]
        return found

    async def go() -> list[bool]:
        reach = Reach(public_only=True, own_names=("127.0.0.7", "127.0.0.8"), resolver=as_public)
        return [
            "this node's own address" in (await reach.refusal(["127.0.0.7"]) or ""),
            "this node's own address" in (await reach.refusal(["127.0.0.8"]) or ""),
            await reach.refusal(["127.0.0.9"]) is None,
        ]

    assert run(go()) == [True, True, True]


def test_a_config_may_allow_private_targets(tmp_path: Path) -> None:
    async def go() -> list[Any]:
        async with http_server() as base:
            body = {"id": "local", "kind": "http", "url": base + "/ok"}
            return await add_targets(tmp_path, [body], "[admin]\nallow_private_targets = true\n")

    ((status, answer),) = run(go())
    assert status == 201 and answer["source"] == "api", answer


async def _check(target: HttpTarget, reach: Reach | None) -> Any:
    clients = HttpClients()
    try:
        ctx = ProbeContext(clients, last_push_ms=lambda _id: None, now_ms=lambda: 0)
        return await run_check(target, ctx, 5.0, reach)
    finally:
        await clients.aclose()


def test_a_redirect_to_an_internal_address_is_refused_before_it_connects() -> None:
    """The target's own address passes (as if public); its redirect to
    localhost is judged like the target and refused, unfollowed."""

    async def first_hop_public(host: str) -> list[Address]:
        if host == "127.0.0.1":
            return [ipaddress.ip_address("9.9.9.10")]
        return await resolve(host)

    async def go() -> tuple[Any, list[str]]:
        async with http_server() as base:
            port = base.rsplit(":", 1)[1]
            SERVED.clear()
            reach = Reach(public_only=True, resolver=first_hop_public)
            result = await _check(http(f"{base}/away/{port}"),
                                  reach)  # fmt: skip
            return result, list(SERVED)

    result, served = run(go())
    assert not result.ok and result.reason.startswith("redirect refused: localhost ("), result
    assert served == [f"/away/{served[0].rsplit('/', 1)[1]}"], "the redirect was not followed"


def test_an_admin_target_s_reason_quotes_nothing_of_the_body() -> None:
    async def go() -> tuple[Any, Any]:
        async with http_server() as base:
            target = http(base + "/json-long", json_path="status",
                                json_equals="fine")  # fmt: skip
            everywhere = Reach(public_only=False)
            return await _check(target, None), await _check(target, everywhere)

    from_config, from_admin = run(go())
    assert "all good" in from_config.reason, "a config target quotes a marked excerpt"
    assert from_admin.reason == "JSON status is not 'fine'"


@pytest.mark.parametrize(
    ("address", "kind"),
    [("8.8.8.8", None), ("2606:4700::1111", None), ("172.16.0.1", "private"),
     ("fe80::1", "link-local"), ("fd00::1", "private"), ("224.0.0.1", "multicast"),
     ("::ffff:10.1.2.3", "private"), ("192.0.2.1", "private")],
)  # fmt: skip
def test_what_counts_as_public(address: str, kind: str | None) -> None:
    assert not_public(ipaddress.ip_address(address)) == kind


def test_an_admin_target_cannot_read_the_node_s_files_into_its_headers(tmp_path: Path) -> None:
    bodies = [
        {"id": "f", "kind": "http", "url": "https://shop.example.com/",
         "header_file": {"X-Leak": "/etc/ravens/secrets/sync-secret"}},
        {"id": "e", "kind": "http", "url": "https://shop.example.com/",
         "header_env": {"X-Leak": "RAVENS_SYNC_SECRET"}},
    ]  # fmt: skip
    answers = run(add_targets(tmp_path, bodies, "[admin]\nallow_private_targets = true\n"))
    assert [(status, answer["error"].split(":")[0]) for status, answer in answers] == [
        (400, "header_file"), (400, "header_env")]  # fmt: skip
    assert all("only for targets in the config file" in a["error"] for _, a in answers)
