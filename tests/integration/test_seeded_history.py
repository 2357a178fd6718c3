"""Seeded history on a real pair: three days written through each node's
own storage (tests/seeded_history.py, what the README's pictures come from)
are served by both nodes as the scenario says: the outage's incident to the
millisecond, uptime, and each hour's latency percentiles per node."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.processes import NAMES, Pair, listening_socket, running
from tests.integration.test_pair import Behaviour
from tests.seeded_history import DAY_MS, HOUR_MS, Latency, Outage, Scenario, seed_pair
from watchers.config import load_config
from watchers.demo import serve_target

OUTAGE_MS = 40 * 60_000


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[Pair, Scenario]]:
    site = serve_target(Behaviour(), time.time())
    port = site.server_address[1]
    with listening_socket() as canary:
        targets = f"""
[[targets]]
id = "shop"
name = "Acme webshop"
kind = "http"
url = "http://127.0.0.1:{port}/"

[[targets]]
id = "mail"
kind = "tcp"
host = "127.0.0.1"
port = {port}
"""
        pair = Pair(tmp_path, targets, canary_port=canary)
        now = int(time.time() * 1000)
        start = now - 3 * DAY_MS
        down_at = now - 30 * HOUR_MS
        story = Scenario(
            start, now, {"shop": Latency(85.0), "mail": Latency(12.0)},
            (Outage("shop", down_at, down_at + OUTAGE_MS),),
        )  # fmt: skip
        seed_pair({n: load_config(pair.config(n)) for n in NAMES}, story)
        with running(pair, site, up="shop"):
            yield pair, story


def test_both_nodes_serve_the_seeded_past_as_the_scenario_wrote_it(
    seeded: tuple[Pair, Scenario],
) -> None:
    pair, story = seeded
    (outage,) = story.outages
    at = f"at={story.end_ms}"
    for name in NAMES:

        def incidents(name: str = name) -> list[dict[str, object]]:
            found = pair.api(name, f"/api/v1/incidents?target=shop&from={story.start_ms}") or {}
            return [i for i in found.get("incidents", []) if i["state"] == "DOWN"]

        pair.wait(lambda: len(incidents()) == 1, f"{name} serves the seeded outage", 30)
        (incident,) = incidents()
        assert (incident["start_ms"], incident["end_ms"]) == (outage.start_ms, outage.end_ms)
        uptime = pair.api(name, f"/api/v1/targets/shop/uptime?windows=7d&{at}")
        assert uptime is not None
        span = story.end_ms - story.start_ms
        assert uptime["windows"]["7d"]["down_s"] == OUTAGE_MS / 1000
        assert uptime["windows"]["7d"]["uptime_pct"] == pytest.approx(
            100 * (span - OUTAGE_MS) / span, abs=0.001
        )
    hours = pair.api(
        "huginn", f"/api/v1/targets/mail/history?from={story.start_ms}&{at.replace('at', 'to')}"
        "&resolution=hour&limit=100",
    )  # fmt: skip
    assert hours is not None and hours["nodes"] == {"huginn": "ok", "muninn": "ok"}
    for name in NAMES:
        # Hours wholly in the seeded past (the live pair's checks join the last).
        mine = [p for p in hours["points"]
                if p["node"] == name and p["at_ms"] + HOUR_MS <= story.end_ms]  # fmt: skip
        assert len(mine) >= 70, (name, len(mine))
        for point in mine:
            p50, p95 = point["latency_p50_ms"], point["latency_p95_ms"]
            assert 12 * 0.3 < p50 <= p95 < 12 * 5, point
