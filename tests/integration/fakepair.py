"""Two nodes in the test's own process, on a fake clock the test advances.

Each node is the real ``Node``: real SQLite files, its real web app, its
real probes of loopback targets. What is fake is only time and the wire
between them: sync goes to the peer's app and posts to an in-process ntfy
(``notify.inbox``) through ``httpx.ASGITransport``, each through a link the
test can cut. Jobs run on ``ClockSchedule`` over the fake clock, so minutes
of agreement take milliseconds, and an absence is proved by advancing past
the time it would have happened while the checks are seen to run.

After each advance the pair settles: every task is back waiting on the fake
clock (or done), so what a test reads next is what the nodes did by then.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import inspect
import itertools
import ssl
import time
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from notify.inbox import Inbox
from notify.inbox import app_for as inbox_app
from tests.integration.notify_world import WORLD_WALL
from watchers.config import parse_config
from watchers.probes import HttpClients
from watchers.runtime import Node, Seams
from watchers.schedule import ClockSchedule
from watchers.secrets import api_tokens, with_secrets
from watchers.web import app_for

NAMES = ("huginn", "muninn")
SECRET = "s" * 40
NTFY_TOKEN = "tk_" + "a" * 29
# A start far from the machine's time: nothing may read the real clock.
START_MS = 1_900_000_000_000
SETTLE_LIMIT_S = 20.0


class FakeTime:
    """One timeline for the pair: sleepers wake in order as it advances."""

    def __init__(self, start_ms: int = START_MS) -> None:
        self.mono = 0.0
        self.wall0 = start_ms / 1000
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        # Tasks now waiting on this clock (and the helpers that wait for them).
        self.parked: set[asyncio.Task[Any]] = set()
        # The loop's live tasks, kept by a task factory (track): settle asks
        # after them at every step, and asyncio.all_tasks() walks every task
        # of the process not yet collected (hundreds, by the end of a run).
        self.live: set[asyncio.Task[Any]] = set()

    def track(self, loop: asyncio.AbstractEventLoop) -> None:
        """Keep account of every task loop makes from now on."""
        self.live |= asyncio.all_tasks(loop)

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            task = asyncio.Task(coro, loop=loop, **kwargs)
            self.live.add(task)
            task.add_done_callback(self.live.discard)
            return task

        loop.set_task_factory(factory)

    def clock(self) -> FakeClock:
        return FakeClock(self)

    def wall_s(self) -> float:
        """The true time of this world, as its targets' Date headers tell it."""
        return self.wall0 + self.mono

    async def sleep_until(self, due: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (due, next(self._seq), future))
        task = asyncio.current_task()
        assert task is not None
        self.parked.add(task)
        try:
            await future
        finally:
            self.parked.discard(task)

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each sleeper at its due time in turn."""
        end = self.mono + seconds
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= end:
            due, _, future = heapq.heappop(self._sleepers)
            self.mono = max(self.mono, due)
            if not future.done():
                future.set_result(None)
                await self.settle()
        self.mono = end
        await self.settle()

    async def settle(self) -> None:
        """Wait (in real time, bounded) until every other task is parked on
        this clock or done: what the nodes do at this moment is done."""
        me = asyncio.current_task()
        deadline = time.monotonic() + SETTLE_LIMIT_S
        while True:
            await asyncio.sleep(0)
            busy = [t for t in self.live if not (t is me or t in self.parked or t.done())]
            if not busy:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the nodes did not settle: {busy[:3]}")
            await asyncio.sleep(0.001)


class FakeClock:
    """One node's clock on the shared timeline: its wall time may be off
    (skew) and may jump (a step), as a real one's."""

    def __init__(self, timeline: FakeTime) -> None:
        self.timeline = timeline
        self.offset_s = 0.0
        self._unseen_step_s = 0.0

    def now_ms(self) -> int:
        return int((self.timeline.wall0 + self.timeline.mono + self.offset_s) * 1000)

    def monotonic(self) -> float:
        return self.timeline.mono

    def step_s(self) -> float:
        step, self._unseen_step_s = self._unseen_step_s, 0.0
        return step

    def jump(self, seconds: float) -> None:
        """The wall clock steps (an operator, NTP after an outage)."""
        self.offset_s += seconds
        self._unseen_step_s += seconds

    async def sleep(self, seconds: float) -> None:
        await self.timeline.sleep_until(self.timeline.mono + max(0.0, seconds))

    async def wait(self, event: asyncio.Event, timeout_s: float) -> bool:
        if event.is_set():
            return True
        waiter = asyncio.ensure_future(event.wait())
        timer = asyncio.ensure_future(self.sleep(timeout_s))
        me = asyncio.current_task()
        assert me is not None
        self.timeline.parked |= {waiter, me}
        try:
            await asyncio.wait({waiter, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.timeline.parked -= {waiter, me}
            for helper in (waiter, timer):
                helper.cancel()
            await asyncio.gather(waiter, timer, return_exceptions=True)
        return event.is_set()


class Link(httpx.AsyncBaseTransport):
    """The wire to one peer or to ntfy: an ASGI app in this process, or
    nothing at all while cut."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.cut = False
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.cut:
            raise httpx.ConnectError("link cut by the test", request=request)
        return await self.inner.handle_async_request(request)


class Canary:
    """A loopback port that accepts (and closes) connections while up: a
    node whose canaries all fail knows its own network is down."""

    def __init__(self, server: asyncio.Server) -> None:
        self.server = server
        self.port = int(server.sockets[0].getsockname()[1])

    @classmethod
    async def open(cls) -> Canary:
        async def answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        return cls(await asyncio.start_server(answer, "127.0.0.1", 0))

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


DEFAULTS = """
interval_s = 5
retry_interval_s = 2
timeout_s = 2
"""


def config_toml(name: str, root: Path, canary_port: int, world: World) -> str:
    peer = next(n for n in NAMES if n != name)
    return f"""
[node]
name = "{name}"
listen = "127.0.0.1:1"
data_dir = "{root / name}"
{f'public_url = "http://{name}.test"' if world.public_urls else ""}

[[peers]]
name = "{peer}"
url = "http://{peer}.test"

[sync]
secret_file = "unused"
# Fake time is free, but each pull is real work (a request through the
# peer's app, a step): pulling every second doubled these tests' CPU.
interval_s = 5

[defaults]
{world.defaults_toml}
[[canaries]]
host = "127.0.0.1"
port = {canary_port}

[ntfy]
url = "http://ntfy.test"
topic = "biphrost-status"
{world.ntfy_toml}
{world.targets_toml}
{world.extra_toml}
"""


@dataclass
class World:
    """What the test chose for the pair: targets and config additions."""

    targets_toml: str
    ntfy_toml: str = ""
    defaults_toml: str = DEFAULTS
    secrets: dict[str, str] = field(default_factory=dict)
    # Whole sections after the targets: [api], [admin], [[maintenance]]...
    extra_toml: str = ""
    # Each node says where it is reached (http://<name>.test): pages carry buttons.
    public_urls: bool = False
    # Where each node's webhook deliveries go (an ASGI app; None: nowhere).
    hook_app: Any = None


@dataclass
class Pair:
    time: FakeTime
    root: Path
    inbox: Inbox
    world: World
    canary: Canary
    nodes: dict[str, Node] = field(default_factory=dict)
    clocks: dict[str, FakeClock] = field(default_factory=dict)
    # The wire from each node to its peer, and to ntfy.
    sync_links: dict[str, Link] = field(default_factory=dict)
    ntfy_links: dict[str, Link] = field(default_factory=dict)
    hook_links: dict[str, Link] = field(default_factory=dict)
    apps: dict[str, Any] = field(default_factory=dict)

    async def advance(self, seconds: float) -> None:
        await self.time.advance(seconds)

    async def open(self, name: str) -> Node:
        """Open name's node on its data directory (again, after a stop) and
        wire it to its peer and ntfy; not started."""
        text = config_toml(name, self.root, self.canary.port, self.world)
        config = with_secrets(parse_config(tomllib.loads(text)))
        clock = self.clocks.setdefault(name, self.time.clock())
        self.sync_links.setdefault(name, Link(None))
        self.ntfy_links.setdefault(name, Link(inbox_app(self.inbox)))
        self.hook_links.setdefault(name, Link(self.world.hook_app))
        agent = {"User-Agent": f"ravens/{name}"}
        seams = Seams(
            clock=clock,
            schedule=ClockSchedule(clock),
            sync_client=httpx.AsyncClient(transport=self.sync_links[name]),
            ntfy_client=httpx.AsyncClient(transport=self.ntfy_links[name]),
            hook_client=httpx.AsyncClient(transport=self.hook_links[name], headers=agent),
            http=HttpClients(trust=trust_store(), node=name),
        )
        secret = self.world.secrets.get(name, SECRET)
        api = api_tokens(config)
        node = await Node.open(config, secret, {}, (NTFY_TOKEN, None), api, seams)
        self.nodes[name] = node
        self.apps[name] = app_for(node)
        peer = next(n for n in NAMES if n != name)
        if peer in self.sync_links:
            self.sync_links[peer].inner = httpx.ASGITransport(app=self.apps[name])
        if peer in self.apps:
            self.sync_links[name].inner = httpx.ASGITransport(app=self.apps[peer])
        return node

    async def start(self, name: str) -> None:
        node = await self.open(name)
        await node.start()
        await self.time.settle()

    async def stop(self, name: str) -> None:
        """Stop name's node; its peer's requests to it fail as to a dead host."""
        node = self.nodes.pop(name)
        peer = next(n for n in NAMES if n != name)
        self.sync_links[peer].inner = _Dead()
        await node.close()

    async def run_until(self, condition: Callable[[], bool | Awaitable[bool]], what: str,
                        limit_s: float, step_s: float = 1.0) -> float:  # fmt: skip
        """Advance in steps until condition holds; how long that took (fake s).
        The condition may be a coroutine function (one that asks the API)."""
        began = self.time.mono

        async def holds() -> bool:
            found = condition()
            return await found if inspect.isawaitable(found) else found

        while not await holds():
            if self.time.mono - began > limit_s:
                raise AssertionError(f"not within {limit_s:g} s of fake time: {what}")
            await self.advance(step_s)
        return self.time.mono - began

    def state(self, name: str, target: str) -> str:
        return self.nodes[name].core.record(target).state.value

    def both(self, target: str, state: str) -> Callable[[], bool]:
        return lambda: all(self.state(n, target) == state for n in self.nodes)

    def checked_at(self, name: str, target: str) -> int:
        """When name last checked target itself (epoch ms of its clock; 0: never)."""
        latest = self.nodes[name].live.latest(name, target)
        return 0 if latest is None else latest.at_ms

    def titles(self) -> list[str]:
        return [str(m.get("title", "")) for m in self.inbox.all()]

    def partition(self, cut: bool) -> None:
        for link in self.sync_links.values():
            link.cut = cut

    async def get(self, name: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request(name, "GET", path, **kwargs)

    async def targets(self, name: str) -> list[dict[str, Any]]:
        """What name's /api/v1/targets lists."""
        found: list[dict[str, Any]] = (await self.get(name, "/api/v1/targets")).json()["targets"]
        return found

    async def request(self, name: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.apps[name])
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{name}.test") as c:
            return await c.request(method, path, **kwargs)


@functools.cache
def trust_store() -> ssl.SSLContext:
    """The checks' trust store, loaded once for every node of the run (15 ms
    each time), as a node loads it once for all its clients."""
    return HttpClients().verifying


class _Dead(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("the peer is stopped", request=request)


@asynccontextmanager
async def pair_in_process(root: Path, world: World) -> AsyncIterator[Pair]:
    """Both nodes opened on one fake timeline and started; closed after."""
    canary = await Canary.open()
    pair = Pair(FakeTime(), root, Inbox(token=NTFY_TOKEN), world, canary)
    pair.time.track(asyncio.get_running_loop())
    # The test's target servers tell this world's time in their Date
    # headers, as real ones tell the real time: else the nodes would
    # correct their clocks years back, to the machine's.
    WORLD_WALL.append(pair.time.wall_s)
    try:
        for name in NAMES:
            await pair.open(name)
        for node in pair.nodes.values():
            await node.start()
        await pair.time.settle()
        yield pair
    finally:
        for link in pair.sync_links.values():
            link.cut = True  # neither hears from the other while they close
        for node in pair.nodes.values():
            await node.close()
        await canary.close()
        WORLD_WALL.remove(pair.time.wall_s)


def run_pair(root: Path, world: World, work: Callable[[Pair], Awaitable[None]],
             up: tuple[str, ...] = ("blog",)) -> None:  # fmt: skip
    """Open the pair, wait until both see each of up UP, run work, close."""

    async def go() -> None:
        async with pair_in_process(root, world) as pair:
            for target in up:
                await pair.run_until(pair.both(target, "UP"), f"both see {target} up", 60)
            await work(pair)

    asyncio.run(go())
