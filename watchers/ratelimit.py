"""Token buckets for what anyone may call: each key (a push URL, a client
address) gets a burst, then a steady rate. Bounded in keys, so a flood of
new addresses costs memory no more than a fixed number of buckets."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Buckets:
    burst: int
    per_second: float
    max_keys: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _buckets: OrderedDict[str, tuple[float, float]] = field(default_factory=OrderedDict, init=False)

    def take(self, key: str) -> int | None:
        """Spend one token of key's bucket: None when there was one, else the
        whole seconds until there is (for Retry-After)."""
        now = self.clock()
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.per_second)
        if tokens >= 1:
            self._keep(key, (tokens - 1, now))
            return None
        self._keep(key, (tokens, now))
        return max(1, math.ceil((1 - tokens) / self.per_second))

    def _keep(self, key: str, bucket: tuple[float, float]) -> None:
        self._buckets[key] = bucket
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)  # the least recently seen


@dataclass
class PushLimits:
    """Heartbeats: a push URL may be called 10 times at once, then once per
    6 s; one client address 60 times, then twice a second (a wrong URL
    counts too, so guessing is as slow as using)."""

    clock: Callable[[], float] = time.monotonic
    per_url: Buckets = field(init=False)
    per_address: Buckets = field(init=False)

    def __post_init__(self) -> None:
        self.per_url = Buckets(burst=10, per_second=1 / 6, clock=self.clock)
        self.per_address = Buckets(burst=60, per_second=2.0, clock=self.clock)

    def for_address(self, address: str) -> tuple[int, str] | None:
        """(Retry-After seconds, what was exceeded), or None when within the limit."""
        wait = self.per_address.take(address)
        if wait is None:
            return None
        return wait, "too many push calls from this address: at most 60 at once, then 2 a second"

    def for_target(self, target_id: str) -> tuple[int, str] | None:
        """Keyed by the target a known URL belongs to, never by what was sent."""
        wait = self.per_url.take(target_id)
        if wait is None:
            return None
        return wait, "too many heartbeats on this push URL: at most 10 at once, then 1 every 6 s"
