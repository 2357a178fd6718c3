"""Months of history for a pair, written through the node's own storage:
the README's pictures show what a sysop sees after months of use, and a
test checks the pages against the scenario that wrote it.

The scenario is the ground truth: each target's outages (when it was down)
and its latency (a base, a daily swing, noise, a slow week). Each node's
raw checks are committed by its ``Store`` as a check would be (rollups
included), each hour's percentiles sealed and the raw checks past their
retention pruned, as the running node does; the agreed history enters
Huginn's log as moves through the core (``import_history``, the upgrade
path) and reaches Muninn by sync once the pair runs.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass

from consensus.node import NodeCore
from watchers.config import Config
from watchers.rows import CheckRow, Interval
from watchers.storage import DB_NAME, Store

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
# A check every five minutes in the seeded past (the live pair checks faster).
SEEDED_EVERY_MS = 5 * 60_000
NODE_DISTANCE = {"huginn": 1.0, "muninn": 1.45}


@dataclass(frozen=True)
class Outage:
    target: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class Latency:
    base_ms: float
    # A slow stretch (start, end, factor): a noisy neighbour, a bad deploy.
    slow: tuple[int, int, float] | None = None

    def at(self, at_ms: int, chance: random.Random) -> float:
        hour = (at_ms % DAY_MS) / HOUR_MS
        daily = 1 + 0.35 * max(0.0, math.sin((hour - 8) / 24 * 2 * math.pi))
        factor = self.slow[2] if self.slow and self.slow[0] <= at_ms < self.slow[1] else 1.0
        return round(self.base_ms * daily * factor * chance.lognormvariate(0, 0.22), 2)


@dataclass(frozen=True)
class Scenario:
    start_ms: int
    end_ms: int
    latency: dict[str, Latency]
    outages: tuple[Outage, ...]

    def down(self, target: str, at_ms: int) -> bool:
        return any(o.target == target and o.start_ms <= at_ms < o.end_ms for o in self.outages)

    def stretches(self, target: str) -> list[Interval]:
        """The agreed history the scenario makes: UP between its outages."""
        found, at = [], self.start_ms
        for outage in sorted((o for o in self.outages if o.target == target),
                             key=lambda o: o.start_ms):  # fmt: skip
            found.append(Interval(target, "UP", "quorum", at, outage.start_ms))
            found.append(Interval(target, "DOWN", "quorum", outage.start_ms, outage.end_ms))
            at = outage.end_ms
        found.append(Interval(target, "UP", "quorum", at, None))
        return found


def scenario(now_ms: int, days: int, targets: dict[str, float], seed: int = 7) -> Scenario:
    """A few outages over the span (minutes to an hour, none in the last day)
    and one slow week for the slowest target."""
    chance = random.Random(seed)
    start = now_ms - days * DAY_MS
    slowest = max(targets, key=lambda t: targets[t])
    # Within the last month, so the 30-day chart shows it.
    slow_at = max(start, now_ms - 20 * DAY_MS)
    latency = {
        t: Latency(base, (slow_at, slow_at + 7 * DAY_MS, 2.6) if t == slowest else None)
        for t, base in targets.items()
    }
    outages = []
    for target in sorted(targets):
        for _ in range(chance.randint(0, max(1, days // 30))):
            begin = chance.randrange(start + DAY_MS, now_ms - 2 * DAY_MS)
            begin -= begin % 60_000
            outages.append(Outage(target, begin, begin + chance.randint(4, 70) * 60_000))
    return Scenario(start, now_ms, latency, tuple(outages))


async def seed_node(config: Config, story: Scenario, imports_history: bool) -> None:
    """Write a node's past into its database, as the node would have."""
    name = config.node.name
    config.node.data_dir.mkdir(parents=True, exist_ok=True)
    store = await Store.open(config.node.data_dir / DB_NAME)
    try:
        chance = random.Random(name)
        # The nodes stand on different continents: one sees every target further away.
        distance = NODE_DISTANCE.get(name, 1.0)
        core = NodeCore(name, [p.name for p in config.peers], story.latency,
                        config.core_settings(), story.end_ms)  # fmt: skip
        if imports_history:
            step = core.import_history(s for t in story.latency for s in story.stretches(t))
            await store.commit(step.to_commit, dict(core.log.vector), core.clock.last)
        for hour in range(story.start_ms, story.end_ms, HOUR_MS):
            rows = []
            for target, latency in story.latency.items():
                for slot in range(hour, min(hour + HOUR_MS, story.end_ms), SEEDED_EVERY_MS):
                    at = slot + chance.randrange(SEEDED_EVERY_MS // 10)
                    if story.down(target, at):
                        why = "connect failed: connection refused"
                        rows.append(CheckRow(target, at, False, None, why))
                    else:
                        took = round(latency.at(at, chance) * distance, 2)
                        rows.append(CheckRow(target, at, True, took, "status 200"))
            await store.commit([], dict(core.log.vector), core.clock.last, checks=rows)
        retention = config.storage.raw_retention_days * DAY_MS
        await store.seal_hours(story.start_ms, story.end_ms)
        await store.prune_checks(int(story.end_ms - retention))
    finally:
        await store.close()


def seed_pair(configs: dict[str, Config], story: Scenario) -> None:
    for name, config in configs.items():
        asyncio.run(seed_node(config, story, imports_history=name == "huginn"))
