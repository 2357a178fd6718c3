"""The admin API on a pair in this process (fake clock): auth, targets
added on one node and watched by both, bad requests named, windows,
silences and acknowledgements reaching both nodes, the audit trail.
(The read token, with `ravens status`, runs as a real process in
test_admin.py.)"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from tests.integration.fakepair import NAMES, Pair, World, run_pair
from tests.integration.notify_world import Switch

TOKEN = secrets.token_hex(20)
BLOG = """
[[targets]]
id = "blog"
kind = "http"
url = "http://127.0.0.1:{port}/"
"""
ADMIN = """
[[api.admins]]
name = "ops@biphrost"
token_file = "{token_file}"

# The targets these tests add live on loopback.
[admin]
allow_private_targets = true
"""


Work = Callable[[Pair, Switch, int], Awaitable[None]]


def with_pair(tmp_path: Path, site: tuple[Switch, int], work: Work) -> None:
    switch, port = site
    token_file = tmp_path / "admin-token"
    token_file.write_text(TOKEN)
    world = World(BLOG.format(port=port), extra_toml=ADMIN.format(token_file=token_file))
    run_pair(tmp_path, world, lambda pair: work(pair, switch, port))


async def call(pair: Pair, name: str, method: str, path: str, body: Any = None,
               token: str | None = TOKEN) -> httpx.Response:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return await pair.request(name, method, path, json=body, headers=headers)


def test_no_token_or_a_wrong_one_is_refused_with_401(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    async def work(pair: Pair, _switch: Switch, port: int) -> None:
        body = {"id": "x", "kind": "tcp", "host": "127.0.0.1", "port": port}
        for token, message in ((None, "send Authorization: Bearer"),
                               ("0" * 40, "admin token not accepted")):  # fmt: skip
            got = await call(pair, "huginn", "POST", "/api/v1/admin/targets", body, token=token)
            assert got.status_code == 401 and message in got.json()["error"]
            assert got.headers["www-authenticate"].startswith("Bearer")
        audit = await call(pair, "huginn", "GET", "/api/v1/admin/audit", token=None)
        assert audit.status_code == 401
        assert [t["id"] for t in await pair.targets("huginn")] == ["blog"]

    with_pair(tmp_path, site, work)


def test_a_target_added_on_one_node_is_watched_by_both_then_removed(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    async def work(pair: Pair, _switch: Switch, port: int) -> None:
        body = {"id": "db", "kind": "tcp", "host": "127.0.0.1", "port": port, "tags": ["infra"]}
        added = await call(pair, "huginn", "POST", "/api/v1/admin/targets", body)
        assert added.status_code == 201 and added.json()["source"] == "api"
        await pair.run_until(pair.both("db", "UP"), "both watch the new target", 60)
        sources = {t["id"]: t["source"] for t in await pair.targets("muninn")}
        assert sources == {"blog": "config", "db": "api"}

        changed = {**body, "port": 9}  # nothing listens there
        assert (await call(pair, "muninn", "PUT", "/api/v1/admin/targets/db", changed)).is_success
        await pair.run_until(pair.both("db", "DOWN"), "both check the changed target", 120)

        gone = await call(pair, "muninn", "DELETE", "/api/v1/admin/targets/db")
        assert gone.status_code == 204

        async def both_stopped() -> bool:
            listed = [[t["id"] for t in await pair.targets(n)] for n in NAMES]
            return listed == [["blog"], ["blog"]]

        await pair.run_until(both_stopped, "both stop watching it", 60)
        audit = (await call(pair, "huginn", "GET", "/api/v1/admin/audit")).json()["audit"]
        actions = [(r["who"], r["action"], r["subject"]) for r in audit]
        assert actions == [("ops@biphrost", "remove target", "db"),
                           ("ops@biphrost", "change target", "db"),
                           ("ops@biphrost", "add target", "db")]  # fmt: skip

    with_pair(tmp_path, site, work)


BAD_REQUESTS = [
    ("POST", "/api/v1/admin/targets", {"id": "blog", "kind": "tcp", "host": "h", "port": 1},
     409, "defined in the config file"),
    ("POST", "/api/v1/admin/targets", {"id": "x", "kind": "smtp"}, 400, "unknown kind 'smtp'"),
    ("POST", "/api/v1/admin/targets", {"id": "x", "kind": "tcp", "host": "h", "port": -1},
     400, "port: expected a number of at least 1, got -1"),
    ("POST", "/api/v1/admin/targets",
     {"id": "x", "kind": "push", "token_env": "T", "grace_s": 60}, 400,
     "push targets need a token file"),
    ("POST", "/api/v1/admin/targets",
     {"id": "x", "kind": "tcp", "host": "h", "port": 1, "parent": "nas"}, 400,
     "parent: no target 'nas'"),
    ("POST", "/api/v1/admin/targets",
     {"id": "x", "kind": "tcp", "host": "h", "port": 1, "parent": "x"}, 400,
     "parent: a cycle of parents (x -> x)"),
    ("DELETE", "/api/v1/admin/targets/blog", None, 409, "defined in the config file"),
    ("DELETE", "/api/v1/admin/targets/nope", None, 404, "no target with id 'nope'"),
    ("POST", "/api/v1/admin/maintenance", {"targets": ["blog"]}, 400,
     "give either start and end"),
    ("POST", "/api/v1/admin/incidents/nope/ack", {"note": "on it"}, 404, "no event 'nope'"),
    ("POST", "/api/v1/admin/targets", [1, 2], 400, "body"),
]  # fmt: skip


def test_bad_admin_requests_are_refused_naming_what_is_wrong(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    async def work(pair: Pair, _switch: Switch, _port: int) -> None:
        before = pair.nodes["huginn"].revision()
        for method, path, body, status, message in BAD_REQUESTS:
            got = await call(pair, "huginn", method, path, body)
            assert got.status_code == status and message in got.json()["error"], got.text
        assert pair.nodes["huginn"].revision() == before, "nothing written"

    with_pair(tmp_path, site, work)


def test_windows_silences_and_acknowledgements_reach_both_nodes(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    window = {"targets": ["blog"], "start": "2020-01-01T00:00:00Z",
              "end": "2100-01-01T00:00:00Z", "reason": "migration"}  # fmt: skip

    async def work(pair: Pair, switch: Switch, _port: int) -> None:
        made = await call(pair, "huginn", "POST", "/api/v1/admin/maintenance", window)
        assert made.status_code == 201
        window_id = made.json()["id"]
        await pair.run_until(pair.both("blog", "MAINTENANCE"), "both see the window", 40)
        listed = (await call(pair, "muninn", "GET", "/api/v1/admin/maintenance")).json()
        assert window_id in listed["api"]
        path = f"/api/v1/admin/maintenance/{window_id}"
        assert (await call(pair, "muninn", "DELETE", path)).status_code == 204
        await pair.run_until(pair.both("blog", "UP"), "both leave the window", 40)

        silenced = await call(pair, "muninn", "POST", "/api/v1/admin/silences", window)
        assert silenced.status_code == 201

        async def both_silence() -> bool:
            listed = [t for n in NAMES for t in await pair.targets(n)]
            return all(t["silenced"] for t in listed)

        await pair.run_until(both_silence, "both silence the blog", 40)
        switch.down = True
        await pair.run_until(pair.both("blog", "DOWN"), "both agree it is down", 120)

        async def downs(name: str) -> list[dict[str, Any]]:
            found = (await pair.get(name, "/api/v1/incidents?target=blog")).json()
            return [i for i in found["incidents"] if i["state"] == "DOWN"]

        (down,) = await downs("huginn")
        assert down["notification"]["status"] == "suppressed"
        assert pair.titles() == [], "silenced: nobody paged"
        ack = f"/api/v1/admin/incidents/{down['event']}/ack"
        acked = await call(pair, "huginn", "POST", ack, {"note": "on it"})
        assert acked.status_code == 200 and acked.json()["acknowledged"]["by"] == "ops@biphrost"

        async def muninn_knows() -> bool:
            return any(i.get("acknowledged") for i in await downs("muninn"))

        await pair.run_until(muninn_knows, "the acknowledgement reaches muninn", 30)

    with_pair(tmp_path, site, work)
