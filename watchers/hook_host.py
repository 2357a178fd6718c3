"""A node's webhooks: one courier each, the rows and marks of their outbox,
who delivers what from the core, and the body each delivery carries.

The body is the stream's item for the event (stream.py), wrapped as the
Standard Webhooks convention suggests: ``{"type", "timestamp", "data"}``.
It is made from the event alone, so every attempt, from either node,
posts the same bytes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from consensus.commands import Step
from consensus.events import Event
from notify.hook_courier import HookCourier, Webhook
from watchers.rows import HookRow
from watchers.stream import event_item
from watchers.webhooks import WebhookSection

if TYPE_CHECKING:
    from watchers.runtime import Node

log = logging.getLogger("ravens")


def hook_body(event_id: str, event_json: str) -> bytes:
    event = Event.from_value(event_id, json.loads(event_json))
    at_ms = event.at_ms or 0
    item = event_item(event, at_ms)
    data: dict[str, Any] = {**item.data, "detail": dict(event.detail)}
    stamp = datetime.fromtimestamp(at_ms / 1000, UTC).isoformat(timespec="milliseconds")
    body = {
        "type": f"{item.kind}.{event.notice.value.lower()}",
        "timestamp": stamp.replace("+00:00", "Z"),
        "data": data,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


class Webhooks:
    def __init__(self, node: Node, client: httpx.AsyncClient) -> None:
        self.node = node
        self.client = client
        self.couriers: dict[str, HookCourier] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running = False

    def configure(self, hooks: Sequence[WebhookSection]) -> Step:
        """Take the config's webhooks: the core learns which exist and what
        each wants; a changed one gets a new courier, a removed one none."""
        node = self.node
        wanted = {hook.name: hook for hook in hooks}
        for name in list(self.couriers):
            hook = wanted.get(name)
            if hook is None or _webhook(hook) != self.couriers[name].hook:
                self._stop(name)
        for name, hook in wanted.items():
            if name not in self.couriers:
                self.couriers[name] = HookCourier(
                    _webhook(hook), self, self.client, self._now_s, clock=node.clock
                )
                if self._running:
                    self._start(name)
        specs = {name: hook.wants() for name, hook in wanted.items()}
        return node.core.set_hooks(specs, node.clock.now_ms())

    def start(self) -> None:
        self._running = True
        for name in self.couriers:
            self._start(name)

    def _start(self, name: str) -> None:
        self._tasks[name] = asyncio.ensure_future(self.couriers[name].run())

    def _stop(self, name: str) -> None:
        self.couriers.pop(name)
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.client.aclose()

    async def outbox(self) -> dict[str, Any]:
        """Each configured webhook's deliveries waiting, and what was refused
        (rows of a webhook taken out of the config wait for its return)."""
        names = self.couriers.keys()
        waiting = await self.node.store.hook_waiting()
        refused = await self.node.store.hook_refused()
        return {
            "waiting": {hook: n for hook, n in waiting.items() if hook in names},
            "refused": [
                {"hook": hook, "event": event_id, "error": error}
                for hook, event_id, error in refused
                if hook in names
            ],
        }

    def kick(self, hook: str) -> None:
        courier = self.couriers.get(hook)
        if courier is not None:
            courier.kick.set()

    def _now_s(self) -> float:
        return self.node.clock.now_ms() / 1000

    # -- what a courier asks (notify.hook_courier.HookHost) --------------------

    async def hook_rows(self, hook: str) -> Sequence[HookRow]:
        return await self.node.store.hook_rows(hook, ("posting", "queued"))

    async def hook_mark(
        self, hook: str, event_id: str, status: str, error: str | None = None, attempt: bool = False
    ) -> None:
        now = self.node.clock.now_ms()
        await self.node.store.hook_mark(hook, event_id, status, now, error, attempt)

    def should_deliver(self, hook: str, event_id: str) -> bool:
        return self.node.core.should_deliver(hook, event_id)

    def hook_sent_elsewhere(self, hook: str, event_id: str) -> bool:
        return self.node.core.hook_sent_elsewhere(hook, event_id)

    def hook_superseded(self, hook: str, event_id: str) -> bool:
        return self.node.core.hook_superseded(hook, event_id)

    async def hook_delivered(self, hook: str, event_id: str) -> None:
        node = self.node
        await node.apply(node.core.hook_delivered(hook, event_id, node.clock.now_ms()))

    async def hook_reachable(self, hook: str, ok: bool) -> None:
        node = self.node
        await node.apply(node.core.hook_observed(hook, ok, node.clock.now_ms()))

    def hook_body(self, event_id: str, event_json: str) -> bytes:
        return hook_body(event_id, event_json)


def _webhook(hook: WebhookSection) -> Webhook:
    if not hook.key:
        # A config that did not go through secrets.with_secrets: a bug.
        raise ValueError(f"webhook {hook.name}: its secret was not read")
    return Webhook(hook.name, str(hook.url), hook.key, hook.timeout_s)
