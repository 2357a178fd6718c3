"""The admin API against a real pair: auth, targets added on one node and
watched by both, windows, silences, acknowledgements, the audit trail; and
the read token when one is configured."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.processes import Pair
from tests.integration.test_pair import Behaviour
from watchers.demo import serve_target

TOKEN = secrets.token_hex(20)


def call(pair: Pair, name: str, method: str, path: str, body: Any = None,
         token: str | None = TOKEN) -> tuple[int, Any, Any]:  # fmt: skip
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(pair.url(name, path), data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, response.headers
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        headers = exc.headers
        exc.close()
        return exc.code, json.loads(raw) if raw else None, headers


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Pair, Behaviour, int]]:
    behaviour = Behaviour()
    site = serve_target(behaviour, time.time())
    port = site.server_address[1]
    (tmp_path / "admin-token").write_text(TOKEN)
    extra = f"""
[[targets]]
id = "blog"
kind = "http"
url = "http://127.0.0.1:{port}/"

[[api.admins]]
name = "ops@biphrost"
token_file = "{tmp_path / "admin-token"}"

# The targets these tests add live on loopback.
[admin]
allow_private_targets = true
"""
    pair = Pair(tmp_path, extra, canary_port=port)
    try:
        pair.start_all()
        pair.wait(pair.both("blog", "UP"), "both see blog UP")
        yield pair, behaviour, port
    finally:
        pair.stop_all()
        site.shutdown()
        site.server_close()


def test_no_token_or_a_wrong_one_is_refused_with_401(world: tuple[Pair, Behaviour, int]) -> None:
    pair, _, port = world
    body = {"id": "x", "kind": "tcp", "host": "127.0.0.1", "port": port}
    for token, message in ((None, "send Authorization: Bearer"),
                           ("0" * 40, "admin token not accepted")):  # fmt: skip
        status, answer, headers = call(pair, "huginn", "POST", "/api/v1/admin/targets", body,
                                       token=token)  # fmt: skip
        assert status == 401 and message in answer["error"]
        assert headers["www-authenticate"].startswith("Bearer")
    assert call(pair, "huginn", "GET", "/api/v1/admin/audit", token=None)[0] == 401
    assert [t["id"] for t in pair.api("huginn")["targets"]] == ["blog"]


def test_a_target_added_on_one_node_is_watched_by_both_then_removed(
    world: tuple[Pair, Behaviour, int],
) -> None:
    pair, _, port = world
    body = {"id": "db", "kind": "tcp", "host": "127.0.0.1", "port": port, "tags": ["infra"]}
    status, added, _ = call(pair, "huginn", "POST", "/api/v1/admin/targets", body)
    assert status == 201 and added["source"] == "api"
    pair.wait(pair.both("db", "UP"), "both watch the new target")
    sources = {t["id"]: t["source"] for t in pair.api("muninn")["targets"]}
    assert sources == {"blog": "config", "db": "api"}

    changed = {**body, "port": 9}  # nothing listens there
    assert call(pair, "muninn", "PUT", "/api/v1/admin/targets/db", changed)[0] == 200
    pair.wait(pair.both("db", "DOWN"), "both check the changed target")

    assert call(pair, "muninn", "DELETE", "/api/v1/admin/targets/db")[0] == 204
    pair.wait(lambda: all(
        [t["id"] for t in (pair.api(n) or {"targets": []})["targets"]] == ["blog"]
        for n in ("huginn", "muninn")), "both stop watching it")  # fmt: skip
    _, audit, _ = call(pair, "huginn", "GET", "/api/v1/admin/audit")
    actions = [(r["who"], r["action"], r["subject"]) for r in audit["audit"]]
    assert actions == [("ops@biphrost", "remove target", "db"),
                       ("ops@biphrost", "change target", "db"),
                       ("ops@biphrost", "add target", "db")]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/api/v1/admin/targets", {"id": "blog", "kind": "tcp", "host": "h", "port": 1},
         409, "defined in the config file"),
        ("POST", "/api/v1/admin/targets", {"id": "x", "kind": "smtp"}, 400, "unknown kind 'smtp'"),
        ("POST", "/api/v1/admin/targets", {"id": "x", "kind": "tcp", "host": "h", "port": -1},
         400, "port: expected a number of at least 1, got -1"),
        ("POST", "/api/v1/admin/targets",
         {"id": "x", "kind": "push", "token_env": "T", "grace_s": 60}, 400,
         "push targets need a token file"),
        ("DELETE", "/api/v1/admin/targets/blog", None, 409, "defined in the config file"),
        ("DELETE", "/api/v1/admin/targets/nope", None, 404, "no target with id 'nope'"),
        ("POST", "/api/v1/admin/maintenance", {"targets": ["blog"]}, 400,
         "give either start and end"),
        ("POST", "/api/v1/admin/incidents/nope/ack", {"note": "on it"}, 404, "no event 'nope'"),
        ("POST", "/api/v1/admin/targets", [1, 2], 400, "body"),
    ],
)  # fmt: skip
def test_bad_admin_requests_are_refused_naming_what_is_wrong(
    world: tuple[Pair, Behaviour, int], method: str, path: str, body: Any, status: int,
    message: str,
) -> None:  # fmt: skip
    pair, _, _ = world
    got, answer, _ = call(pair, "huginn", method, path, body)
    assert got == status and message in answer["error"], answer


def test_windows_silences_and_acknowledgements_reach_both_nodes(
    world: tuple[Pair, Behaviour, int],
) -> None:
    pair, behaviour, _ = world
    window = {"targets": ["blog"], "start": "2020-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z",
              "reason": "migration"}  # fmt: skip
    status, made, _ = call(pair, "huginn", "POST", "/api/v1/admin/maintenance", window)
    assert status == 201
    pair.wait(pair.both("blog", "MAINTENANCE"), "both see the window", 40)
    listed = call(pair, "muninn", "GET", "/api/v1/admin/maintenance")[1]
    assert made["id"] in listed["api"]
    assert call(pair, "muninn", "DELETE", f"/api/v1/admin/maintenance/{made['id']}")[0] == 204
    pair.wait(pair.both("blog", "UP"), "both leave the window", 40)

    status, _silence, _ = call(pair, "muninn", "POST", "/api/v1/admin/silences", window)
    assert status == 201
    pair.wait(lambda: all(t["silenced"] for n in ("huginn", "muninn")
                          for t in (pair.api(n) or {"targets": [{"silenced": False}]})["targets"]),
              "both silence blog", 40)  # fmt: skip
    behaviour.down = True
    pair.wait(pair.both("blog", "DOWN"), "both agree blog is DOWN")

    def downs() -> list[dict[str, Any]]:
        found = call(pair, "huginn", "GET", "/api/v1/incidents?target=blog", token=None)[1]
        return [i for i in found["incidents"] if i["state"] == "DOWN"]

    # The agreed state is in memory a moment before its interval is written.
    pair.wait(lambda: len(downs()) == 1, "the incident is recorded")
    (down,) = downs()
    assert down["notification"]["status"] == "suppressed"
    status, acked, _ = call(
        pair, "huginn", "POST", f"/api/v1/admin/incidents/{down['event']}/ack", {"note": "on it"}
    )
    assert status == 200 and acked["acknowledged"]["by"] == "ops@biphrost"
    pair.wait(lambda: any(i.get("acknowledged") for i in call(
        pair, "muninn", "GET", "/api/v1/incidents?target=blog", token=None)[1]["incidents"]),
        "the acknowledgement reaches muninn")  # fmt: skip


def test_a_read_token_closes_the_read_api_and_the_page(tmp_path: Path) -> None:
    behaviour = Behaviour()
    site = serve_target(behaviour, time.time())
    read_token = secrets.token_hex(16)
    (tmp_path / "read-token").write_text(read_token)
    extra = f'\n[api]\nread_token_file = "{tmp_path / "read-token"}"\n'
    pair = Pair(tmp_path, extra, canary_port=site.server_address[1])
    try:
        pair.start("huginn")
        for path in ("/api/v1/targets", "/", "/metrics", "/api/v1/nodes", "/api/v1/openapi.json",
                     "/api/v1/docs"):  # fmt: skip
            assert call(pair, "huginn", "GET", path, token=None)[0] == 401, path
            assert call(pair, "huginn", "GET", path, token="wrong")[0] == 401, path
        for path in ("/api/v1/targets", "/api/v1/openapi.json"):
            assert call(pair, "huginn", "GET", path, token=read_token)[0] == 200, path
        bearer = {"Authorization": f"Bearer {read_token}"}
        docs = urllib.request.Request(pair.url("huginn", "/api/v1/docs"), headers=bearer)
        with urllib.request.urlopen(docs, timeout=10) as response:
            assert response.status == 200 and b"swagger" in response.read().lower()
        status = [sys.executable, "-m", "watchers", "status", "--node", pair.url("huginn", "")]
        refused = subprocess.run(status, check=False, capture_output=True, text=True, timeout=30)
        assert refused.returncode != 0 and "pass --token-file" in refused.stderr, refused.stderr
        with_token = [*status, "--token-file", str(tmp_path / "read-token")]
        shown = subprocess.run(with_token, check=False, capture_output=True, text=True, timeout=30)
        assert shown.returncode == 0 and "as seen by huginn" in shown.stdout, shown.stderr
        assert call(pair, "huginn", "GET", "/healthz", token=None)[0] == 200
    finally:
        pair.stop_all()
        site.shutdown()
        site.server_close()
