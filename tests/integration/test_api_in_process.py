"""The read API's contract on a pair in this process (fake clock): each
endpoint, its filters, bad parameters answered with a 4xx naming the
parameter, an outage as history, uptime, incident and metrics, and what a
node says of itself. (Real processes serve it in test_readme_examples.py and test_api_fuzz.py.)"""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

from tests.integration.fakepair import NAMES, Pair, World, run_pair
from tests.integration.notify_world import Switch
from watchers.view_words import view_words

CHANGELOG = Path(__file__).parents[2] / "CHANGELOG.md"
TARGETS = """
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


def world(port: int) -> World:
    return World(TARGETS.format(port=port))


async def get(pair: Pair, name: str, path: str) -> tuple[int, Any]:
    response = await pair.get(name, path)
    kind = response.headers.get("content-type", "")
    return response.status_code, response.json() if "json" in kind else response.text


def test_targets_with_filters_and_the_same_answer_from_either_node(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    async def work(pair: Pair) -> None:
        status, data = await get(pair, "huginn", "/api/v1/targets")
        assert status == 200 and [t["id"] for t in data["targets"]] == ["blog", "db"]
        blog = data["targets"][0]
        assert (blog["name"], blog["tags"], blog["state"]) == (
            "blog.example.com", ["web", "customer"], "UP",
        )  # fmt: skip
        assert set(blog["views"]) == set(NAMES)
        infra = (await get(pair, "huginn", "/api/v1/targets?tag=infra"))[1]["targets"]
        assert [t["id"] for t in infra] == ["db"]
        assert (await get(pair, "muninn", "/api/v1/targets?state=DOWN"))[1]["targets"] == []
        states = {}
        for name in NAMES:
            listed = (await get(pair, name, "/api/v1/targets"))[1]["targets"]
            states[name] = [(t["id"], t["state"]) for t in listed]
        assert states["huginn"] == states["muninn"]

    run_pair(tmp_path, world(site[1]), work, up=("blog", "db"))


BAD = [
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
]  # fmt: skip


def test_bad_parameters_get_a_4xx_naming_them(tmp_path: Path, site: tuple[Switch, int]) -> None:
    async def work(pair: Pair) -> None:
        wrong = []
        for path, status, message in BAD:
            got, body = await get(pair, "huginn", path)
            if got != status or message not in body["error"] or body["status"] != status:
                wrong.append((path[:80], got, body))
        assert wrong == []

    run_pair(tmp_path, world(site[1]), work, up=())


def test_an_outage_as_history_uptime_incident_and_metrics(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    switch, port = site

    async def work(pair: Pair) -> None:
        switch.down = True
        await pair.run_until(pair.both("blog", "DOWN"), "both agree blog is DOWN", 120)
        incident = (await get(pair, "muninn", "/api/v1/targets/blog"))[1]["incident"]
        assert incident["state"] == "DOWN" and incident["ongoing"] is True
        assert incident["noticed_first"] in NAMES
        switch.down = False
        await pair.run_until(pair.both("blog", "UP"), "both agree blog is UP again", 120)

        found = (await get(pair, "huginn", "/api/v1/incidents?target=blog"))[1]
        (down,) = [i for i in found["incidents"] if i["state"] == "DOWN"]
        assert down["end_ms"] > down["start_ms"] and down["ongoing"] is False
        assert down["notification"]["status"] in ("none", "pending", "sent")

        history = (await get(pair, "huginn", "/api/v1/targets/blog/history"))[1]
        assert history["nodes"] == {"huginn": "ok", "muninn": "ok"}
        points = history["points"]
        assert {p["node"] for p in points} == set(NAMES)
        assert any(not p["ok"] for p in points) and any(p["ok"] for p in points)
        assert [p["at_ms"] for p in points] == sorted(p["at_ms"] for p in points)
        page = (await get(pair, "huginn", "/api/v1/targets/blog/history?limit=3"))[1]
        assert page["next_from_ms"] is not None and len(page["points"]) <= 6
        path = "/api/v1/targets/blog/history?resolution=hour"
        hourly = (await get(pair, "huginn", path))[1]
        assert {p["node"] for p in hourly["points"]} == set(NAMES)
        assert all(p["checks"] >= p["ups"] for p in hourly["points"])

        up = (await get(pair, "muninn", "/api/v1/targets/blog/uptime?windows=24h,7d"))[1]
        day = up["windows"]["24h"]
        assert day["incidents"] == 1 and day["down_s"] > 0 and 0 < day["uptime_pct"] < 100
        assert "MAINTENANCE" in up["method"]
        # As of a day before (the README's at= example): nothing was down yet.
        before = up["at_ms"] - 86_400_000
        then = await get(pair, "huginn", f"/api/v1/targets/blog/uptime?windows=30d&at={before}")
        assert then[1]["at_ms"] == before and then[1]["windows"]["30d"]["down_s"] == 0

        status, text = await get(pair, "huginn", "/metrics")
        assert status == 200 and 'ravens_target_up{target="blog"} 1.0' in text
        assert 'ravens_target_state{state="UP",target="db"} 1.0' in text
        # What pushes could not carry is counted per peer (the pull carries it).
        left = r'^ravens_sync_entries_left_to_pull_total\{peer="muninn"\} \d+\.0$'
        assert re.search(left, text, re.M)

    run_pair(tmp_path, world(port), work, up=("blog", "db"))


def test_health_readiness_nodes_and_the_openapi_description(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    async def work(pair: Pair) -> None:
        assert await get(pair, "huginn", "/healthz") == (200, {"node": "huginn", "ok": True})
        status, ready = await get(pair, "muninn", "/api/v1/readyz")
        assert status == 200 and ready["ready"] is True
        nodes = (await get(pair, "huginn", "/api/v1/nodes"))[1]
        assert nodes["voter"] is True and nodes["peers"][0]["name"] == "muninn", nodes
        # The version a node reports is the one installed, and the changelog's newest.
        newest = CHANGELOG.read_text().split("\n## ", 2)[1].split()[0]
        assert nodes["version"] == version("ravens") == newest
        spec = (await get(pair, "huginn", "/api/v1/openapi.json"))[1]
        assert spec["info"]["version"] == newest
        paths = set(spec["paths"])
        assert {"/api/v1/targets", "/api/v1/targets/{target_id}",
                "/api/v1/targets/{target_id}/history", "/api/v1/targets/{target_id}/uptime",
                "/api/v1/incidents", "/api/v1/nodes", "/api/v1/metrics", "/api/v1/readyz",
                "/healthz", "/api/v1/push/{token}"} <= paths  # fmt: skip
        assert not any(p.startswith("/sync") for p in paths), "the peer channel is not public"

    run_pair(tmp_path, world(site[1]), work, up=("blog", "db"))


def test_a_view_confirming_a_streak_says_so_instead_of_contradicting_itself(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    """The first failed check of an UP target: each node's verdict is
    still UP, its last check a 503, one failure of the two it takes."""
    switch, port = site

    async def work(pair: Pair) -> None:
        switch.down = True
        seen: dict[str, Any] = {}

        async def one_failure_each() -> bool:
            blog = (await get(pair, "huginn", "/api/v1/targets"))[1]["targets"][0]
            seen.update(blog)
            return all(v["last_ok"] is False for v in blog["views"].values())

        await pair.run_until(one_failure_each, "a failed check from each node", 30, 0.2)
        assert seen["thresholds"] == {"fail": 2, "success": 2}
        for name, view in seen["views"].items():
            if view["verdict"] == "UP":
                assert view["fails"] == 1, (name, view)
                assert view_words(view, seen["thresholds"]) == (
                    "UP, last check status 503: 1 of 2 failures"
                )
        # Once both agree, the words are plain again.
        await pair.run_until(pair.both("blog", "DOWN"), "both agree it is down", 60)
        blog = (await get(pair, "huginn", "/api/v1/targets"))[1]["targets"][0]
        assert {view_words(v, blog["thresholds"]) for v in blog["views"].values()} == {
            "DOWN (status 503)"
        }

    run_pair(tmp_path, world(port), work, up=("blog", "db"))


def test_view_words_for_every_turn_of_a_streak() -> None:
    thresholds = {"fail": 2, "success": 3}
    up = {"verdict": "UP", "reason": "status 200", "last_ok": True, "fails": 0, "oks": 2}
    assert view_words(up, thresholds) == "UP (status 200)"
    recovering = {"verdict": "DOWN", "reason": "status 200", "last_ok": True, "oks": 2}
    assert view_words(recovering, thresholds) == ("DOWN, last check status 200: 2 of 3 good checks")
    alone = {"verdict": "UP", "reason": "timeout", "last_ok": False, "fails": 3}
    assert view_words(alone, thresholds) == "UP, last check timeout: 3 failures in a row"
    assert view_words({"verdict": "UNKNOWN", "reason": ""}, thresholds) == "UNKNOWN (-)"
