"""What the pair serves of a target that slowed down, as real processes:
the new latency in the API, the page, the badge and the metrics of both
nodes. (Outages and a stopped node are judged in test_pair_in_process.)"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.processes import NAMES, Pair, running
from tests.integration.test_pair import Behaviour
from watchers.demo import serve_target

INTERVAL_S = 1.0  # the Pair's [defaults] interval_s
# A check's own time and the moment the test flips the target: not the pair's error.
SLOP_S = 0.3


@pytest.fixture
def switch_pair(tmp_path: Path) -> Iterator[tuple[Behaviour, Pair]]:
    switch = Behaviour()
    server = serve_target(switch, time.time())
    port = server.server_address[1]
    targets = f"""
[[targets]]
id = "flip"
kind = "http"
url = "http://127.0.0.1:{port}/"
"""
    with running(Pair(tmp_path, targets, canary_port=port), server) as pair:
        yield switch, pair


def raw(pair: Pair, name: str, path: str) -> bytes:
    with urllib.request.urlopen(pair.url(name, path), timeout=5) as resp:
        return bytes(resp.read())


def test_a_slowed_target_shows_its_new_latency_everywhere(
    switch_pair: tuple[Behaviour, Pair],
) -> None:
    switch, pair = switch_pair
    pair.wait(pair.both("flip", "UP"), "both see flip UP")
    switch.delay_s = 0.6

    def slow_everywhere() -> bool:
        for name in NAMES:
            data = pair.api(name, "/api/v1/targets/flip")
            if data is None:
                return False
            # Each node shows its own latest check and its peer's.
            if any((v["latency_ms"] or 0) < 600 for v in data["views"].values()):
                return False
            page = raw(pair, name, "/t/flip").decode()
            if not any(f"{ms} ms" in page for ms in range(600, 2000)):
                return False
            badge = raw(pair, name, "/badge/flip/latency.svg").decode()
            if not any(f"{ms} ms" in badge for ms in range(600, 2000)):
                return False
            metrics = raw(pair, name, "/metrics").decode()
            seen = [float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                    if line.startswith("ravens_check_latency_seconds{")
                    and 'target="flip"' in line]  # fmt: skip
            if len(seen) != 2 or min(seen) < 0.6:
                return False
        return True

    # The verdict never moves here (the target stays UP): before the live
    # figures, the old latency stayed on show for good.
    pair.wait(slow_everywhere, "the new latency in the API, page, badge and metrics", 15)
