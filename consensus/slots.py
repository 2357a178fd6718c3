"""Where in each interval a node checks a target: the same for the running
node and the simulator, so what the simulator measures is what a pair does."""

from __future__ import annotations

import hashlib


def check_slot(target_id: str, interval: float, turn: int, nodes: int) -> float:
    """Where in each interval (seconds past a multiple of it, on the wall
    clock) a node checks a target: spread over the interval by the target's
    id, and the nodes' turns evenly apart, so the pair looks every
    interval / 2 and an outage is seen sooner."""
    digest = hashlib.sha256(target_id.encode()).digest()
    spread = int.from_bytes(digest[:8], "big") / 2**64
    return ((spread + turn / nodes) % 1.0) * interval
