"""The faults a simulated run injects, drawn from one seed.

Everything is decided up front, so the same seed gives the same world:
real outages, one-sided path failures, a node's own network loss, partitions
between the nodes, flapping targets, crashes, clock skew and ntfy trouble.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


class Fault(StrEnum):
    PARTITION = "partition"
    ISOLATION = "isolation"
    PATH = "path"
    FLAP = "flap"
    CRASH = "crash"
    SKEW = "skew"
    NTFY = "ntfy"


@dataclass(frozen=True, slots=True)
class Window:
    start_ms: int
    end_ms: int

    def holds(self, t_ms: int) -> bool:
        return self.start_ms <= t_ms < self.end_ms

    def overlaps(self, start_ms: int, end_ms: int) -> bool:
        return self.start_ms < end_ms and start_ms < self.end_ms

    @property
    def length_ms(self) -> int:
        return self.end_ms - self.start_ms


@dataclass(frozen=True, slots=True)
class Outage(Window):
    target: str


@dataclass(frozen=True, slots=True)
class PathFailure(Window):
    node: str
    target: str


@dataclass(frozen=True, slots=True)
class Isolation(Window):
    node: str
    # The node's uplink is gone (peer unreachable too), or only its way to
    # the world while the link between the nodes still works.
    uplink: bool


@dataclass(frozen=True, slots=True)
class Flap(Window):
    target: str
    down: tuple[Window, ...]


@dataclass(frozen=True, slots=True)
class Crash(Window):
    node: str


@dataclass(frozen=True, slots=True)
class NtfyTrouble(Window):
    # None: unreachable; otherwise every post gets 429 with this Retry-After.
    retry_after_s: int | None


@dataclass(frozen=True, slots=True)
class Scenario:
    nodes: tuple[str, ...]
    targets: tuple[str, ...]
    duration_ms: int
    faults: frozenset[Fault]
    outages: tuple[Outage, ...] = ()
    paths: tuple[PathFailure, ...] = ()
    isolations: tuple[Isolation, ...] = ()
    partitions: tuple[Window, ...] = ()
    flaps: tuple[Flap, ...] = ()
    crashes: tuple[Crash, ...] = ()
    skew_ms: dict[str, int] = field(default_factory=dict)
    ntfy: tuple[NtfyTrouble, ...] = ()
    slow: tuple[Outage, ...] = ()


def node_names(count: int) -> tuple[str, ...]:
    names = ("huginn", "muninn")
    return names[:count] if count <= 2 else tuple(f"node{i + 1}" for i in range(count))


def _count(rng: random.Random, per_day: float, days: float) -> int:
    """A Poisson-ish count: the expected number, rounded at random."""
    expected = per_day * days
    whole = int(expected)
    return whole + (1 if rng.random() < expected - whole else 0)


class _Calendar:
    """Keeps one target's outages and flap episodes apart, so that each is a
    transition of its own (a gap long enough for the pair to see UP again)."""

    GAP_MS = 30 * MINUTE_MS

    def __init__(self) -> None:
        self.busy: dict[str, list[Window]] = {}

    def free(self, target: str, start_ms: int, end_ms: int) -> bool:
        return not any(
            w.overlaps(start_ms - self.GAP_MS, end_ms + self.GAP_MS)
            for w in self.busy.get(target, [])
        )

    def book(self, target: str, window: Window) -> None:
        self.busy.setdefault(target, []).append(window)


def generate(
    seed: int, days: float, target_count: int, node_count: int, faults: Iterable[Fault]
) -> Scenario:
    rng = random.Random(seed)
    enabled = frozenset(faults)
    nodes = node_names(node_count)
    targets = tuple(f"t{i:04d}" for i in range(target_count))
    duration = int(days * DAY_MS)
    warmup = 10 * MINUTE_MS
    calendar = _Calendar()

    def when(length_ms: int) -> int:
        return rng.randrange(warmup, max(warmup + 1, duration - length_ms - 15 * MINUTE_MS))

    outages: list[Outage] = []
    for _ in range(_count(rng, target_count / 3, days)):
        target = rng.choice(targets)
        if rng.random() < 0.3:
            length = rng.randrange(20_000, 120_000)
        else:
            length = rng.randrange(3 * MINUTE_MS, 60 * MINUTE_MS)
        start = when(length)
        if calendar.free(target, start, start + length):
            calendar.book(target, Window(start, start + length))
            outages.append(Outage(start, start + length, target))

    flaps: list[Flap] = []
    if Fault.FLAP in enabled:
        for _ in range(_count(rng, 0.5, days)):
            target = rng.choice(targets)
            length = rng.randrange(40 * MINUTE_MS, 90 * MINUTE_MS)
            start = when(length)
            if not calendar.free(target, start, start + length):
                continue
            down: list[Window] = []
            t = start
            while t < start + length:
                d = rng.randrange(30_000, 120_000)
                down.append(Window(t, min(t + d, start + length)))
                t += d + rng.randrange(30_000, 180_000)
            calendar.book(target, Window(start, start + length))
            flaps.append(Flap(start, start + length, target, tuple(down)))

    paths: list[PathFailure] = []
    if Fault.PATH in enabled:
        for _ in range(_count(rng, 2.0, days)):
            length = rng.randrange(5 * MINUTE_MS, 60 * MINUTE_MS)
            start = when(length)
            target = rng.choice(targets)
            node = rng.choice(nodes)
            # Never from every side at once: that would be an outage.
            clash = any(
                p.target == target and p.node != node and p.overlaps(start, start + length)
                for p in paths
            )
            if not clash:
                paths.append(PathFailure(start, start + length, node, target))

    isolations: list[Isolation] = []
    if Fault.ISOLATION in enabled:
        for _ in range(_count(rng, 0.5, days)):
            length = rng.randrange(2 * MINUTE_MS, 20 * MINUTE_MS)
            start = when(length)
            isolations.append(
                Isolation(start, start + length, rng.choice(nodes), rng.random() < 0.6)
            )

    partitions: list[Window] = []
    if Fault.PARTITION in enabled:
        for _ in range(_count(rng, 0.5, days)):
            length = rng.randrange(2 * MINUTE_MS, 30 * MINUTE_MS)
            start = when(length)
            partitions.append(Window(start, start + length))

    crashes: list[Crash] = []
    if Fault.CRASH in enabled:
        for _ in range(_count(rng, 4.0, days)):
            length = rng.randrange(5_000, 5 * MINUTE_MS)
            if outages and rng.random() < 0.5:
                # Around a transition, where a crash hurts most.
                start = rng.choice(outages).start_ms + rng.randrange(0, 120_000)
            else:
                start = when(length)
            crashes.append(Crash(start, start + length, rng.choice(nodes)))

    skew: dict[str, int] = {}
    if Fault.SKEW in enabled and len(nodes) > 1:
        skew[nodes[1]] = rng.choice((-1, 1)) * 5 * MINUTE_MS

    ntfy: list[NtfyTrouble] = []
    if Fault.NTFY in enabled:
        for _ in range(_count(rng, 0.5, days)):
            length = rng.randrange(5 * MINUTE_MS, 30 * MINUTE_MS)
            start = when(length)
            ntfy.append(NtfyTrouble(start, start + length, None))
        for _ in range(_count(rng, 0.5, days)):
            length = rng.randrange(5 * MINUTE_MS, 15 * MINUTE_MS)
            start = when(length)
            ntfy.append(NtfyTrouble(start, start + length, rng.randrange(10, 60)))

    slow: list[Outage] = []
    for _ in range(_count(rng, 2.0, days)):
        length = rng.randrange(5 * MINUTE_MS, 30 * MINUTE_MS)
        start = when(length)
        slow.append(Outage(start, start + length, rng.choice(targets)))

    return Scenario(
        nodes=nodes,
        targets=targets,
        duration_ms=duration,
        faults=enabled,
        outages=tuple(sorted(outages, key=lambda o: o.start_ms)),
        paths=tuple(paths),
        isolations=tuple(isolations),
        partitions=tuple(partitions),
        flaps=tuple(flaps),
        crashes=tuple(sorted(crashes, key=lambda c: c.start_ms)),
        skew_ms=skew,
        ntfy=tuple(ntfy),
        slow=tuple(slow),
    )
