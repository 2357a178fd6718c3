"""The truth of a simulated run: what each node can reach at each moment."""

from __future__ import annotations

import bisect
import random
from collections import defaultdict
from dataclasses import dataclass

from consensus.events import Event
from consensus.simulation.scenario import NtfyTrouble, Scenario, Window

CHECK_TIMEOUT_MS = 10_000
CANARY_TIMEOUT_MS = 3_000


@dataclass(frozen=True, slots=True)
class Post:
    """One message ntfy (or the webhook receiver) accepted."""

    at_ms: int
    node: str
    event: Event


class World:
    """Answers 'what happens if node N does X at time T' for one scenario."""

    def __init__(self, scenario: Scenario, rng: random.Random) -> None:
        self.scenario = scenario
        self.rng = rng
        self._outages: dict[str, list[Window]] = defaultdict(list)
        for outage in scenario.outages:
            self._outages[outage.target].append(outage)
        for flap in scenario.flaps:
            self._outages[flap.target].extend(flap.down)
        for windows in self._outages.values():
            windows.sort(key=lambda w: w.start_ms)
        self._starts = {t: [w.start_ms for w in ws] for t, ws in self._outages.items()}
        self._paths: dict[tuple[str, str], list[Window]] = defaultdict(list)
        for path in scenario.paths:
            self._paths[(path.node, path.target)].append(path)
        self._isolations: dict[str, list[Window]] = defaultdict(list)
        for isolation in scenario.isolations:
            self._isolations[isolation.node].append(isolation)
        self._slow: dict[str, list[Window]] = defaultdict(list)
        for slow in scenario.slow:
            self._slow[slow.target].append(slow)

    def target_down(self, target: str, t_ms: int) -> bool:
        windows = self._outages.get(target)
        if not windows:
            return False
        i = bisect.bisect_right(self._starts[target], t_ms) - 1
        return i >= 0 and windows[i].holds(t_ms)

    def isolated(self, node: str, t_ms: int) -> bool:
        """The node's own way to the world is gone (canaries fail)."""
        return any(i.holds(t_ms) for i in self._isolations.get(node, ()))

    def uplink_down(self, node: str, t_ms: int) -> bool:
        return any(i.node == node and i.uplink and i.holds(t_ms) for i in self.scenario.isolations)

    def partitioned(self, t_ms: int) -> bool:
        return any(p.holds(t_ms) for p in self.scenario.partitions)

    def link_up(self, a: str, b: str, t_ms: int) -> bool:
        return not (
            self.partitioned(t_ms) or self.uplink_down(a, t_ms) or self.uplink_down(b, t_ms)
        )

    def check(self, node: str, target: str, t_ms: int) -> tuple[bool, str, int]:
        """(ok, reason, latency_ms) of one check."""
        if self.isolated(node, t_ms):
            return False, "network unreachable", 20
        paths = self._paths.get((node, target))
        if paths and any(p.holds(t_ms) for p in paths):
            return False, f"connect timeout after {CHECK_TIMEOUT_MS // 1000} s", CHECK_TIMEOUT_MS
        if self.target_down(target, t_ms):
            if self.rng.random() < 0.5:
                return False, "connection refused", 30
            return False, "status 503", 120
        slow = self._slow.get(target)
        if slow and any(s.holds(t_ms) for s in slow):
            return True, "status 200", self.rng.randrange(2_000, 8_000)
        return True, "status 200", self.rng.randrange(20, 300)

    def canaries(self, node: str, t_ms: int) -> tuple[bool, int]:
        if self.isolated(node, t_ms):
            return False, CANARY_TIMEOUT_MS
        return True, 30

    def stalled(self, node: str, t_ms: int) -> bool:
        """The node's scheduler runs none of its jobs (checks, canaries, pulls)."""
        return any(s.node == node and s.holds(t_ms) for s in self.scenario.stalls)

    def ntfy(self, node: str, t_ms: int) -> NtfyTrouble | None:
        """None when a post would be accepted; else the trouble it meets."""
        if self.isolated(node, t_ms) or any(
            c.node == node and c.holds(t_ms) for c in self.scenario.ntfy_cuts
        ):
            return NtfyTrouble(t_ms, t_ms, None)
        for trouble in self.scenario.ntfy:
            if trouble.holds(t_ms):
                return trouble
        return None
