"""Three replicas of the log over a simulated network, against a simple model.

The network loses, duplicates, reorders and partitions messages. After every
step the version vector must tell the truth: whatever an origin wrote up to
the version a replica claims is held there (or beaten by a newer write). On
heal, a full sync makes every replica equal to the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from consensus.hlc import HybridClock
from consensus.lww import Entry, LwwMap

NAMES = ("huginn", "muninn", "node3")
KEYS = ("target/a", "target/b", "state/a", "claim/e1", "sent/e1")


def rank(entry: Entry) -> tuple[int, int, str, str]:
    value = json.dumps(entry.value, sort_keys=True, separators=(",", ":"))
    return (entry.hlc.wall_ms, entry.hlc.logical, entry.hlc.node, value)


@dataclass(frozen=True)
class Message:
    dst: str
    entries: tuple[Entry, ...]
    covered: tuple[tuple[str, int], ...] = ()


class Replicas(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.logs = {n: LwwMap(n) for n in NAMES}
        self.clocks = {n: HybridClock(n, 60_000) for n in NAMES}
        self.wall = 1_000
        self.flight: list[Message] = []
        self.cut: set[frozenset[str]] = set()
        self.writes: list[Entry] = []  # the model: every write ever made

    def send(self, src: str, msg: Message) -> None:
        if frozenset((src, msg.dst)) not in self.cut:
            self.flight.append(msg)

    @rule(
        node=st.sampled_from(NAMES),
        key=st.sampled_from(KEYS),
        value=st.integers(0, 5),
        step=st.integers(0, 50),
        skew=st.integers(-200, 200),
    )
    def write(self, node: str, key: str, value: int, step: int, skew: int) -> None:
        self.wall += step
        hlc = self.clocks[node].tick(self.wall + skew)
        entry = self.logs[node].write(key, value, hlc, tombstone=value == 0)
        self.writes.append(entry)
        for other in NAMES:
            if other != node:
                self.send(node, Message(other, (entry,)))

    @rule(src=st.sampled_from(NAMES), dst=st.sampled_from(NAMES), limit=st.integers(1, 4))
    def pull(self, src: str, dst: str, limit: int) -> None:
        if src == dst:
            return
        page = self.logs[src].delta_since(dict(self.logs[dst].vector), limit)
        self.send(src, Message(dst, page.entries, tuple(page.covered.items())))

    @precondition(lambda self: self.flight)
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        msg = self.flight.pop(data.draw(st.integers(0, len(self.flight) - 1)))
        log = self.logs[msg.dst]
        for entry in msg.entries:
            self.clocks[msg.dst].receive(entry.hlc, self.wall)
        log.merge_all(msg.entries)
        log.advance(dict(msg.covered))

    @precondition(lambda self: self.flight)
    @rule(data=st.data())
    def lose(self, data: st.DataObject) -> None:
        self.flight.pop(data.draw(st.integers(0, len(self.flight) - 1)))

    @precondition(lambda self: self.flight)
    @rule(data=st.data())
    def duplicate(self, data: st.DataObject) -> None:
        self.flight.append(self.flight[data.draw(st.integers(0, len(self.flight) - 1))])

    @rule(a=st.sampled_from(NAMES), b=st.sampled_from(NAMES))
    def partition(self, a: str, b: str) -> None:
        if a != b:
            self.cut.add(frozenset((a, b)))

    @rule()
    def heal_and_converge(self) -> None:
        self.cut.clear()
        self.flight.clear()
        for _ in range(2):
            for dst in NAMES:
                for src in NAMES:
                    if src == dst:
                        continue
                    cursor = None
                    while True:
                        page = self.logs[src].delta_since(dict(self.logs[dst].vector), 3, cursor)
                        for entry in page.entries:
                            self.clocks[dst].receive(entry.hlc, self.wall)
                        self.logs[dst].merge_all(page.entries)
                        self.logs[dst].advance(page.covered)
                        if page.next_cursor is None:
                            break
                        cursor = page.next_cursor
        model = self.model()
        for log in self.logs.values():
            held = {e.key: (e.hlc, e.value) for e in log.entries()}
            assert held == model

    def model(self) -> dict[str, object]:
        """The design's rule, written out here rather than taken from the
        code under test: per key, the write with the greatest timestamp
        (wall ms, then logical, then node name); on an equal timestamp, the
        value whose sorted compact JSON is greater."""
        best: dict[str, Entry] = {}
        for entry in self.writes:
            if entry.key not in best or rank(entry) > rank(best[entry.key]):
                best[entry.key] = entry
        return {k: (e.hlc, e.value) for k, e in best.items()}

    @invariant()
    def vectors_tell_the_truth(self) -> None:
        for log in self.logs.values():
            for entry in self.writes:
                if entry.version > log.vector.get(entry.origin, 0):
                    continue
                held = log.raw(entry.key)
                if held is not None and not rank(entry) > rank(held):
                    continue
                # A page may claim a version whose key a later write has
                # since replaced at the origin; that later write is above
                # what the replica claims, so its next pull brings it.
                coming = [
                    w for w in self.writes
                    if w.key == entry.key and rank(w) > rank(entry)
                    and w.version > log.vector.get(w.origin, 0)
                ]  # fmt: skip
                assert coming, (
                    f"{log.node} claims {entry.origin}@{entry.version} but lacks {entry.key}"
                )

    @invariant()
    def replicas_hold_only_real_writes(self) -> None:
        made = {(e.key, e.hlc) for e in self.writes}
        for log in self.logs.values():
            assert all((e.key, e.hlc) in made for e in log.entries())


Replicas.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestReplicas = Replicas.TestCase
