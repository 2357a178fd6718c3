"""`GET /api/v1/stream`: what the pair agrees, as it agrees it, in
Server-Sent Events: transitions (with the incident they open or close),
acknowledgements, node health, and the other notices.

Every item comes from a replicated log entry, so either node serves the
same items once synced, in the same order: by when the pair decided (the
event's anchor, an acknowledgement's time), then by id. The SSE id is that
cursor, ``<ms>-<id>``: a client that reconnects, to this node or the
other, with ``Last-Event-ID`` is sent every item after it still within
REPLAY_MS, then the live ones; an older id gets a ``reload`` event (read
the state from the API, then follow). A comment every KEEPALIVE_S keeps
proxies from closing a quiet stream. Clients are bounded (MAX_CLIENTS), and
each has a bounded buffer: a client too slow to drain it is dropped, never
waited for.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query
from fastapi.responses import StreamingResponse

from consensus import keys
from consensus.agreement import Notice
from consensus.announced import Announced
from consensus.events import Event

if TYPE_CHECKING:
    from watchers.runtime import Node

KEEPALIVE_S = 15.0
MAX_CLIENTS = 100
BUFFER_ITEMS = 1000
REPLAY_MS = 7 * 86_400_000
MAX_REMEMBERED = 100_000
TRANSITIONS = {Notice.DOWN, Notice.UP, Notice.PARTIAL_LASTING, Notice.FLAPPING_STARTED,
               Notice.FLAPPING_SETTLED}  # fmt: skip
NODE_HEALTH = {Notice.NODE_ISOLATED, Notice.PEER_LOST, Notice.PEER_BACK, Notice.CLOCK_JUMPED}
Cursor = tuple[int, str]


@dataclass(frozen=True, slots=True)
class Item:
    cursor: Cursor
    kind: str
    data: dict[str, Any]

    def frame(self) -> str:
        text = json.dumps(self.data, separators=(",", ":"))
        return f"id: {self.cursor[0]}-{self.cursor[1]}\nevent: {self.kind}\ndata: {text}\n\n"


def item_of(told: Announced) -> Item:
    """The stream's item for an event or an acknowledgement the log holds."""
    if told.event is not None:
        return event_item(told.event, told.at_ms)
    acked = str(told.acknowledged)
    data = {
        "id": f"ack-{acked}",
        "kind": "acknowledgement",
        "event": acked,
        "by": told.by,
        "note": told.note,
        "at_ms": told.at_ms,
    }
    return Item((told.at_ms, f"ack-{acked}"), "acknowledgement", data)


def event_item(event: Event, at_ms: int) -> Item:
    if event.notice in TRANSITIONS:
        kind = "transition"
    elif event.notice in NODE_HEALTH:
        kind = "node"
    else:
        kind = "notice"
    incident = None
    if event.notice is Notice.DOWN:
        incident = "opened"
    elif event.notice is Notice.UP and event.previous in ("DOWN", "FLAPPING"):
        incident = "closed"
    node = keys.subject_node(event.subject)
    data: dict[str, Any] = {
        "id": event.id,
        "kind": kind,
        "notice": event.notice.value,
        "target": event.subject if node is None else None,
        "node": node,
        "state": event.state,
        "previous": event.previous,
        "at_ms": at_ms,
        "mode": event.mode.value,
        "incident": incident,
        "views": {name: dict(view) for name, view in event.views.items()},
    }
    return Item((at_ms, event.id), kind, data)


def parse_cursor(text: str | None) -> Cursor | None:
    """``<ms>-<id>`` as sent in an SSE id; None when absent or not one."""
    if not text or len(text) > 100:
        return None
    at, _, rest = text.strip().partition("-")
    if not at.isascii() or not at.isdigit() or len(at) > 16 or not rest:
        return None
    return int(at), rest


class Hub:
    """The live items, fanned out to each client's bounded buffer."""

    def __init__(self, max_clients: int = MAX_CLIENTS, buffer: int = BUFFER_ITEMS) -> None:
        self.max_clients = max_clients
        self.buffer = buffer
        self.clients: set[asyncio.Queue[Item | None]] = set()
        self.dropped = 0
        # Items published since start: what a cached page compares with.
        self.told = 0

    def join(self) -> asyncio.Queue[Item | None]:
        if len(self.clients) >= self.max_clients:
            raise HTTPException(503, f"the stream serves at most {self.max_clients} clients")
        queue: asyncio.Queue[Item | None] = asyncio.Queue(self.buffer)
        self.clients.add(queue)
        return queue

    def leave(self, queue: asyncio.Queue[Item | None]) -> None:
        self.clients.discard(queue)

    def publish(self, told: Iterable[Announced]) -> None:
        items = [item_of(t) for t in told]
        self.told += len(items)
        if not items or not self.clients:
            return
        for queue in list(self.clients):
            for item in items:
                if queue.full():
                    # Too slow: dropped (its end is marked), never waited for.
                    self.clients.discard(queue)
                    self.dropped += 1
                    queue.get_nowait()
                    queue.put_nowait(None)
                    break
                queue.put_nowait(item)


def replay(told: Iterable[Announced], after: Cursor, now_ms: int) -> tuple[list[Item], bool]:
    """Items after the cursor, in order; and whether the cursor is too old
    to replay from (the client should reload)."""
    if after[0] < now_ms - REPLAY_MS:
        return [], True
    found = [i for i in (item_of(t) for t in told) if i.cursor > after]
    return sorted(found, key=lambda i: i.cursor), False


def stream_router(node: Node) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["stream"])

    @api.get(
        "/stream", summary="Agreed transitions, incidents, acknowledgements, node health (SSE)"
    )
    async def stream(
        last_event_id: Annotated[str | None, Header()] = None,
        from_id: Annotated[
            str | None, Query(max_length=100, description="as Last-Event-ID")
        ] = None,
        follow: Annotated[bool, Query(description="false: replay, then close")] = True,
    ) -> StreamingResponse:
        given = last_event_id or from_id
        after = parse_cursor(given)
        if given and after is None:
            raise HTTPException(400, "Last-Event-ID: expected <ms>-<id> as this stream sent it")
        queue = node.stream.join() if follow else None
        items: Sequence[Item] = []
        stale = False
        if after is not None:
            items, stale = replay(node.core.announced(), after, node.clock.now_ms())
        return StreamingResponse(
            _frames(node, queue, items, stale),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return api


async def _frames(
    node: Node, queue: asyncio.Queue[Item | None] | None, items: Sequence[Item], stale: bool
) -> AsyncIterator[str]:
    # What this client was sent: an entry written again (the other node's
    # copy of the same event winning) is not sent twice.
    sent: set[Cursor] = set()
    try:
        yield f"retry: 3000\n: ravens stream from {node.name}\n\n"
        if stale:
            why = {
                "reason": "the id is older than the stream replays; read the state from "
                "/api/v1/targets and /api/v1/incidents, then follow"
            }
            yield f"event: reload\ndata: {json.dumps(why)}\n\n"
        for item in items:
            sent.add(item.cursor)
            yield item.frame()
        if queue is None:
            return
        while True:
            try:
                async with asyncio.timeout(KEEPALIVE_S):
                    live = await queue.get()
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if live is None:
                yield ": dropped: this client read too slowly\n\n"
                return
            if live.cursor in sent:
                continue
            if len(sent) < MAX_REMEMBERED:
                sent.add(live.cursor)
            yield live.frame()
    finally:
        if queue is not None:
            node.stream.leave(queue)
