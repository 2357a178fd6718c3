"""Anonymous load is bounded: a page rendered once for many visitors, and
past a few open requests at once the rest turned away with 503 and
Retry-After, while peers, heartbeats and health probes always pass."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.integration.inprocess import node_in_process
from watchers import api, metrics
from watchers.live import LiveCheck
from watchers.shed import RenderCache, Shed, Shedding
from watchers.web import app_for


def test_past_the_bound_requests_are_shed_at_once_and_peers_and_health_pass() -> None:
    release = asyncio.Event()

    async def slow(_request: Request) -> PlainTextResponse:
        await release.wait()
        return PlainTextResponse("page")

    async def quick(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", slow), Route("/healthz", quick),
                            Route("/sync/pull", quick, methods=["POST"])])  # fmt: skip
    state = Shedding(max_active=2, max_waiting=3)
    shed = Shed(app, state)

    async def go() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=shed)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            visitors = [asyncio.create_task(client.get("/")) for _ in range(10)]
            for _ in range(5_000):  # 2 served, 3 waiting, 5 turned away
                if state.shed >= 5:
                    break
                await asyncio.sleep(0.001)
            turned = [v for v in visitors if v.done()]
            health = await client.get("/healthz")
            peer = await client.post("/sync/pull")
            release.set()
            answers = await asyncio.gather(*visitors)
        return {"turned": [t.result() for t in turned], "answers": answers,
                "health": health.status_code, "peer": peer.status_code}  # fmt: skip

    seen = asyncio.run(go())
    assert len(seen["turned"]) == 5
    for busy in seen["turned"]:
        assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
        assert "busy" in busy.json()["error"]
    assert sorted(a.status_code for a in seen["answers"]) == [200] * 5 + [503] * 5
    assert (seen["health"], seen["peer"]) == (200, 200)
    assert (state.waiting, state.slots.locked()) == (0, False), "every slot given back"


def test_a_page_is_rendered_once_for_everyone_who_asks_meanwhile() -> None:
    now = [100.0]
    cache = RenderCache(ttl_s=5.0, clock=lambda: now[0])
    renders: list[int] = []

    async def render() -> str:
        renders.append(1)
        await asyncio.sleep(0.01)
        return f"page {len(renders)}"

    async def failing() -> str:
        raise RuntimeError("the database is gone")

    async def go() -> tuple[list[str], str, str, list[str]]:
        many = await asyncio.gather(*(cache.get("/", render) for _ in range(50)))
        now[0] += 4.9
        still = await cache.get("/", render)
        now[0] += 0.2
        fresh = await cache.get("/", render)
        errors = await asyncio.gather(*(cache.get("x", failing) for _ in range(3)),
                                      return_exceptions=True)  # fmt: skip
        return many, still, fresh, [str(e) for e in errors]

    many, still, fresh, errors = asyncio.run(go())
    assert set(many) == {"page 1"} and still == "page 1"
    assert fresh == "page 2" and len(renders) == 2
    assert errors == ["the database is gone"] * 3, "every asker hears the failure"


def test_a_page_just_past_its_time_is_served_while_one_render_makes_the_next() -> None:
    now = [100.0]
    cache = RenderCache(ttl_s=5.0, stale_s=5.0, clock=lambda: now[0])
    renders: list[int] = []
    release = asyncio.Event()

    async def render() -> str:
        renders.append(1)
        if len(renders) > 1:
            await release.wait()  # the background render takes its time
        return f"page {len(renders)}"

    async def go() -> tuple[str, list[str], str, str, str]:
        first = await cache.get("/", render)
        now[0] += 6.0  # past ttl_s, within stale_s
        meanwhile = [await cache.get("/", render) for _ in range(20)]
        await asyncio.sleep(0)  # the background render begins
        meanwhile += [await cache.get("/", render) for _ in range(20)]
        while_rendering = len(renders)
        release.set()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        after = await cache.get("/", render)
        now[0] += 20.0  # long past: the asker waits for a fresh render
        waited = await cache.get("/", render)
        assert while_rendering == 2, "one render in the background for forty askers"
        return first, meanwhile, after, waited, str(len(renders))

    first, meanwhile, after, waited, count = asyncio.run(go())
    assert first == "page 1" and set(meanwhile) == {"page 1"}, "no asker waited"
    assert after == "page 2" and waited == "page 3" and count == "3"


def test_a_crowd_asking_for_the_target_list_and_the_metrics_shares_one_render(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A node built in this process with 20 targets; every summary of a target
    # the list makes is counted. 30 askers at once (within the shedding bound)
    # cost one list, not 30.
    targets = "".join(f'[[targets]]\nid = "t{i:02d}"\nkind = "tcp"\nhost = "127.0.0.1"\n'
                      f"port = 9\n" for i in range(20))  # fmt: skip
    made: list[str] = []
    summary = api.target_summary

    def counted(node: Any, target_id: str) -> dict[str, Any]:
        made.append(target_id)
        return summary(node, target_id)

    monkeypatch.setattr(api, "target_summary", counted)
    config = (
        f'[node]\nname = "huginn"\nlisten = "127.0.0.1:1"\ndata_dir = "{tmp_path}"\n'
        f'[sync]\nsecret_env = "UNUSED"\n[[canaries]]\nhost = "127.0.0.1"\n{targets}'
    )

    async def go() -> tuple[list[httpx.Response], list[httpx.Response]]:
        async with node_in_process(config) as node:
            transport = httpx.ASGITransport(app=app_for(node))
            async with httpx.AsyncClient(transport=transport, base_url="http://n") as client:
                lists = await asyncio.gather(*(client.get("/api/v1/targets") for _ in range(30)))
                scrapes = await asyncio.gather(*(client.get("/metrics") for _ in range(30)))
                return lists, scrapes

    lists, scrapes = asyncio.run(go())
    assert {r.status_code for r in lists + scrapes} == {200}
    assert len({r.text for r in lists}) == 1 and len(lists[0].json()["targets"]) == 20
    assert sorted(made) == [f"t{i:02d}" for i in range(20)], "one list made for 30 askers"
    assert (
        len({r.text for r in scrapes}) == 1 and 'ravens_target_up{target="t00"}' in scrapes[0].text
    )


def test_the_metrics_made_a_slice_at_a_time_are_the_libraries_exposition_to_the_byte(
    tmp_path: Path,
) -> None:
    """250 targets (three slices), latencies from both nodes for some: the
    exposition made between turns for the loop is what prometheus_client
    writes for the whole collector in one go."""
    targets = "".join(f'[[targets]]\nid = "t{i:03d}"\nkind = "tcp"\nhost = "127.0.0.1"\n'
                      f"port = 9\n" for i in range(250))  # fmt: skip
    config = (
        f'[node]\nname = "huginn"\nlisten = "127.0.0.1:1"\ndata_dir = "{tmp_path}"\n'
        f'[sync]\nsecret_env = "UNUSED"\n[[peers]]\nname = "muninn"\n'
        f'url = "http://127.0.0.1:2"\n[[canaries]]\nhost = "127.0.0.1"\n{targets}'
    )

    async def go() -> tuple[bytes, bytes, int]:
        async with node_in_process(config) as node:
            for i in range(0, 250, 3):
                node.live.record("huginn", f"t{i:03d}", LiveCheck(1_000 + i, True, 7.5 + i, "200"))
            for i in range(0, 250, 7):
                node.live.record("muninn", f"t{i:03d}", LiveCheck(2_000 + i, False, None, "503"))
            turns = 0

            async def count_turns() -> None:
                nonlocal turns
                while True:
                    await asyncio.sleep(0)
                    turns += 1

            counter = asyncio.create_task(count_turns())
            await asyncio.sleep(0)  # the counter is waiting for its first turn
            sliced = await metrics.metrics_text(node, 4)
            counter.cancel()
            registry = CollectorRegistry(auto_describe=False)
            registry.register(metrics.NodeCollector(node, 4))
            return sliced, generate_latest(registry), turns

    sliced, whole, turns = asyncio.run(go())
    assert sliced == whole
    assert whole.count(b"ravens_check_latency_seconds{") == len(range(0, 250, 3))
    assert whole.count(b"# TYPE ravens_target_state gauge") == 1
    assert turns >= 3, "the loop turned between slices"


def test_a_render_of_an_older_generation_is_never_served() -> None:
    """A change the pair agreed on (the stream's count moved) is on the
    next page asked for, fresh or stale in time alike."""
    now = [0.0]
    cache = RenderCache(ttl_s=5.0, stale_s=5.0, clock=lambda: now[0])
    renders: list[int] = []

    async def render() -> str:
        renders.append(1)
        await asyncio.sleep(0.01)
        return f"page {len(renders)}"

    async def go() -> list[str]:
        seen = [await cache.get("/", render, generation=1)]
        now[0] += 1.0  # fresh in time, but the pair agreed on something
        seen += await asyncio.gather(*(cache.get("/", render, generation=2) for _ in range(5)))
        now[0] += 7.0  # stale in time: served while the next renders
        seen.append(await cache.get("/", render, generation=2))
        seen.append(await cache.get("/", render, generation=3))
        return seen

    seen = asyncio.run(go())
    assert seen[0] == "page 1"
    assert set(seen[1:6]) == {"page 2"}, "one render shared, the old page never served"
    assert seen[6] == "page 2" and seen[7] == "page 4" and len(renders) == 4
