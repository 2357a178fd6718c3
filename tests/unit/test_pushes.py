"""Pushes to a peer: one in flight, the rest coalesced, bounded, and left to
the pull when the peer cannot take them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from consensus import keys
from consensus.commands import Push
from consensus.hlc import Hlc
from consensus.lww import Entry
from watchers.pushes import PeerPushes


def entry(key: str, version: int) -> Entry:
    return Entry(key, {"n": version}, Hlc(version, 0, "huginn"), "huginn", version)


def checks(first: int, count: int) -> tuple[Entry, ...]:
    return tuple(entry(keys.obs("huginn", f"t{i}"), i) for i in range(first, first + count))


class SlowPeer:
    """A peer that takes each push only when the test says so."""

    def __init__(self) -> None:
        self.received: list[tuple[Entry, ...]] = []
        self.claims: list[list[str]] = []
        self.answers: asyncio.Queue[bool] = asyncio.Queue()
        self.tasks: set[asyncio.Task[None]] = set()

    async def send(self, entries: tuple[Entry, ...], claims: list[str]) -> bool:
        self.received.append(entries)
        self.claims.append(claims)
        return await self.answers.get()

    def spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def settle(self) -> None:
        for _ in range(10):
            await asyncio.sleep(0)


async def _what_is_written_while_a_push_is_out_goes_in_the_next_one() -> None:
    peer = SlowPeer()
    pushes = PeerPushes(peer.send, peer.spawn, batch=500)
    pushes.add(checks(0, 1))
    await peer.settle()
    for first in range(1, 200):  # 199 steps written while the first push is out
        pushes.add(checks(first, 1))
    await peer.settle()
    assert len(peer.received) == 1, "one push in flight at a time"
    await peer.answers.put(True)
    await peer.settle()
    assert [len(p) for p in peer.received] == [1, 199], "the rest coalesced into one push"
    await peer.answers.put(True)
    await peer.settle()
    assert not peer.tasks and not pushes.in_flight and pushes.left_to_pull == 0
    sent = [e.version for push in peer.received for e in push]
    assert sent == list(range(200)), "every entry pushed once, in the order written"


async def _a_backlog_past_the_bound_is_left_to_the_pull_but_claims_stay() -> None:
    peer = SlowPeer()
    pushes = PeerPushes(peer.send, peer.spawn, batch=50, most_pending=100)
    pushes.add(checks(0, 1))
    await peer.settle()
    claim = entry(keys.claim("e1"), 10_000)
    push = Push((*checks(1, 60), claim, *checks(61, 60)))
    pushes.add(push.entries, push.claims_by("huginn"))
    assert pushes.pending == [claim], "over the bound: only the claim waits"
    assert pushes.left_to_pull == 120
    await peer.answers.put(True)
    await peer.settle()
    assert peer.received[-1] == (claim,)
    assert peer.claims[-1] == ["e1"], "the shell hears which claim the peer took"
    await peer.answers.put(True)
    await peer.settle()
    assert not pushes.in_flight


async def _a_failed_push_leaves_its_backlog_to_the_pull_and_the_next_write_starts_afresh() -> None:
    peer = SlowPeer()
    pushes = PeerPushes(peer.send, peer.spawn, batch=10)
    pushes.add(checks(0, 5))
    await peer.settle()
    pushes.add(checks(5, 25))
    await peer.answers.put(False)  # the peer is unreachable
    await peer.settle()
    assert len(peer.received) == 1, "no second try while the peer does not answer"
    assert pushes.left_to_pull == 30 and not pushes.pending and not pushes.in_flight
    pushes.add(checks(30, 1))
    await peer.settle()
    assert [e.version for e in peer.received[-1]] == [30]
    await peer.answers.put(True)
    await peer.settle()
    assert not pushes.in_flight


def test_what_is_written_while_a_push_is_out_goes_in_the_next_one() -> None:
    asyncio.run(_what_is_written_while_a_push_is_out_goes_in_the_next_one())


def test_a_backlog_past_the_bound_is_left_to_the_pull_but_claims_stay() -> None:
    asyncio.run(_a_backlog_past_the_bound_is_left_to_the_pull_but_claims_stay())


def test_a_failed_push_leaves_its_backlog_to_the_pull_and_the_next_write_starts_afresh() -> None:
    asyncio.run(_a_failed_push_leaves_its_backlog_to_the_pull_and_the_next_write_starts_afresh())
