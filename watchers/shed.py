"""Anonymous load cannot stall the node.

Checks, sync and notifications share one event loop with everything the
node serves. So what anyone may ask for is bounded: pages are rendered at
most once per few seconds whatever the number of visitors (one render
serves everyone who asked meanwhile), and at most a few open requests are
served at once, a bounded number wait, and the rest are turned away at once
with 503 and Retry-After. Peers, push heartbeats, health probes and admins
are never turned away here (each has its own bounds).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from starlette.types import ASGIApp, Receive, Scope, Send

from watchers.limits import send_error

# Paths never shed: the peer's sync, heartbeats, health, the admin API.
NEVER_SHED = ("/sync/", "/api/v1/push/", "/healthz", "/api/v1/readyz", "/api/v1/admin/")
# One core does the work: more requests at once only interleave their CPU
# and make each wait longer (and a probe of /healthz waits behind all of
# them). Two at once, a short queue, then 503.
MAX_ACTIVE = 2
MAX_WAITING = 32
RETRY_AFTER_S = 2
PAGE_TTL_S = 5.0
# The target list and the metrics cost tens of milliseconds each for a
# thousand targets: under a crowd they are made at most once a second,
# which a poller or a scraper never notices.
LIVE_TTL_S = 1.0

Made = TypeVar("Made")
log = logging.getLogger("ravens")


@dataclass
class RenderCache(Generic[Made]):
    """What a render made, kept ttl_s; concurrent askers share one render.

    An entry past ttl_s but within stale_s more is still served while one
    render makes its successor in the background: under steady traffic no
    asker waits for a render (a page is at most ttl_s + stale_s + one render
    old). An older entry is rendered again while the asker waits."""

    ttl_s: float = PAGE_TTL_S
    max_keys: int = 4096
    clock: Callable[[], float] = time.monotonic
    stale_s: float = 0.0
    # key -> (made at, generation, what)
    _made: OrderedDict[Hashable, tuple[float, int, Made]] = field(default_factory=OrderedDict)
    _making: dict[tuple[Hashable, int], asyncio.Future[Made]] = field(default_factory=dict)
    _refreshing: set[asyncio.Task[Made]] = field(default_factory=set)

    async def get(
        self, key: Hashable, make: Callable[[], Awaitable[Made]], generation: int = 0
    ) -> Made:
        """What make made for key. A render of an older generation (the
        caller's count of what changed, such as the agreed states) is never
        served: the asker waits for a render of this one."""
        kept = self._made.get(key)
        if kept is not None and kept[1] != generation:
            kept = None
        age = None if kept is None else self.clock() - kept[0]
        if kept is not None and age is not None and age < self.ttl_s:
            return kept[2]
        making = (key, generation)
        pending = self._making.get(making)
        if kept is not None and age is not None and age < self.ttl_s + self.stale_s:
            if pending is None:
                # Registered now, not when the task first runs: the askers
                # before that must see a render under way.
                work = self._render(making, make, self._begin(making))
                refresh = asyncio.ensure_future(work)
                self._refreshing.add(refresh)
                refresh.add_done_callback(self._refreshed)
            return kept[2]
        if pending is not None:
            return await asyncio.shield(pending)
        return await self._render(making, make, self._begin(making))

    def _begin(self, making: tuple[Hashable, int]) -> asyncio.Future[Made]:
        future: asyncio.Future[Made] = asyncio.get_running_loop().create_future()
        self._making[making] = future
        return future

    async def _render(
        self,
        making: tuple[Hashable, int],
        make: Callable[[], Awaitable[Made]],
        future: asyncio.Future[Made],
    ) -> Made:
        try:
            made = await make()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # read: a render nobody else awaited is not "never retrieved"
            raise
        finally:
            del self._making[making]
        future.set_result(made)
        key, generation = making
        kept = self._made.get(key)
        if kept is None or kept[1] <= generation:
            self._made[key] = (self.clock(), generation, made)
            self._made.move_to_end(key)
        while len(self._made) > self.max_keys:
            self._made.popitem(last=False)
        return made

    def _refreshed(self, task: asyncio.Task[Made]) -> None:
        self._refreshing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("render in the background failed: %s", task.exception())


@dataclass
class Shedding:
    """At most max_active open requests served at once, max_waiting more
    queued; the rest were shed (counted, for the metrics)."""

    max_active: int = MAX_ACTIVE
    max_waiting: int = MAX_WAITING
    waiting: int = 0
    shed: int = 0
    slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.max_active)


class Shed:
    """ASGI middleware applying a Shedding to every open path: a request
    past the bound is answered 503 with Retry-After at once."""

    def __init__(self, app: ASGIApp, state: Shedding) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(NEVER_SHED):
            await self.app(scope, receive, send)
            return
        state = self.state
        if state.slots.locked() and state.waiting >= state.max_waiting:
            state.shed += 1
            await _busy(send)
            return
        state.waiting += 1
        try:
            await state.slots.acquire()
        finally:
            state.waiting -= 1
        try:
            await self.app(scope, receive, send)
        finally:
            state.slots.release()


async def _busy(send: Send) -> None:
    busy = "busy: too many requests at once; retry shortly"
    await send_error(send, 503, busy, [(b"retry-after", str(RETRY_AFTER_S).encode())])
