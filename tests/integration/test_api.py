"""The read API's contract against a real pair: each endpoint, its filters,
and bad parameters answered with a 4xx and a message naming the parameter."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from tests.integration.processes import Pair
from tests.integration.test_pair import Behaviour
from watchers.demo import serve_target

CHANGELOG = Path(__file__).parents[2] / "CHANGELOG.md"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Pair, Behaviour]]:
    behaviour = Behaviour()
    site = serve_target(behaviour, time.time())
    port = site.server_address[1]
    targets = f"""
[[targets]]
id = "blog"
name = "blog.example.com"
kind = "http"
url = "http://127.0.0.1:{port}/"
tags = ["web", "customer"]

[[targets]]
id = "db"
kind = "tcp"
host = "127.0.0.1"
port = {port}
tags = ["infra"]
"""
    pair = Pair(tmp_path, targets, canary_port=port)
    try:
        pair.start_all()
        pair.wait(lambda: pair.both("blog", "UP")() and pair.both("db", "UP")(), "all UP")
        yield pair, behaviour
    finally:
        pair.stop_all()
        site.shutdown()
        site.server_close()


def get(pair: Pair, name: str, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(pair.url(name, path), timeout=10) as response:
            raw = response.read()
            kind = response.headers.get("content-type", "")
            return response.status, json.loads(raw) if "json" in kind else raw.decode()
    except urllib.error.HTTPError as exc:
        body = exc.read()
        exc.close()
        return exc.code, json.loads(body)


def test_targets_with_filters_and_the_same_answer_from_either_node(
    world: tuple[Pair, Behaviour],
) -> None:
    pair, _ = world
    status, data = get(pair, "huginn", "/api/v1/targets")
    assert status == 200 and [t["id"] for t in data["targets"]] == ["blog", "db"]
    blog = data["targets"][0]
    assert (blog["name"], blog["tags"], blog["state"]) == ("blog.example.com",
                                                           ["web", "customer"], "UP")  # fmt: skip
    assert set(blog["views"]) == {"huginn", "muninn"}
    assert [t["id"] for t in get(pair, "huginn", "/api/v1/targets?tag=infra")[1]["targets"]] == [
        "db"
    ]
    assert get(pair, "muninn", "/api/v1/targets?state=DOWN")[1]["targets"] == []
    states = {n: [(t["id"], t["state"]) for t in get(pair, n, "/api/v1/targets")[1]["targets"]]
              for n in ("huginn", "muninn")}  # fmt: skip
    assert states["huginn"] == states["muninn"]


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/api/v1/targets?state=SIDEWAYS", 400, "state: Input should be 'UP'"),
        ("/api/v1/targets/nope", 404, "no target with id 'nope'"),
        ("/api/v1/targets/blog/history?from=yesterday", 400,
         "from: expected epoch milliseconds or an ISO 8601 time"),
        ("/api/v1/targets/blog/history?from=2026-11-29T12:00:00", 400,
         "from: expected a time with an offset"),
        ("/api/v1/targets/blog/history?resolution=minute", 400, "resolution: Input should be"),
        ("/api/v1/targets/blog/history?limit=0", 400, "limit: Input should be greater than"),
        ("/api/v1/targets/blog/history?from=2000&to=1000", 400, "from: expected a time before"),
        ("/api/v1/targets/blog/uptime?windows=24h,2w", 400, "unknown window 2w"),
        ("/api/v1/targets/blog/uptime?at=noon", 400, "at: expected epoch milliseconds"),
        # A Unicode digit passes str.isdigit() but not int(); so does no
        # number longer than any time.
        ("/api/v1/incidents?from=%C2%B2", 400, "from: expected epoch milliseconds"),
        ("/api/v1/incidents?from=" + "9" * 5000, 400, "from: expected epoch milliseconds"),
        ("/api/v1/incidents?target=nope", 404, "no target with id 'nope'"),
        ("/api/v1/nothing-here", 404, "no such path"),
    ],
)  # fmt: skip
def test_bad_parameters_get_a_4xx_naming_them(
    world: tuple[Pair, Behaviour], path: str, status: int, message: str
) -> None:
    pair, _ = world
    got, body = get(pair, "huginn", path)
    assert got == status and message in body["error"], body
    assert body["status"] == status


def test_an_outage_as_history_uptime_incident_and_metrics(world: tuple[Pair, Behaviour]) -> None:
    pair, behaviour = world
    behaviour.down = True
    pair.wait(pair.both("blog", "DOWN"), "both agree blog is DOWN")
    _, blog = get(pair, "muninn", "/api/v1/targets/blog")
    incident = blog["incident"]
    assert incident["state"] == "DOWN" and incident["ongoing"] is True
    assert incident["noticed_first"] in ("huginn", "muninn")
    behaviour.down = False
    pair.wait(pair.both("blog", "UP"), "both agree blog is UP again")

    _, found = get(pair, "huginn", "/api/v1/incidents?target=blog")
    (down,) = [i for i in found["incidents"] if i["state"] == "DOWN"]
    assert down["end_ms"] > down["start_ms"] and down["ongoing"] is False
    assert down["notification"]["status"] in ("none", "pending", "sent")

    _, history = get(pair, "huginn", "/api/v1/targets/blog/history")
    assert history["nodes"] == {"huginn": "ok", "muninn": "ok"}
    assert {p["node"] for p in history["points"]} == {"huginn", "muninn"}
    assert any(not p["ok"] for p in history["points"]) and any(p["ok"] for p in history["points"])
    times = [p["at_ms"] for p in history["points"]]
    assert times == sorted(times)
    _, page = get(pair, "huginn", "/api/v1/targets/blog/history?limit=3")
    assert page["next_from_ms"] is not None and len(page["points"]) <= 6
    _, hourly = get(pair, "huginn", "/api/v1/targets/blog/history?resolution=hour")
    assert {p["node"] for p in hourly["points"]} == {"huginn", "muninn"}
    assert all(p["checks"] >= p["ups"] for p in hourly["points"])

    _, up = get(pair, "muninn", "/api/v1/targets/blog/uptime?windows=24h,7d")
    day = up["windows"]["24h"]
    assert day["incidents"] == 1 and day["down_s"] > 0 and 0 < day["uptime_pct"] < 100
    assert "MAINTENANCE" in up["method"]
    # As of a moment before the outage (the README's at= example, here with
    # the time of the test): nothing was down yet.
    before = day_start = up["at_ms"] - 86_400_000
    _, then = get(pair, "huginn", f"/api/v1/targets/blog/uptime?windows=30d&at={before}")
    assert then["at_ms"] == day_start and then["windows"]["30d"]["down_s"] == 0

    status, text = get(pair, "huginn", "/metrics")
    assert status == 200 and 'ravens_target_up{target="blog"} 1.0' in text
    assert 'ravens_target_state{state="UP",target="db"} 1.0' in text
    # What pushes could not carry is counted per peer (the pull carries it).
    assert re.search(
        r'^ravens_sync_entries_left_to_pull_total\{peer="muninn"\} \d+\.0$', text, re.M
    )


def test_health_readiness_nodes_and_the_openapi_description(
    world: tuple[Pair, Behaviour],
) -> None:
    pair, _ = world
    assert get(pair, "huginn", "/healthz") == (200, {"node": "huginn", "ok": True})
    status, ready = get(pair, "muninn", "/api/v1/readyz")
    assert status == 200 and ready["ready"] is True
    # A canary slow under a loaded machine may make a node abstain a moment.
    pair.wait(lambda: get(pair, "huginn", "/api/v1/nodes")[1]["voter"] is True, "huginn votes")
    _, nodes = get(pair, "huginn", "/api/v1/nodes")
    assert nodes["peers"][0]["name"] == "muninn", nodes
    # The version a node reports is the one installed, and the changelog's newest.
    newest = CHANGELOG.read_text().split("\n## ", 2)[1].split()[0]
    assert nodes["version"] == version("ravens") == newest
    _, spec = get(pair, "huginn", "/api/v1/openapi.json")
    assert spec["info"]["version"] == newest
    paths = set(spec["paths"])
    assert {"/api/v1/targets", "/api/v1/targets/{target_id}", "/api/v1/targets/{target_id}/history",
            "/api/v1/targets/{target_id}/uptime", "/api/v1/incidents", "/api/v1/nodes",
            "/api/v1/metrics", "/api/v1/readyz", "/healthz",
            "/api/v1/push/{token}"} <= paths  # fmt: skip
    assert not any(p.startswith("/sync") for p in paths), "the peer channel is not public API"
