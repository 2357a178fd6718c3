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
    # ntfy unreachable from one node while its peer still reaches it.
    NTFY_CUT = "ntfy_cut"
    # A node's wall clock steps forward or back for a while (a restart inside, sometimes).
    CLOCK_STEP = "clock_step"
    # A node's scheduler stalls: no checks, canaries or pulls; it still ticks and answers.
    STALL = "stall"
    # A host falls with every target on it (a family: the host and the
    # targets that name it as parent).
    HOST = "host"
    # One node loses its path to a host and everything on it.
    HOST_PATH = "host_path"
    # A rack falls with every target tagged with it (a tag group, no parent).
    RACK = "rack"
    # One node loses its path to a rack.
    RACK_PATH = "rack_path"


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
class NtfyCut(Window):
    node: str


@dataclass(frozen=True, slots=True)
class ClockStep(Window):
    node: str
    step_ms: int
    # The node is killed this long after the step and started again 5 s
    # later, still on the stepped clock; None: no restart.
    restart_after_ms: int | None


@dataclass(frozen=True, slots=True)
class Stall(Window):
    node: str


@dataclass(frozen=True, slots=True)
class Family:
    """Targets that fall together: a parent and the children that name it
    (``tag`` None), or targets that only share a tag (then ``parent`` is
    just the first of them)."""

    parent: str
    children: tuple[str, ...]
    tag: str | None = None

    @property
    def members(self) -> tuple[str, ...]:
        return (self.parent, *self.children)

    @property
    def name(self) -> str:
        return self.tag or self.parent


@dataclass(frozen=True, slots=True)
class HostOutage(Window):
    """A whole family down at once, for every node."""

    family: str


@dataclass(frozen=True, slots=True)
class HostPath(Window):
    """A whole family out of one node's reach; the others see it up."""

    node: str
    family: str


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
    ntfy_cuts: tuple[NtfyCut, ...] = ()
    clock_steps: tuple[ClockStep, ...] = ()
    stalls: tuple[Stall, ...] = ()
    # Families and what befalls them whole; each member's share is also in
    # outages and paths, so everything that judges a target judges these.
    families: tuple[Family, ...] = ()
    host_outages: tuple[HostOutage, ...] = ()
    host_paths: tuple[HostPath, ...] = ()


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


class _Draw:
    """Draws each kind of fault from one random stream, in a fixed order."""

    def __init__(
        self,
        seed: int,
        days: float,
        nodes: tuple[str, ...],
        targets: tuple[str, ...],
        density: float = 1.0,
    ):
        self.rng = random.Random(seed)
        self.days = days
        self.density = density
        self.nodes = nodes
        self.targets = targets
        self.duration_ms = int(days * DAY_MS)
        self.calendar = _Calendar()

    def count(self, per_day: float) -> range:
        return range(_count(self.rng, per_day * self.density, self.days))

    def length(self, low_ms: int, high_ms: int) -> int:
        return self.rng.randrange(low_ms, high_ms)

    def when(self, length_ms: int) -> int:
        """A start after the warm-up that leaves time to see the end."""
        warmup = 10 * MINUTE_MS
        latest = max(warmup + 1, self.duration_ms - length_ms - 15 * MINUTE_MS)
        return self.rng.randrange(warmup, latest)

    def outages(self) -> list[Outage]:
        found: list[Outage] = []
        for _ in self.count(len(self.targets) / 3):
            target = self.rng.choice(self.targets)
            if self.rng.random() < 0.3:
                length = self.length(20_000, 120_000)
            else:
                length = self.length(3 * MINUTE_MS, 60 * MINUTE_MS)
            start = self.when(length)
            if self.calendar.free(target, start, start + length):
                self.calendar.book(target, Window(start, start + length))
                found.append(Outage(start, start + length, target))
        return sorted(found, key=lambda o: o.start_ms)

    def flaps(self) -> list[Flap]:
        found: list[Flap] = []
        for _ in self.count(0.5):
            target = self.rng.choice(self.targets)
            length = self.length(40 * MINUTE_MS, 90 * MINUTE_MS)
            start = self.when(length)
            if not self.calendar.free(target, start, start + length):
                continue
            down: list[Window] = []
            t = start
            while t < start + length:
                d = self.length(30_000, 120_000)
                down.append(Window(t, min(t + d, start + length)))
                t += d + self.length(30_000, 180_000)
            self.calendar.book(target, Window(start, start + length))
            found.append(Flap(start, start + length, target, tuple(down)))
        return found

    def paths(self) -> list[PathFailure]:
        found: list[PathFailure] = []
        for _ in self.count(2.0):
            length = self.length(5 * MINUTE_MS, 60 * MINUTE_MS)
            start = self.when(length)
            target = self.rng.choice(self.targets)
            node = self.rng.choice(self.nodes)
            # Never from every side at once: that would be an outage.
            clash = any(
                p.target == target and p.node != node and p.overlaps(start, start + length)
                for p in found
            )
            if not clash:
                found.append(PathFailure(start, start + length, node, target))
        return found

    def isolations(self) -> list[Isolation]:
        found: list[Isolation] = []
        for _ in self.count(0.5):
            length = self.length(2 * MINUTE_MS, 20 * MINUTE_MS)
            start = self.when(length)
            node = self.rng.choice(self.nodes)
            found.append(Isolation(start, start + length, node, self.rng.random() < 0.6))
        return found

    def partitions(self) -> list[Window]:
        found: list[Window] = []
        for _ in self.count(0.5):
            length = self.length(2 * MINUTE_MS, 30 * MINUTE_MS)
            start = self.when(length)
            found.append(Window(start, start + length))
        return found

    def crashes(self, outages: list[Outage]) -> list[Crash]:
        found: list[Crash] = []
        for _ in self.count(4.0):
            length = self.length(5_000, 5 * MINUTE_MS)
            if outages and self.rng.random() < 0.5:
                # Around a transition, where a crash hurts most.
                start = self.rng.choice(outages).start_ms + self.length(0, 120_000)
            else:
                start = self.when(length)
            found.append(Crash(start, start + length, self.rng.choice(self.nodes)))
        return sorted(found, key=lambda c: c.start_ms)

    def ntfy(self) -> list[NtfyTrouble]:
        found: list[NtfyTrouble] = []
        for _ in self.count(0.5):
            length = self.length(5 * MINUTE_MS, 30 * MINUTE_MS)
            start = self.when(length)
            found.append(NtfyTrouble(start, start + length, None))
        for _ in self.count(0.5):
            length = self.length(5 * MINUTE_MS, 15 * MINUTE_MS)
            start = self.when(length)
            found.append(NtfyTrouble(start, start + length, self.length(10, 60)))
        return found

    def node_windows(self, per_day: float, shortest_ms: int, longest_ms: int) -> list[Crash]:
        """Windows of one node each, per_day on average (drawn as a Crash has
        them: start, end, node; the callers name what they are)."""
        found: list[Crash] = []
        for _ in self.count(per_day):
            length = self.length(shortest_ms, longest_ms)
            start = self.when(length)
            found.append(Crash(start, start + length, self.rng.choice(self.nodes)))
        return found

    def ntfy_cuts(self) -> list[NtfyCut]:
        return [
            NtfyCut(w.start_ms, w.end_ms, w.node)
            for w in self.node_windows(3.0, 3 * MINUTE_MS, 30 * MINUTE_MS)
        ]

    def clock_steps(self) -> list[ClockStep]:
        found: list[ClockStep] = []
        for _ in self.count(2.0):
            # Seconds to hours, either way; back by at most an hour.
            magnitude = self.rng.choice((5_000, 90_000, 10 * MINUTE_MS, HOUR_MS, 2 * HOUR_MS))
            step = magnitude if self.rng.random() < 0.5 else -min(magnitude, HOUR_MS)
            length = self.length(20_000, 10 * MINUTE_MS)
            start = self.when(length)
            restart = self.length(5_000, length) if self.rng.random() < 0.3 else None
            found.append(
                ClockStep(start, start + length, self.rng.choice(self.nodes), step, restart)
            )
        return sorted(found, key=lambda c: c.start_ms)

    def stalls(self) -> list[Stall]:
        return [
            Stall(w.start_ms, w.end_ms, w.node)
            for w in self.node_windows(3.0, 2 * MINUTE_MS, 15 * MINUTE_MS)
        ]

    def slow(self) -> list[Outage]:
        found: list[Outage] = []
        for _ in self.count(2.0):
            length = self.length(5 * MINUTE_MS, 30 * MINUTE_MS)
            start = self.when(length)
            found.append(Outage(start, start + length, self.rng.choice(self.targets)))
        return found


FAMILY_SIZE = 4  # children of the one host a run with host faults has
# Targets of the one rack (a tag group, no parent): one more than the
# least that groups, so a group forms even with one of them flapping out.
RACK_SIZE = 7


def _families(
    seed: int, days: float, nodes: tuple[str, ...], enabled: frozenset[Fault], density: float
) -> tuple[tuple[Family, ...], list[HostOutage], list[HostPath]]:
    """One host and the targets on it, and one rack of tagged targets;
    their outages and one-sided paths, apart in time for each, from a
    stream of their own."""
    host = Family("host0", tuple(f"host0-s{i}" for i in range(FAMILY_SIZE)))
    rack = Family("rack0-s0", tuple(f"rack0-s{i}" for i in range(1, RACK_SIZE)), tag="rack0")
    # The rack's from a stream of its own: the host's stay what they were.
    host_fate = _Draw(seed ^ 0x2121, days, nodes, host.members, density)
    rack_fate = _Draw(seed ^ 0x2222, days, nodes, rack.members, density)
    kinds = [
        (host, host_fate, Fault.HOST, Fault.HOST_PATH),
        (rack, rack_fate, Fault.RACK, Fault.RACK_PATH),
    ]
    families = tuple(f for f, _, down, path in kinds if enabled & {down, path})
    outages: list[HostOutage] = []
    paths: list[HostPath] = []
    for family, fate, down, path in kinds:
        for _ in fate.count(2.0) if down in enabled else ():
            length = fate.length(3 * MINUTE_MS, 40 * MINUTE_MS)
            start = fate.when(length)
            if fate.calendar.free(family.name, start, start + length):
                fate.calendar.book(family.name, Window(start, start + length))
                outages.append(HostOutage(start, start + length, family.name))
        for _ in fate.count(2.0) if path in enabled else ():
            length = fate.length(3 * MINUTE_MS, 30 * MINUTE_MS)
            start = fate.when(length)
            if fate.calendar.free(family.name, start, start + length):
                fate.calendar.book(family.name, Window(start, start + length))
                paths.append(HostPath(start, start + length, fate.rng.choice(nodes), family.name))
    return families, outages, paths


def generate(
    seed: int,
    days: float,
    target_count: int,
    node_count: int,
    faults: Iterable[Fault],
    density: float = 1.0,
) -> Scenario:
    """The whole scenario for one seed; a fault not enabled is drawn as empty."""
    enabled = frozenset(faults)
    nodes = node_names(node_count)
    targets = tuple(f"t{i:04d}" for i in range(target_count))
    draw = _Draw(seed, days, nodes, targets, density)
    outages = draw.outages()
    flaps = draw.flaps() if Fault.FLAP in enabled else []
    paths = draw.paths() if Fault.PATH in enabled else []
    isolations = draw.isolations() if Fault.ISOLATION in enabled else []
    partitions = draw.partitions() if Fault.PARTITION in enabled else []
    crashes = draw.crashes(outages) if Fault.CRASH in enabled else []
    skew: dict[str, int] = {}
    if Fault.SKEW in enabled and len(nodes) > 1:
        skew[nodes[1]] = draw.rng.choice((-1, 1)) * 5 * MINUTE_MS
    ntfy = draw.ntfy() if Fault.NTFY in enabled else []
    slow = draw.slow()
    # Faults added later draw from a stream of their own: the faults above
    # stay what they were for every seed.
    later = _Draw(seed ^ 0x14_14, days, nodes, targets, density)
    ntfy_cuts = later.ntfy_cuts() if Fault.NTFY_CUT in enabled and len(nodes) > 1 else []
    clock_steps = later.clock_steps() if Fault.CLOCK_STEP in enabled else []
    stalls = later.stalls() if Fault.STALL in enabled else []
    families: tuple[Family, ...] = ()
    host_outages: list[HostOutage] = []
    host_paths: list[HostPath] = []
    if enabled & {Fault.HOST, Fault.HOST_PATH, Fault.RACK, Fault.RACK_PATH}:
        families, host_outages, host_paths = _families(seed, days, nodes, enabled, density)
        members = {f.name: f.members for f in families}
        targets = (*targets, *(t for f in families for t in f.members))
        outages = sorted(
            [*outages, *(Outage(h.start_ms, h.end_ms, t) for h in host_outages
                         for t in members[h.family])],
            key=lambda o: (o.start_ms, o.target),
        )  # fmt: skip
        paths = [*paths, *(PathFailure(h.start_ms, h.end_ms, h.node, t) for h in host_paths
                           for t in members[h.family])]  # fmt: skip
    return Scenario(
        nodes=nodes,
        targets=targets,
        duration_ms=draw.duration_ms,
        faults=enabled,
        outages=tuple(outages),
        paths=tuple(paths),
        isolations=tuple(isolations),
        partitions=tuple(partitions),
        flaps=tuple(flaps),
        crashes=tuple(crashes),
        skew_ms=skew,
        ntfy=tuple(ntfy),
        slow=tuple(slow),
        ntfy_cuts=tuple(ntfy_cuts),
        clock_steps=tuple(clock_steps),
        stalls=tuple(stalls),
        families=families,
        host_outages=tuple(host_outages),
        host_paths=tuple(host_paths),
    )
