"""The courier: delivers the outbox's queued events to ntfy, in order, and
never loses one. (Not to be confused with the designated sender of an
event: the courier of whichever node is sender, or took over, posts it.)

Rows are written by the node in the same transaction as the move that caused
them; this loop only reads and marks them. Before each attempt it asks the
core whether the event is still ours to post (the designated sender, or a
standby that took over). Network errors and 5xx are retried with exponential
backoff and jitter; a 429 pauses the whole server for its Retry-After and
spaces the posts after it; any other 4xx is a configuration error, logged
once with ntfy's words and kept until the configuration changes.

A post whose answer was lost (a crash, a read timeout) and a post a standby
takes over are first looked up on ntfy by sequence id, so the copy is not
sent at all when the first one arrived. Whether ntfy answers is told to the
node after every attempt (a 429 aside): a node that cannot deliver loses its
claims to the standby, and while it cannot, a cheap poll every few seconds
tells it when ntfy is back. Events older than the summary age
go out as one summary per topic instead of a burst of stale alarms.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from consensus.events import Event
from notify.messages import Style, Subject, build, build_summary
from notify.publisher import Delivered, Refused, RetryLater, Server, answers, poll, publish

log = logging.getLogger("ravens")

MAX_BACKOFF_S = 300.0
IDLE_WAIT_S = 5.0
# After a 429, posts are spaced this far apart until a pass goes through.
RATE_LIMITED_GAP_S = 1.0
# A lookup reads the topic's cache from a little before the event.
LOOKUP_MARGIN_S = 120
# While ntfy does not answer and nothing of ours is due, ask this often
# whether it is back.
PROBE_EVERY_S = 10.0


class Timer(Protocol):
    """The node's clock, as far as the courier waits on it."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    async def wait(self, event: asyncio.Event, timeout_s: float) -> bool: ...


class AsyncioTimer:
    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, event: asyncio.Event, timeout_s: float) -> bool:
        # asyncio.timeout, not wait_for: Python 3.11's wait_for loses a cancel
        # that comes as the event is set, and the task waiting never stops.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await event.wait()
        return event.is_set()


class QueuedRow(Protocol):
    """An outbox row as any courier reads it: ntfy's, or a webhook's."""

    @property
    def event_id(self) -> str: ...
    @property
    def event(self) -> str: ...
    @property
    def attempts(self) -> int: ...


class Row(QueuedRow, Protocol):
    @property
    def status(self) -> str: ...
    @property
    def sequence_id(self) -> str | None: ...


class Host(Protocol):
    """What the courier needs from its node."""

    async def outbox_rows(self, statuses: tuple[str, ...]) -> Sequence[Row]: ...

    async def mark(
        self,
        event_id: str,
        status: str,
        error: str | None = None,
        message_id: str | None = None,
        attempt: bool = False,
        sequence_id: str | None = None,
    ) -> None: ...

    def should_post(self, event_id: str) -> bool: ...

    def sent_elsewhere(self, event_id: str) -> bool: ...

    def superseded(self, event_id: str) -> bool: ...

    def took_over(self, event_id: str) -> bool: ...

    async def delivered(self, event_id: str) -> None: ...

    async def reachable(self, ok: bool) -> None:
        """Whether ntfy answered the last attempt (posts, probes)."""


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Routing:
    server: Server
    style: Style
    subject_for: Callable[[Event], Subject]
    # Events older than this when their turn comes go out as one summary per
    # topic (two or more of them); None: always one by one.
    summarize_after_ms: int | None = 3_600_000
    now_ms: Callable[[], int] = wall_ms
    # The buttons a page carries (Acknowledge, Silence 1 h); none without.
    buttons: Callable[[Event], list[dict[str, object]]] | None = None


@dataclass
class Post:
    """One request to ntfy: one event, or the summary of several stale ones."""

    rows: list[Row]
    events: list[Event]
    message: dict[str, object]
    summary: bool = False

    @property
    def sequence_id(self) -> str:
        return str(self.message["sequence_id"])

    @property
    def topic(self) -> str:
        return str(self.message["topic"])


class Passes(abc.ABC):
    """The loop of a courier: a pass over its outbox, then a wait until it
    is kicked or the pass's wait is over. While its server does not answer
    and the pass tried nothing, a cheap probe asks whether it is back. Each
    courier says what its pass and its probe are."""

    kick: asyncio.Event
    clock: Timer
    answering: bool | None
    attempted: bool
    # In the log line of a failed pass.
    what = "outbox"

    async def run(self) -> None:
        while True:
            # Cleared before the pass, not after: a kick that comes while the
            # pass awaits its server or the disk is kept for the next one.
            self.kick.clear()
            try:
                waited = await self.send_due()
            except Exception:
                # The outbox could not be read or marked (a full disk): the
                # rows stay as they were; a post in doubt is looked up later.
                log.exception("%s: a pass failed; trying again in %g s", self.what, IDLE_WAIT_S)
                waited = IDLE_WAIT_S
            await self.clock.wait(self.kick, waited or IDLE_WAIT_S)

    async def send_due(self) -> float | None:
        """One pass over the outbox, oldest first. Returns the wait before the
        next when the server asked for one (nothing later may go first), else None."""
        self.attempted = False
        try:
            return await self._pass()
        finally:
            if self.answering is False and not self.attempted:
                await self._probe()

    @abc.abstractmethod
    async def _pass(self) -> float | None:
        """Post what is due; the wait before the next pass, if one is asked."""

    @abc.abstractmethod
    async def _probe(self) -> None:
        """Ask the server whether it answers, and tell the node."""


@dataclass
class Courier(Passes):
    host: Host
    routing: Routing
    client: httpx.AsyncClient
    clock: Timer = field(default_factory=AsyncioTimer)
    kick: asyncio.Event = field(default_factory=asyncio.Event)
    # Events a standby already looked up on ntfy before taking over.
    looked_up: set[str] = field(default_factory=set)
    rate_limited: bool = False
    # What the last attempt to reach ntfy said; None before the first.
    answering: bool | None = None
    attempted: bool = False
    next_probe_s: float = 0.0

    async def _probe(self) -> None:
        now = self.clock.monotonic()
        if now < self.next_probe_s:
            return
        self.next_probe_s = now + PROBE_EVERY_S
        topic = self.routing.style.topic
        await self._answered(await answers(self.client, self.routing.server, topic))

    async def _answered(self, ok: bool) -> None:
        self.attempted = True
        if ok != self.answering:
            self.answering = ok
            if ok:
                log.info("ntfy answers again")
        await self.host.reachable(ok)

    async def _pass(self) -> float | None:
        ready: list[tuple[Row, Event]] = []
        for row in await self.host.outbox_rows(("posting", "queued")):
            if self.host.sent_elsewhere(row.event_id):
                await self.host.mark(row.event_id, "yielded")
                continue
            if self.host.superseded(row.event_id):
                # A note about a state the target has left: posting it now
                # would tell users something no longer true, out of order.
                await self.host.mark(row.event_id, "stale")
                log.info(
                    "outbox event=%s superseded by a later event of its target: not posted",
                    row.event_id,
                )
                continue
            if not self.host.should_post(row.event_id):
                continue  # not ours (yet): the core says when
            ready.append((row, Event.from_value(row.event_id, json.loads(row.event))))
        ready = await self._already_there(ready)
        for number, post in enumerate(self._posts(ready)):
            if number and self.rate_limited:
                await self.clock.sleep(RATE_LIMITED_GAP_S)
            wait = await self._deliver(post)
            if wait is not None:
                return wait
        self.rate_limited = False
        return None

    async def _already_there(self, ready: list[tuple[Row, Event]]) -> list[tuple[Row, Event]]:
        """Look up on ntfy what may have arrived already: posts whose answer
        was lost, and events a standby takes over. Returns what is left to post."""
        found_ids: dict[str, str | None] = {}
        left = []
        for row, event in ready:
            taking_over = self.host.took_over(event.id) and event.id not in self.looked_up
            if row.status != "posting" and not taking_over:
                left.append((row, event))
                continue
            self.looked_up.add(event.id)
            sequence = row.sequence_id or event.id
            if sequence not in found_ids:
                topic = self._message(event)["topic"]
                since_s = max(0, (event.at_ms or 0) // 1000 - LOOKUP_MARGIN_S)
                found_ids[sequence] = await find_sequence(
                    self.client, self.routing.server, str(topic), sequence, since_s
                )
            message_id = found_ids[sequence]
            if message_id is None:
                left.append((row, event))
                continue
            await self.host.mark(event.id, "sent", message_id=message_id)
            await self.host.delivered(event.id)
            log.info(
                "notified event=%s already on ntfy as %s: not posted again", event.id, message_id
            )
        return left

    def _message(self, event: Event) -> dict[str, object]:
        buttons = self.routing.buttons(event) if self.routing.buttons else []
        return build(event, self.routing.subject_for(event), self.routing.style, buttons)

    def _posts(self, ready: list[tuple[Row, Event]]) -> list[Post]:
        """Stale events as one summary per topic, then the rest one by one."""
        limit = self.routing.summarize_after_ms
        now = self.routing.now_ms()
        stale = [
            (row, event)
            for row, event in ready
            if limit is not None and event.at_ms is not None and now - event.at_ms > limit
        ]
        if len(stale) < 2:
            stale = []
        posts: list[Post] = []
        by_topic: dict[str, list[tuple[Row, Event, Subject]]] = {}
        for row, event in stale:
            subject = self.routing.subject_for(event)
            topic = subject.topic or self.routing.style.topic
            by_topic.setdefault(topic, []).append((row, event, subject))
        for topic, group in by_topic.items():
            if len(group) == 1:
                continue  # alone in its topic: sent as itself below
            message = build_summary([(e, s) for _, e, s in group], topic)
            posts.append(Post([r for r, _, _ in group], [e for _, e, _ in group], message, True))
        summarized = {e.id for post in posts for e in post.events}
        posts += [
            Post([row], [event], self._message(event))
            for row, event in ready
            if event.id not in summarized
        ]
        return posts

    async def _deliver(self, post: Post) -> float | None:
        sequence = post.sequence_id if post.summary else None
        for row in post.rows:
            await self.host.mark(row.event_id, "posting", attempt=True, sequence_id=sequence)
        outcome = await publish(self.client, self.routing.server, post.message)
        if not (isinstance(outcome, RetryLater) and outcome.paced):
            await self._answered(not isinstance(outcome, RetryLater))
        if isinstance(outcome, Delivered):
            for event in post.events:
                await self.host.mark(event.id, "sent", message_id=outcome.message_id)
                await self.host.delivered(event.id)
            log.info(
                "notified events=%s topic=%s ntfy_id=%s%s",
                ",".join(e.id for e in post.events),
                post.topic,
                outcome.message_id,
                " (one summary)" if post.summary else "",
            )
            return None
        if isinstance(outcome, Refused):
            for event in post.events:
                await self.host.mark(event.id, "refused", error=outcome.error)
            log.error(
                "ntfy refused events=%s status=%d: %s (kept; fix [ntfy] and reload)",
                ",".join(e.id for e in post.events),
                outcome.status,
                outcome.error,
            )
            return None
        return await self._later(post, outcome)

    async def _later(self, post: Post, outcome: RetryLater) -> float:
        # In doubt, the rows stay 'posting' so the next pass looks them up first.
        status = "posting" if outcome.in_doubt else "queued"
        sequence = post.sequence_id if post.summary and outcome.in_doubt else None
        for event in post.events:
            await self.host.mark(event.id, status, error=outcome.reason, sequence_id=sequence)
        attempts = max(row.attempts for row in post.rows)
        wait = outcome.after_s
        if wait is not None:
            self.rate_limited = True
        else:
            wait = min(MAX_BACKOFF_S, 2.0 ** min(attempts + 1, 9)) * random.uniform(0.8, 1.2)
        if attempts == 0:
            log.warning(
                "ntfy not delivering events=%s: %s; retrying in %.0f s",
                ",".join(e.id for e in post.events),
                outcome.reason,
                wait,
            )
        return wait


async def find_sequence(
    client: httpx.AsyncClient, server: Server, topic: str, sequence_id: str, since_s: int = 0
) -> str | None:
    """ntfy's id of a cached message with this sequence id, if any."""
    try:
        response = await poll(client, server, topic, str(since_s) if since_s else "all")
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
