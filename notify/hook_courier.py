"""The courier of one webhook: delivers its outbox rows, signed, in order,
and never loses one.

As ntfy's courier does (courier.py): rows are written by the node with the
step that made them; before each attempt the core says whether the
delivery is still ours (the designated sender, or a standby that took
over) and whether an earlier event of its target must go first. A 2xx is
delivered; no answer, a timeout, a 5xx or a 408 are retried with
exponential backoff and jitter, and a 429 waits for its Retry-After; any
other answer (a 4xx, a redirect) is a refusal, kept with the receiver's
words until the config changes. Whether the receiver answered is told to
the core after each attempt, so the standby takes over from a node that
cannot reach it; while it cannot, a HEAD request every few seconds tells
when it is back.

Each delivery carries the event id as ``webhook-id``, so a receiver drops
the rare second copy (the answer to the first was lost in a crash).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Protocol

import httpx

from notify.courier import (
    MAX_BACKOFF_S,
    PROBE_EVERY_S,
    AsyncioTimer,
    Passes,
    QueuedRow,
    Timer,
)
from notify.signing import signature

log = logging.getLogger("ravens")

# A Retry-After further off than this is taken as this.
MAX_RETRY_AFTER_S = 3600.0
# What a refusal keeps of the receiver's answer.
ANSWER_CHARS = 200


class HookHost(Protocol):
    """What a webhook's courier needs from its node."""

    async def hook_rows(self, hook: str) -> Sequence[QueuedRow]: ...

    async def hook_mark(
        self, hook: str, event_id: str, status: str, error: str | None = None, attempt: bool = False
    ) -> None: ...

    def should_deliver(self, hook: str, event_id: str) -> bool: ...

    def hook_sent_elsewhere(self, hook: str, event_id: str) -> bool: ...

    def hook_superseded(self, hook: str, event_id: str) -> bool: ...

    async def hook_delivered(self, hook: str, event_id: str) -> None: ...

    async def hook_reachable(self, hook: str, ok: bool) -> None: ...

    def hook_body(self, event_id: str, event_json: str) -> bytes:
        """What is posted for the event: the same bytes on every attempt."""


@dataclass(frozen=True, slots=True)
class Webhook:
    name: str
    url: str
    key: bytes = field(repr=False)
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class Answer:
    """What one attempt came to."""

    delivered: bool = False
    # Retry after this long (None: by backoff); a refusal is neither.
    retry: bool = False
    after_s: float | None = None
    # Whether the receiver answered at all (below 500): its reachability.
    answered: bool = True
    reason: str = ""


@dataclass
class HookCourier(Passes):
    hook: Webhook
    host: HookHost
    client: httpx.AsyncClient
    now_s: Callable[[], float]
    clock: Timer = field(default_factory=AsyncioTimer)
    kick: asyncio.Event = field(default_factory=asyncio.Event)
    answering: bool | None = None
    attempted: bool = False
    next_probe_s: float = 0.0

    def __post_init__(self) -> None:
        self.what = f"webhook {self.hook.name}"

    async def _pass(self) -> float | None:
        name, host = self.hook.name, self.host
        for row in await host.hook_rows(name):
            if host.hook_sent_elsewhere(name, row.event_id):
                await host.hook_mark(name, row.event_id, "yielded")
                continue
            if host.hook_superseded(name, row.event_id):
                await host.hook_mark(name, row.event_id, "stale")
                continue
            if not host.should_deliver(name, row.event_id):
                continue
            await host.hook_mark(name, row.event_id, "posting", attempt=True)
            answer = await self._post(row.event_id, host.hook_body(row.event_id, row.event))
            await self._answered(answer.answered)
            if answer.delivered:
                await host.hook_mark(name, row.event_id, "sent")
                await host.hook_delivered(name, row.event_id)
                log.info("webhook %s delivered event=%s", name, row.event_id)
                continue
            if not answer.retry:
                await host.hook_mark(name, row.event_id, "refused", error=answer.reason)
                log.error(
                    "webhook %s refused event=%s: %s (kept; fix [[webhooks]] or the "
                    "receiver, and reload)",
                    name,
                    row.event_id,
                    answer.reason,
                )
                continue
            await host.hook_mark(name, row.event_id, "queued", error=answer.reason)
            wait = answer.after_s
            if wait is None:
                wait = min(MAX_BACKOFF_S, 2.0 ** min(row.attempts + 1, 9)) * random.uniform(
                    0.8, 1.2
                )
            if row.attempts == 0:
                log.warning(
                    "webhook %s not delivering event=%s: %s; retrying in %.0f s",
                    name,
                    row.event_id,
                    answer.reason,
                    wait,
                )
            return wait
        return None

    async def _post(self, event_id: str, body: bytes) -> Answer:
        stamp = int(self.now_s())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": signature(self.hook.key, event_id, stamp, body),
        }
        try:
            response = await self.client.post(
                self.hook.url, content=body, headers=headers, timeout=self.hook.timeout_s
            )
        except httpx.TimeoutException:
            return Answer(
                retry=True, answered=False, reason=f"no answer after {self.hook.timeout_s:g} s"
            )
        except httpx.HTTPError as exc:
            reason = f"unreachable: {str(exc)[:160] or type(exc).__name__}"
            return Answer(retry=True, answered=False, reason=reason)
        return answer_of(response)

    async def _answered(self, ok: bool) -> None:
        self.attempted = True
        if ok != self.answering:
            self.answering = ok
            if ok:
                log.info("webhook %s answers again", self.hook.name)
        await self.host.hook_reachable(self.hook.name, ok)

    async def _probe(self) -> None:
        now = self.clock.monotonic()
        if now < self.next_probe_s:
            return
        self.next_probe_s = now + PROBE_EVERY_S
        try:
            response = await self.client.head(self.hook.url, timeout=self.hook.timeout_s)
            ok = response.status_code < 500
        except httpx.HTTPError:
            ok = False
        await self._answered(ok)


def backoff_s(attempts: int) -> float:
    """Exponential, with jitter so both nodes' retries do not march together."""
    return min(MAX_BACKOFF_S, 2.0 ** min(attempts + 1, 9)) * random.uniform(0.8, 1.2)


def answer_of(response: httpx.Response) -> Answer:
    status = response.status_code
    text = response.text.strip()[:ANSWER_CHARS] or response.reason_phrase
    if 200 <= status < 300:
        return Answer(delivered=True)
    if status == 429:
        return Answer(retry=True, after_s=_retry_after(response), reason=f"429: {text}")
    if status == 408:
        return Answer(retry=True, reason=f"408: {text}")
    if status >= 500:
        return Answer(retry=True, answered=False, reason=f"{status}: {text}")
    if 300 <= status < 400:
        where = response.headers.get("location", "")[:ANSWER_CHARS]
        return Answer(reason=f"{status}: redirects to {where!r}, which is not followed")
    return Answer(reason=f"{status}: {text}")


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds, or an HTTP date, as Retry-After may say."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(value)))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    date = response.headers.get("date")
    now = parsedate_to_datetime(date) if date else None
    if now is None:
        return None
    return min(MAX_RETRY_AFTER_S, max(0.0, (when - now).total_seconds()))
