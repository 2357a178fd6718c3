"""The outbox sender against a real SQLite outbox and the ntfy-compatible
inbox on loopback: nothing lost, nothing doubled, in order, under faults."""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from consensus.agreement import Mode, Notice
from consensus.events import Event, event_id
from consensus.hlc import ZERO, Hlc
from notify.courier import AsyncioTimer, Courier, Routing
from notify.inbox import Inbox, serving
from notify.messages import Style, Subject
from notify.publisher import Server
from watchers import wire
from watchers.storage import OutboxRow, Store

TOKEN = "tk_" + "z" * 29
START_MS = 1_795_000_000_000
TIMEOUT_S = 0.05
# Posts the sender's client sent, counted as they leave.
SENT_POSTS = [0]
# ntfy answers (or stores) this late: after the sender gave up.
LATE_S = 0.1


class NoWait(AsyncioTimer):
    """The courier's pauses (after a 429) take no time here."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


class StoreHost:
    """The sender's view of a node: a real outbox, and a core that says yes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.delivered_ids: list[str] = []
        self.takeovers: set[str] = set()
        self.moot: set[str] = set()
        # What the sender told the node about ntfy, in order.
        self.answers: list[bool] = []
        # Events the core would say are not ours to post (yet).
        self.held: set[str] = set()

    async def outbox_rows(self, statuses: tuple[str, ...]) -> list[OutboxRow]:
        return await self.store.outbox_rows(statuses)

    async def mark(self, event_id: str, status: str, error: str | None = None,
                   message_id: str | None = None, attempt: bool = False,
                   sequence_id: str | None = None) -> None:  # fmt: skip
        await self.store.mark(event_id, status, 0, error, message_id, attempt, sequence_id)

    def should_post(self, event_id: str) -> bool:
        return event_id not in self.held

    def sent_elsewhere(self, event_id: str) -> bool:
        return False

    def superseded(self, event_id: str) -> bool:
        return event_id in self.moot

    def took_over(self, event_id: str) -> bool:
        return event_id in self.takeovers

    async def delivered(self, event_id: str) -> None:
        self.delivered_ids.append(event_id)

    async def reachable(self, ok: bool) -> None:
        self.answers.append(ok)


def transition(target: int, n: int, at_ms: int) -> Event:
    notice = Notice.DOWN if n % 2 == 0 else Notice.UP
    state = notice.value
    anchor = Hlc(at_ms, 0, "huginn")
    return Event(event_id(f"t{target}", notice, state, anchor, Mode.QUORUM), f"t{target}",
                 notice, state, "UP" if state == "DOWN" else "DOWN", anchor, Mode.QUORUM,
                 ("huginn", "muninn"))  # fmt: skip


async def queue(store: Store, events: list[Event], created_ms: int) -> None:
    rows = [(e.id, e.subject, e.notice.value, wire.json_text(e.to_value()), created_ms + i)
            for i, e in enumerate(events)]  # fmt: skip
    await store.commit([], {}, ZERO, outbox=rows)


def topic_of(event: Event) -> Subject:
    # Targets t0..t9 on their own topic, the rest on the default one.
    return Subject(event.subject, topic="ops-db" if int(event.subject[1:]) < 10 else None)


def run(
    tmp_path: Path,
    inbox: Inbox,
    work: Callable[[Store, StoreHost, Courier], Awaitable[Any]],
    summarize_after_ms: int | None = None,
    now_ms: int = START_MS,
) -> Any:
    async def go() -> Any:
        SENT_POSTS[0] = 0
        store = await Store.open(tmp_path / "outbox.sqlite3")
        host = StoreHost(store)
        try:

            async def count(request: httpx.Request) -> None:
                if request.method == "POST":
                    SENT_POSTS[0] += 1

            hooks = {"request": [count]}
            async with serving(inbox) as url, httpx.AsyncClient(event_hooks=hooks) as client:
                routing = Routing(Server(url, token=TOKEN, timeout_s=TIMEOUT_S),
                                  Style("biphrost-status"), topic_of,
                                  summarize_after_ms, lambda: now_ms)  # fmt: skip
                sender = Courier(host, routing, client, clock=NoWait())
                return await work(store, host, sender)
        finally:
            await store.close()

    return asyncio.run(go())


async def drain(sender: Courier, store: Store, inbox: Inbox, passes: int = 20_000) -> int:
    """Run passes until the outbox is empty; the number of passes it took.

    Backoffs are not waited out, except after a post in doubt: there the
    sender's backoff (seconds) gives a slow ntfy time to finish the request
    it was still working on before the lookup; here we wait for exactly that."""
    for n in range(passes):
        if not await store.outbox_rows(("queued", "posting")):
            return n
        await sender.send_due()
        # Every post sent has reached ntfy and been handled (bounded: a post
        # counted as it left may never connect, on a loaded machine).
        for _ in range(500):
            if not inbox.in_flight and len(inbox.requests) >= SENT_POSTS[0]:
                break
            await asyncio.sleep(0.01)
        else:
            # What never arrived will not: counted, it held every later pass
            # for the whole bound, and the test for hours.
            SENT_POSTS[0] = len(inbox.requests)
    raise AssertionError(f"outbox not empty after {passes} passes")


def test_a_thousand_transitions_under_random_faults_none_lost_none_doubled(
    tmp_path: Path,
) -> None:
    chance = random.Random(7)
    faults = {"ok": 0, "503": 0, "429": 0, "slow": 0, "answer lost": 0}

    def chaos(inbox: Inbox) -> None:
        inbox.fail_status, inbox.retry_after_s, inbox.delay_s, inbox.answer_delay_s = (
            None, None, 0.0, 0.0)  # fmt: skip
        roll = chance.random()
        if roll < 0.12:
            inbox.fail_status, kind = 503, "503"
        elif roll < 0.20:
            inbox.retry_after_s, kind = 0, "429"
        elif roll < 0.22:
            inbox.delay_s, kind = LATE_S, "slow"
        elif roll < 0.26:
            inbox.answer_delay_s, kind = LATE_S, "answer lost"
        else:
            kind = "ok"
        faults[kind] += 1

    # A clock that moves 5 s per request keeps the burst limit out of the way.
    ticks = itertools.count(1_795_000_000, 5)
    inbox = Inbox(token=TOKEN, before_request=chaos, clock=lambda: float(next(ticks)))
    events = [transition(t, n, START_MS + n * 60_000 + t) for n in range(10) for t in range(100)]

    async def work(store: Store, host: StoreHost, sender: Courier) -> int:
        passes = 0
        for wave in range(0, len(events), 100):  # transitions keep arriving meanwhile
            await queue(store, events[wave : wave + 100], START_MS + wave)
            passes += await drain(sender, store, inbox)
        return passes

    passes = run(tmp_path, inbox, work)
    received = [m["sequence_id"] for m in inbox.all()]
    assert sorted(received) == sorted(e.id for e in events), "each event exactly once"
    assert faults["503"] > 50 and faults["429"] > 30 and faults["answer lost"] > 25, faults
    assert faults["slow"] > 10, faults
    for topic, messages in inbox.messages.items():
        order = [e.id for e in events if (topic_of(e).topic or "biphrost-status") == topic]
        assert [m["sequence_id"] for m in messages] == order, f"order in topic {topic}"
    assert passes < 20_000


def test_an_answer_lost_after_ntfy_stored_it_is_looked_up_not_posted_again(
    tmp_path: Path,
) -> None:
    inbox = Inbox(token=TOKEN, answer_delay_s=LATE_S)
    down = transition(1, 0, START_MS)

    async def work(store: Store, host: StoreHost, sender: Courier) -> list[OutboxRow]:
        await queue(store, [down], START_MS)
        await sender.send_due()  # times out: in doubt
        (row,) = await store.outbox_rows(("posting",))
        assert "no answer from ntfy" in str(row.last_error)
        inbox.answer_delay_s = 0.0
        await sender.send_due()
        return await store.outbox_rows(("sent",))

    (sent,) = run(tmp_path, inbox, work)
    assert [m["sequence_id"] for m in inbox.all()] == [down.id]
    assert sent.event_id == down.id
    assert len(inbox.requests) == 1, "found by its sequence id, not posted twice"


def test_a_standby_taking_over_finds_the_senders_post_and_does_not_repeat_it(
    tmp_path: Path,
) -> None:
    inbox = Inbox(token=TOKEN)
    down = transition(1, 0, START_MS)

    async def work(store: Store, host: StoreHost, sender: Courier) -> None:
        # The sender posted, then died before its peer learned it had.
        async with httpx.AsyncClient() as client:
            from notify.publisher import publish

            await publish(client, sender.routing.server, sender._message(down))
        host.takeovers.add(down.id)
        await queue(store, [down], START_MS)
        await sender.send_due()
        assert host.delivered_ids == [down.id]

    run(tmp_path, inbox, work)
    assert len(inbox.all()) == 1 and len(inbox.requests) == 1


def test_stale_events_go_out_as_one_summary_per_topic(tmp_path: Path) -> None:
    inbox = Inbox(token=TOKEN)
    old = [transition(t, n, START_MS + n * 1000) for n in range(2) for t in (1, 2, 30)]
    fresh = transition(40, 0, START_MS + 3 * 3_600_000)

    async def work(store: Store, host: StoreHost, sender: Courier) -> None:
        await queue(store, [*old, fresh], START_MS)
        assert await sender.send_due() is None
        assert sorted(host.delivered_ids) == sorted(e.id for e in [*old, fresh])

    run(tmp_path, inbox, work, summarize_after_ms=3_600_000, now_ms=START_MS + 3 * 3_600_000)
    ops, status = inbox.messages["ops-db"], inbox.messages["biphrost-status"]
    assert [m["title"] for m in ops] == ["4 delayed notifications"]
    assert [m["title"] for m in status] == ["2 delayed notifications", "t40 is DOWN"]
    assert ops[0]["priority"] == 3 and "t1 is DOWN" in ops[0]["message"]


def test_rate_limited_the_sender_waits_as_told_then_spaces_its_posts(tmp_path: Path) -> None:
    inbox = Inbox(token=TOKEN, retry_after_s=42)
    events = [transition(t, 0, START_MS + t) for t in range(3)]
    slept: list[float] = []

    async def work(store: Store, host: StoreHost, sender: Courier) -> float | None:
        class Counted(NoWait):
            async def sleep(self, seconds: float) -> None:
                slept.append(seconds)

        sender.clock = Counted()
        await queue(store, events, START_MS)
        waited = await sender.send_due()
        assert len(inbox.requests) == 1, "nothing more after a 429 until the wait is over"
        inbox.retry_after_s = None
        assert await sender.send_due() is None
        return waited

    assert run(tmp_path, inbox, work) == 42
    assert [m["sequence_id"] for m in inbox.all()] == [e.id for e in events]
    assert slept == [1.0, 1.0], "posts spaced after a 429"


def test_a_refused_event_is_kept_and_the_rest_still_go(tmp_path: Path) -> None:
    inbox = Inbox(token=TOKEN)
    events = [transition(t, 0, START_MS + t) for t in range(3)]

    async def work(store: Store, host: StoreHost, sender: Courier) -> list[OutboxRow]:
        sender.routing.server = Server(sender.routing.server.base_url, token="tk_" + "w" * 29)
        await queue(store, events[:1], START_MS)
        await sender.send_due()
        sender.routing.server = Server(sender.routing.server.base_url, token=TOKEN)
        await queue(store, events[1:], START_MS + 10)
        await sender.send_due()
        return await store.outbox_rows(("refused",))

    (refused,) = run(tmp_path, inbox, work)
    assert refused.event_id == events[0].id and "unauthorized (40101)" in str(refused.last_error)
    assert [m["sequence_id"] for m in inbox.all()] == [e.id for e in events[1:]]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_node_hears_whether_ntfy_answers_and_a_probe_says_when_it_is_back(
    tmp_path: Path,
) -> None:
    inbox = Inbox(token=TOKEN)
    down = transition(1, 0, START_MS)

    async def work(store: Store, host: StoreHost, sender: Courier) -> None:
        good = sender.routing.server
        sender.routing.server = Server(f"http://127.0.0.1:{closed_port()}", token=TOKEN)
        await queue(store, [down], START_MS)
        await sender.send_due()
        assert host.answers == [False], "a refused connection is told to the node"
        # Nothing of ours is due (the standby took it over): a poll, not a
        # post, tells the node that ntfy is back.
        host.held.add(down.id)
        sender.routing.server = good
        await sender.send_due()
        assert host.answers == [False, True]
        assert inbox.requests == [], "the probe posted nothing"
        # A 429 says nothing about this node's reach.
        host.held.clear()
        inbox.retry_after_s = 42
        await sender.send_due()
        assert len(inbox.requests) == 1 and host.answers == [False, True]
        inbox.retry_after_s = None
        await sender.send_due()
        assert host.delivered_ids == [down.id] and host.answers == [False, True, True]

    run(tmp_path, inbox, work)
