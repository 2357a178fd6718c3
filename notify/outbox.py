"""The outbox sender: delivers queued events to ntfy, in order, and never loses one.

Rows are written by the node in the same transaction as the move that caused
them; this loop only reads and marks them. Before each attempt it asks the
core whether the event is still ours to post (the designated sender, or a
standby that took over). Network errors and 5xx are retried with exponential
backoff and jitter; a 429 pauses the whole server for its Retry-After; any
other 4xx is a configuration error, logged once with ntfy's words and kept
until the configuration changes. A row in flight when the node died is
looked up on ntfy by its sequence id before it is posted again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx

from consensus.events import Event
from notify.messages import Style, Subject, build
from notify.publisher import Delivered, Refused, RetryLater, Server, publish

log = logging.getLogger("ravens")

MAX_BACKOFF_S = 300.0
IDLE_WAIT_S = 5.0


class Row(Protocol):
    @property
    def event_id(self) -> str: ...
    @property
    def event(self) -> str: ...
    @property
    def attempts(self) -> int: ...


class Host(Protocol):
    """What the sender needs from its node."""

    async def outbox_rows(self, statuses: tuple[str, ...]) -> Sequence[Row]: ...

    async def mark(self, event_id: str, status: str, error: str | None = None,
                   message_id: str | None = None, attempt: bool = False) -> None: ...  # fmt: skip

    def should_post(self, event_id: str) -> bool: ...

    def sent_elsewhere(self, event_id: str) -> bool: ...

    async def delivered(self, event_id: str) -> None: ...


@dataclass
class Routing:
    server: Server
    style: Style
    subject_for: Callable[[Event], Subject]


class Sender:
    def __init__(self, host: Host, routing: Routing, client: httpx.AsyncClient,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:  # fmt: skip
        self.host = host
        self.routing = routing
        self.client = client
        self.kick = asyncio.Event()
        self.sleep = sleep
        self.pause_s = 0.0

    async def run(self) -> None:
        await self._verify_in_flight()
        while True:
            waited = await self._pass()
            self.kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.kick.wait(), waited or IDLE_WAIT_S)

    async def _pass(self) -> float | None:
        """One pass over the queue, oldest first; the wait before the next
        when ntfy asked for one, else None."""
        for row in await self.host.outbox_rows(("queued",)):
            if self.host.sent_elsewhere(row.event_id):
                await self.host.mark(row.event_id, "yielded")
                continue
            if not self.host.should_post(row.event_id):
                continue  # not ours (yet): the core says when
            event = Event.from_value(row.event_id, json.loads(row.event))
            message = build(event, self.routing.subject_for(event), self.routing.style)
            await self.host.mark(row.event_id, "posting", attempt=True)
            outcome = await publish(self.client, self.routing.server, message)
            if isinstance(outcome, Delivered):
                await self.host.mark(row.event_id, "sent", message_id=outcome.message_id)
                await self.host.delivered(row.event_id)
                log.info("notified event=%s notice=%s topic=%s ntfy_id=%s", event.id,
                         event.notice.value, message["topic"], outcome.message_id)  # fmt: skip
            elif isinstance(outcome, Refused):
                await self.host.mark(row.event_id, "refused", error=outcome.error)
                log.error("ntfy refused event=%s status=%d: %s (kept; fix [ntfy] and reload)",
                          event.id, outcome.status, outcome.error)  # fmt: skip
            elif isinstance(outcome, RetryLater):
                await self.host.mark(row.event_id, "queued", error=outcome.reason)
                wait = outcome.after_s
                if wait is None:
                    wait = min(MAX_BACKOFF_S, 2.0 ** min(row.attempts + 1, 9))
                    wait *= random.uniform(0.8, 1.2)
                if row.attempts == 0:
                    log.warning("ntfy not delivering event=%s: %s; retrying in %.0f s",
                                event.id, outcome.reason, wait)  # fmt: skip
                return wait  # in order: nothing later goes first
        return None

    async def _verify_in_flight(self) -> None:
        """A row left 'posting' by a crash: ask ntfy whether it arrived."""
        for row in await self.host.outbox_rows(("posting",)):
            event = Event.from_value(row.event_id, json.loads(row.event))
            topic = build(event, self.routing.subject_for(event), self.routing.style)["topic"]
            found = await find_sequence(self.client, self.routing.server, str(topic), event.id)
            if found is not None:
                await self.host.mark(row.event_id, "sent", message_id=found)
                await self.host.delivered(row.event_id)
            else:
                await self.host.mark(row.event_id, "queued")


async def find_sequence(
    client: httpx.AsyncClient, server: Server, topic: str, sequence_id: str
) -> str | None:
    """ntfy's id of a cached message with this sequence id, if any."""
    url = f"{server.base_url.rstrip('/')}/{topic}/json"
    try:
        response = await client.get(url, params={"poll": "1", "since": "all"},
                                    headers=server.headers(), timeout=10)  # fmt: skip
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    for line in response.text.splitlines():
        with contextlib.suppress(ValueError):
            message = json.loads(line)
            if message.get("sequence_id") == sequence_id:
                return str(message.get("id"))
    return None
