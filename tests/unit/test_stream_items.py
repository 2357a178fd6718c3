"""The event stream's items and its bounds, without a node: which entries
become items and in what order, the cursor a client resumes from, and a
client too slow for its buffer dropped rather than waited for."""

from __future__ import annotations

import asyncio

import pytest

from consensus import keys
from consensus.agreement import Mode, Notice
from consensus.announced import announced
from consensus.events import Event
from consensus.hlc import Hlc
from consensus.lww import LwwMap
from watchers.stream import REPLAY_MS, Hub, parse_cursor, replay

NOW = 1_900_000_000_000


def event(event_id: str, notice: Notice, at_ms: int, subject: str = "blog") -> Event:
    previous = "DOWN" if notice is Notice.UP else "UP"
    state = {Notice.DOWN: "DOWN", Notice.UP: "UP"}.get(notice, "UP")
    return Event(event_id, subject, notice, state, previous, Hlc(at_ms, 0, "huginn"),
                 Mode.QUORUM, ("huginn", "muninn"))  # fmt: skip


def log_of(*events: Event, acks: dict[str, int] | None = None) -> LwwMap:
    log = LwwMap("huginn")
    for i, found in enumerate(events):
        log.write(keys.event(found.id), found.to_value(), Hlc(NOW + i, 0, "huginn"))
    for i, (acked, at) in enumerate((acks or {}).items()):
        value = {"by": "ops", "note": "on it", "at_ms": at}
        log.write(keys.ack(acked), value, Hlc(NOW + 100 + i, 0, "huginn"))
    log.write("target/x", {"target": {}}, Hlc(NOW + 200, 0, "huginn"))
    return log


def test_events_and_acknowledgements_are_items_in_decision_order() -> None:
    down = event("e1", Notice.DOWN, NOW - 5000)
    up = event("e2", Notice.UP, NOW - 1000)
    lost = event("e3", Notice.PEER_LOST, NOW - 3000, subject="node:muninn")
    log = log_of(up, down, lost, acks={"e1": NOW - 4000})
    items, stale = replay(announced(log.entries()), (NOW - REPLAY_MS + 1, ""), NOW)
    assert not stale
    assert [(i.kind, i.data["id"]) for i in items] == [
        ("transition", "e1"), ("acknowledgement", "ack-e1"), ("node", "e3"), ("transition", "e2"),
    ]  # fmt: skip
    assert items[0].data["incident"] == "opened" and items[3].data["incident"] == "closed"
    assert items[2].data["node"] == "muninn" and items[2].data["target"] is None
    # A client resumes after what it saw, from either node: same cursor, same rest.
    after = parse_cursor(f"{items[1].cursor[0]}-{items[1].cursor[1]}")
    assert after == items[1].cursor
    rest, _ = replay(announced(log.entries()), after, NOW)
    assert [i.data["id"] for i in rest] == ["e3", "e2"]
    assert len(announced(log.entries())) == 4, "a target entry is no announcement"


def test_an_id_older_than_the_replay_says_reload_and_a_bad_one_is_none() -> None:
    log = log_of(event("e1", Notice.DOWN, NOW - 5000))
    assert replay(announced(log.entries()), (NOW - REPLAY_MS - 1, "x"), NOW) == ([], True)
    for bad in ("", "yesterday", "12", "-x", "\uff11\uff12-x", "9" * 17 + "-x", "1-" + "x" * 200):
        assert parse_cursor(bad) is None, bad


def test_a_client_too_slow_for_its_buffer_is_dropped_and_told() -> None:
    async def go() -> None:
        hub = Hub(max_clients=2, buffer=2)
        slow, quick = hub.join(), hub.join()
        with pytest.raises(Exception, match="at most 2 clients"):
            hub.join()
        log = log_of(*(event(f"e{i}", Notice.DOWN, NOW + i) for i in range(3)))
        entries = list(log.entries())
        hub.publish(announced(entries[:2]))
        assert quick.get_nowait() is not None and quick.get_nowait() is not None
        hub.publish(announced(entries[2:]))  # the slow one's buffer is full: dropped
        assert slow not in hub.clients and quick in hub.clients and hub.dropped == 1
        drained = [slow.get_nowait() for _ in range(slow.qsize())]
        assert drained[-1] is None, "its stream ends saying so"
        hub.join()  # its place is free again

    asyncio.run(go())
