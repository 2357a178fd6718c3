"""What the pair serves, judged against the truth the test itself made: a
target switched off and on at known times, one node stopped through an
outage, a target slowed down. Both nodes must tell the same history."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.processes import NAMES, Pair
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
    pair = Pair(tmp_path, targets, canary_port=port)
    try:
        pair.start_all()
        yield switch, pair
    finally:
        pair.stop_all()
        server.shutdown()
        server.server_close()


def raw(pair: Pair, name: str, path: str) -> bytes:
    with urllib.request.urlopen(pair.url(name, path), timeout=5) as resp:
        return bytes(resp.read())


def same_from_both(pair: Pair, path: str) -> bytes:
    """Wait until both nodes answer path byte for byte alike; that answer."""
    answers: dict[str, bytes] = {}

    def equal() -> bool:
        for name in NAMES:
            answers[name] = raw(pair, name, path)
        return answers["huginn"] == answers["muninn"]

    pair.wait(equal, f"both nodes answer {path} alike", 30)
    return answers["huginn"]


def outage(switch: Behaviour, pair: Pair, hold_s: float, mode: str = "both") -> tuple[int, int]:
    """Take the target down until the pair agrees (and at least hold_s), then
    bring it back; the true start and end in epoch ms."""
    switch.down = True
    start = int(time.time() * 1000)
    if mode == "both":
        pair.wait(pair.both("flip", "DOWN"), "both agree flip is DOWN")
    else:
        pair.wait(lambda: pair.state(mode, "flip") == "DOWN", f"{mode} calls flip DOWN", 90)
    time.sleep(max(0.0, hold_s - (time.time() * 1000 - start) / 1000))
    switch.down = False
    end = int(time.time() * 1000)
    return start, end


def test_five_outages_are_told_truly_and_alike_by_both_nodes(
    switch_pair: tuple[Behaviour, Pair],
) -> None:
    switch, pair = switch_pair
    pair.wait(pair.both("flip", "UP"), "both see flip UP")
    begun = int(time.time() * 1000)
    truth = []
    for _ in range(5):
        truth.append(outage(switch, pair, hold_s=4))
        pair.wait(pair.both("flip", "UP"), "both agree flip is UP again")
        time.sleep(1)
    at = int(time.time() * 1000)

    incidents = json.loads(same_from_both(pair, f"/api/v1/incidents?from={begun}&to={at}"))
    found = incidents["incidents"]
    assert [i["state"] for i in found] == ["DOWN"] * 5, "one incident per outage, no more"
    for incident, (start, end) in zip(found, truth, strict=True):
        assert abs(incident["start_ms"] - start) / 1000 <= INTERVAL_S + SLOP_S, (incident, start)
        assert abs(incident["end_ms"] - end) / 1000 <= INTERVAL_S + SLOP_S, (incident, end)
        told_s = (incident["end_ms"] - incident["start_ms"]) / 1000
        assert abs(told_s - (end - start) / 1000) <= INTERVAL_S + SLOP_S

    uptime = json.loads(same_from_both(pair, f"/api/v1/targets/flip/uptime?windows=24h&at={at}"))
    day = uptime["windows"]["24h"]
    true_down_s = sum(end - start for start, end in truth) / 1000
    assert abs(day["down_s"] - true_down_s) <= 5 * (INTERVAL_S + SLOP_S), (day, true_down_s)
    assert day["incidents"] == 5


def test_a_node_stopped_through_an_outage_learns_it_when_back(
    switch_pair: tuple[Behaviour, Pair],
) -> None:
    switch, pair = switch_pair
    pair.wait(pair.both("flip", "UP"), "both see flip UP")
    begun = int(time.time() * 1000)
    pair.kill("huginn")
    # Muninn decides alone once huginn is silent past the peer timeout.
    start, end = outage(switch, pair, hold_s=10, mode="muninn")
    pair.wait(lambda: pair.state("muninn", "flip") == "UP", "muninn sees flip UP again", 60)
    pair.start("huginn")
    pair.wait(pair.both("flip", "UP"), "huginn back, both see flip UP")
    at = int(time.time() * 1000)

    incidents = json.loads(same_from_both(pair, f"/api/v1/incidents?from={begun}&to={at}"))
    (incident,) = incidents["incidents"]
    assert (incident["state"], incident["mode"]) == ("DOWN", "single_vantage")
    assert abs(incident["start_ms"] - start) / 1000 <= INTERVAL_S + SLOP_S
    assert abs(incident["end_ms"] - end) / 1000 <= INTERVAL_S + SLOP_S
    uptime = json.loads(same_from_both(pair, f"/api/v1/targets/flip/uptime?windows=24h&at={at}"))
    assert uptime["windows"]["24h"]["incidents"] == 1


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
