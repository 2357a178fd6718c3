"""The soak: both nodes on their own networks watch many targets while
outages come and go at random and faults are injected throughout; at the
end it prints what was detected, missed, falsely alarmed and doubled, how
fast, how soon the logs converged after each heal, and the nodes' memory.

    python -m tests.network.soak --minutes 30 --targets 300   (as root)

Seeded: the same arguments give the same outages and faults.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from tests.network.netns import address, topology, why_not
from tests.network.world import NODES, NTFY_PORT, TARGET_PORT, TOPIC, World

FAULT_S = 60.0  # each fault lasts this long
QUIET_S = 45.0  # between faults
WARMUP_S = 20.0
SETTLE_S = 90.0  # after the last outage: notifications drain, logs converge
# How long after a heal the logs may take to be equal before we say "never".
CONVERGE_LIMIT_S = 120.0


@dataclass
class Outage:
    target: str
    start: float
    end: float


@dataclass
class Fault:
    kind: str
    start: float
    end: float
    node: str = "huginn"


@dataclass
class Plan:
    outages: list[Outage]
    faults: list[Fault]


KINDS = ("partition", "uplink", "path", "ntfy", "kill")


def plan(
    targets: int,
    seconds: float,
    seed: int,
    kinds: tuple[str, ...] = KINDS,
    quiet_s: float = QUIET_S,
) -> Plan:
    """Outages of 40 to 120 s, about one every 8 s (one target at a time,
    120 s apart on the same target, so none is flapping); faults in turn."""
    rng = random.Random(seed)
    outages: list[Outage] = []
    free_at = dict.fromkeys((f"t{i:03d}" for i in range(targets)), 0.0)
    t = WARMUP_S
    while True:
        t += rng.expovariate(1 / 8)
        length = rng.uniform(40, 120)
        if t + length > seconds:
            break
        target = rng.choice([name for name, at in free_at.items() if at <= t])
        outages.append(Outage(target, t, t + length))
        free_at[target] = t + length + 120
    faults: list[Fault] = []
    t = WARMUP_S + quiet_s
    while t + FAULT_S <= seconds:
        kind = kinds[len(faults) % len(kinds)]
        end = t + (5.0 if kind == "kill" else FAULT_S)
        faults.append(Fault(kind, t, end, rng.choice(NODES)))
        t = end + quiet_s
    return Plan(outages, faults)


def targets_toml(count: int) -> str:
    url = f"http://{address('targets')}:{TARGET_PORT}"
    return "".join(
        f'\n[[targets]]\nid = "t{i:03d}"\nkind = "http"\nurl = "{url}/t/{i:03d}"\ninterval_s = 5\n'
        for i in range(count)
    )


@dataclass
class Soak:
    world: World
    plan: Plan
    began: float = field(default_factory=time.monotonic)
    began_wall: float = field(default_factory=time.time)
    heals: list[tuple[str, float]] = field(default_factory=list)
    converged: list[tuple[str, float | None]] = field(default_factory=list)
    rss_start: dict[str, float] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)

    def at(self) -> float:
        return time.monotonic() - self.began

    def set_down(self, down: set[str]) -> None:
        if down == self.down:
            return
        self.down = set(down)
        body = json.dumps({"down": sorted(f"/t/{t[1:]}" for t in down)})
        scratch = self.world.target_file.with_suffix(".new")
        scratch.write_text(body)
        scratch.replace(self.world.target_file)  # atomic: the server never reads half

    def fault(self, fault: Fault, on: bool) -> None:
        net, node = self.world.net, fault.node
        if fault.kind == "partition":
            (net.cut if on else net.mend)("huginn", "muninn")
        elif fault.kind == "uplink":
            net.link(node, up=not on)
        elif fault.kind == "path":
            (net.cut if on else net.mend)(node, "targets")
        elif fault.kind == "ntfy":
            for name in NODES:
                (net.cut if on else net.mend)(name, "ntfy")
        elif fault.kind == "kill":
            if on:
                self.world.kill(node)
            else:
                self.world.start(node)
        if not on:
            self.heals.append((f"{fault.kind}@{fault.start:.0f}s", self.at()))

    def run(self, seconds: float, say: Callable[[str], None]) -> None:
        self.rss_start = {n: self.world.rss_mb(n) for n in NODES}
        faults = {id(f): f for f in self.plan.faults}
        active: set[int] = set()
        while (now := self.at()) < seconds:
            self.set_down({o.target for o in self.plan.outages if o.start <= now < o.end})
            for key, f in faults.items():
                if key not in active and f.start <= now < f.end:
                    say(f"{now:6.0f}s  {f.kind} on {f.node}")
                    self.fault(f, True)
                    active.add(key)
                elif key in active and now >= f.end:
                    say(f"{now:6.0f}s  {f.kind} healed")
                    self.fault(f, False)
                    active.discard(key)
            self.check_convergence()
            time.sleep(0.5)
        for key in sorted(active):
            self.fault(faults[key], False)
        self.set_down(set())
        # Settle: the last notifications drain and every heal converges.
        ended = self.at()
        while self.at() < ended + SETTLE_S:
            self.check_convergence()
            if self.at() > ended + 30 and len(self.converged) == len(self.heals):
                break
            time.sleep(0.5)

    def check_convergence(self) -> None:
        """Time from each heal until both logs are equal (health aside)."""
        waiting = [(what, at) for what, at in self.heals if what not in dict(self.converged)]
        if not waiting:
            return
        equal = self.world.logs_equal()
        for what, at in waiting:
            if equal:
                self.converged.append((what, self.at() - at))
            elif self.at() - at > CONVERGE_LIMIT_S:
                self.converged.append((what, None))


def figures(soak: Soak, seconds: float) -> dict[str, Any]:
    """Outages, detected, missed, false alarms, duplicates, latencies."""
    world = soak.world
    messages = world.get(f"http://{address('ntfy')}:{NTFY_PORT}/{TOPIC}/json?poll=1") or []
    wall = soak.began_wall
    downs: dict[str, list[float]] = {}
    copies: dict[str, int] = {}
    for m in messages:
        copies[m["sequence_id"]] = copies.get(m["sequence_id"], 0) + 1
        title = str(m.get("title", ""))
        if title.endswith(" is DOWN"):
            downs.setdefault(title.split(maxsplit=1)[0], []).append(m["time"] - wall)
    latencies: list[float] = []
    missed = []
    twice = 0  # one DOWN from each side of a partition: two events, two sequence ids
    matched: set[tuple[str, float]] = set()
    for outage in soak.plan.outages:
        hits = [t for t in downs.get(outage.target, []) if outage.start - 1 <= t <= outage.end + 60]
        if hits:
            latencies.append(max(0.0, min(hits) - outage.start))
            matched.update((outage.target, t) for t in hits)
            twice += len(hits) > 1
        else:
            missed.append(outage)
    false_alarms = [(target, t) for target, ts in downs.items() for t in ts
                    if (target, t) not in matched]  # fmt: skip
    partitions = [f for f in soak.plan.faults if f.kind in ("partition", "uplink")]
    doubled = [s for s, n in copies.items() if n > 1]
    in_partition = 0
    for m in messages:
        if m["sequence_id"] in doubled:
            t = m["time"] - wall
            if any(f.start - 5 <= t <= f.end + 60 for f in partitions):
                in_partition += 1
    quantiles = (
        statistics.quantiles(latencies, n=20, method="inclusive")
        if len(latencies) >= 2
        else [0.0] * 19
    )
    converge = [c for _, c in soak.converged if c is not None]
    return {
        "minutes": round(seconds / 60, 1),
        "outages": len(soak.plan.outages),
        "detected": len(soak.plan.outages) - len(missed),
        "missed": len(missed),
        "false_alarms": len(false_alarms),
        "duplicate_messages": sum(copies[s] - 1 for s in doubled),
        "outages_with_two_downs": twice,
        "of_which_partition_copies": min(in_partition, sum(copies[s] - 1 for s in doubled)),
        "detect_p50_s": round(statistics.median(latencies), 1) if latencies else None,
        "detect_p95_s": round(quantiles[18], 1),
        "detect_max_s": round(max(latencies), 1) if latencies else None,
        "faults": [f"{f.kind}/{f.node}" for f in soak.plan.faults],
        "converged_s": [(w, None if c is None else round(c, 1)) for w, c in soak.converged],
        "converge_max_s": round(max(converge), 1) if converge else None,
        "never_converged": sum(1 for _, c in soak.converged if c is None),
        "rss_start_mb": {n: round(v) for n, v in soak.rss_start.items()},
        "rss_end_mb": {n: round(world.rss_mb(n)) for n in NODES},
        "messages": len(messages),
        "missed_list": [(o.target, round(o.start), round(o.end)) for o in missed],
        "false_alarm_list": [(t, round(at)) for t, at in false_alarms],
    }


def soak(
    minutes: float,
    targets: int,
    seed: int,
    root: Path,
    say: Callable[[str], None] = print,
    kinds: tuple[str, ...] = KINDS,
    quiet_s: float = QUIET_S,
) -> dict[str, Any]:
    seconds = minutes * 60
    the_plan = plan(targets, seconds, seed, kinds, quiet_s)
    with topology() as net:
        world = World(net, root, extra=targets_toml(targets), defaults="")
        world.start_services()
        world.target_file.write_text(json.dumps({"down": []}))
        for name in NODES:
            world.start(name)
        world.wait(lambda: all(world.state(n, f"t{targets - 1:03d}") == "UP" for n in NODES),
                   "both see every target UP", 120)  # fmt: skip
        run = Soak(world, the_plan)
        say(f"soak: {targets} targets, {minutes:g} min, {len(the_plan.outages)} outages, "
            f"{len(the_plan.faults)} faults, seed {seed}")  # fmt: skip
        run.run(seconds, say)
        found = figures(run, seconds)
        found["targets"] = targets
        return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--targets", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    reason = why_not()
    if reason is not None:
        sys.exit(f"soak: cannot run here: {reason}")
    with TemporaryDirectory(prefix="ravens-soak-") as root:
        found = soak(args.minutes, args.targets, args.seed, Path(root))
    width = max(len(k) for k in found)
    for key, value in found.items():
        print(f"{key:<{width}}  {value}")
    if args.json is not None:
        args.json.write_text(json.dumps(found, indent=2) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
