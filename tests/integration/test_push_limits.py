"""Push URLs under a flood: each URL and each client address has a burst
and then a steady rate; past it a 429 with Retry-After, and nothing written.
A node built in this process, on a fake clock, served over ASGI."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.integration.inprocess import node_in_process
from watchers.ratelimit import Buckets, PushLimits
from watchers.web import app_for

BACKUP, NIGHTLY = "b" * 32, "n" * 32


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def config(data_dir: Path) -> str:
    return f"""
[node]
name = "huginn"
listen = "127.0.0.1:1"
data_dir = "{data_dir}"
[sync]
secret_env = "UNUSED"
[[canaries]]
host = "127.0.0.1"
[[targets]]
id = "backup"
kind = "push"
grace_s = 3600
token_env = "UNUSED_B"
[[targets]]
id = "nightly"
kind = "push"
grace_s = 3600
token_env = "UNUSED_N"
"""


def test_a_flooded_push_url_is_refused_past_its_burst_and_the_others_go_on(
    tmp_path: Path,
) -> None:
    clock = FakeClock()

    async def go() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        tokens = {BACKUP: "backup", NIGHTLY: "nightly"}
        async with node_in_process(config(tmp_path), tokens) as node:
            node.push_limits = PushLimits(clock=clock)
            transport = httpx.ASGITransport(app=app_for(node), client=("198.51.100.7", 4000))
            async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
                flood = [await client.post(f"/api/v1/push/{BACKUP}") for _ in range(30)]
                seen["flood"] = [r.status_code for r in flood]
                seen["refusal"] = flood[-1].json()["error"], flood[-1].headers["retry-after"]
                seen["written"] = node.core.log.get("push/backup")
                seen["other"] = (await client.post(f"/api/v1/push/{NIGHTLY}")).status_code
                clock.now += 6
                seen["later"] = (await client.post(f"/api/v1/push/{BACKUP}")).status_code
        return seen

    seen = asyncio.run(go())
    assert seen["flood"] == [200] * 10 + [429] * 20
    error, retry_after = seen["refusal"]
    assert "too many heartbeats on this push URL" in error and retry_after == "6"
    assert seen["other"] == 200, "another URL is not held back by the flooded one"
    assert seen["later"] == 200, "one token back after 6 s"


def test_guessing_push_urls_from_one_address_is_slowed_to_two_a_second(tmp_path: Path) -> None:
    clock = FakeClock()

    async def go() -> list[int]:
        async with node_in_process(config(tmp_path), {BACKUP: "backup"}) as node:
            node.push_limits = PushLimits(clock=clock)
            transport = httpx.ASGITransport(app=app_for(node), client=("198.51.100.9", 4000))
            async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
                codes = [(await client.get(f"/api/v1/push/guess{i:04d}")).status_code
                         for i in range(70)]  # fmt: skip
                # The right URL from the same address waits like the guesses.
                codes.append((await client.get(f"/api/v1/push/{BACKUP}")).status_code)
                clock.now += 1
                codes.append((await client.get(f"/api/v1/push/{BACKUP}")).status_code)
        return codes

    codes = asyncio.run(go())
    assert codes[:60] == [404] * 60 and codes[60:70] == [429] * 10
    assert codes[70:] == [429, 200]


def test_buckets_are_bounded_in_keys() -> None:
    clock = FakeClock()
    buckets = Buckets(burst=1, per_second=1.0, max_keys=100, clock=clock)
    for i in range(1000):
        assert buckets.take(f"10.0.{i // 256}.{i % 256}") is None
    assert len(buckets._buckets) == 100
    assert buckets.take("10.0.3.231") == 1, "a recent key keeps its empty bucket"
