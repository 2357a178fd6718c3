"""Two nodes as real subprocesses on loopback, the proof of what only real
processes show: kill -9 mid-outage, refused sync input on the real wire,
`ravens status` against a node, and SIGHUP. (Agreement, one-sided failures,
maintenance, sync and /api/v1/nodes run in process: test_pair_in_process.py.)"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.processes import Pair, running
from watchers import wire
from watchers.demo import serve_target


class Behaviour:
    """What the target answers: healthy, down, or down for one node only,
    after delay_s."""

    def __init__(self) -> None:
        self.down = False
        self.down_for: str | None = None  # a node name seen in the User-Agent
        self.delay_s = 0.0

    def __call__(self, agent: str, _t: float) -> tuple[int, float]:
        blocked = self.down_for is not None and self.down_for in agent
        return (503 if self.down or blocked else 200), self.delay_s


@pytest.fixture
def site() -> Iterator[tuple[Behaviour, int]]:
    behaviour = Behaviour()
    server = serve_target(behaviour, time.time())
    yield behaviour, server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def pair(tmp_path: Path, site: tuple[Behaviour, int]) -> Iterator[Pair]:
    _, port = site
    targets = f"""
[[targets]]
id = "blog"
kind = "http"
url = "http://127.0.0.1:{port}/"
keyword = "Welcome"
"""
    with running(Pair(tmp_path, targets, canary_port=port)) as p:
        yield p


def outbox(pair: Pair, name: str) -> list[tuple[str, str]]:
    with sqlite3.connect(pair.database(name)) as db:
        return list(db.execute("SELECT subject, notice FROM outbox ORDER BY created_ms"))


def test_kill_9_during_an_outage_resumes_the_same_agreed_state(
    pair: Pair, site: tuple[Behaviour, int]
) -> None:
    behaviour, _ = site
    pair.wait(pair.both("blog", "UP"), "both see blog UP")
    behaviour.down = True
    pair.wait(pair.both("blog", "DOWN"), "both agree blog is DOWN")
    pair.kill("huginn")
    with sqlite3.connect(pair.database("huginn")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    pair.start("huginn")
    pair.wait(pair.both("blog", "DOWN"), "huginn back with blog DOWN")
    # If huginn was the sender and died before queueing, it queues after its
    # restart settles; either way exactly one row in all.
    pair.wait(lambda: len(outbox(pair, "huginn") + outbox(pair, "muninn")) >= 1, "queued")
    pair.rounds_pass("blog")
    events = outbox(pair, "huginn") + outbox(pair, "muninn")
    assert events == [("blog", "DOWN")], "a restart must not queue the transition again"


def post(pair: Pair, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(pair.url("huginn", path), data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_bad_sync_input_is_refused_and_merges_nothing(pair: Pair) -> None:
    secret = pair.secret_file.read_text()
    entry = {"key": "target/intruder", "value": {"kind": "tcp"}, "hlc": "1.0.muninn",
             "origin": "muninn", "version": 999, "tombstone": False}  # fmt: skip
    good = json.dumps({"entries": [entry]}).encode()
    now = int(time.time() * 1000)

    def signed(body: bytes, node: str = "muninn", key: str = secret) -> dict[str, str]:
        return wire.signed_headers(key, node, now, "POST", "/sync/push", body)

    cases = [
        (good, {"Content-Type": "application/json"}, 401, "missing X-Ravens-Node"),
        (good, signed(good, key="x" * 64), 401, "bad signature"),
        (good, signed(good, node="mallory", key=secret), 403, "not a configured peer"),
        (b"{not json", signed(b"{not json"), 400, "body is not JSON"),
        (b'{"entries": 3}', signed(b'{"entries": 3}'), 400, "entries: expected a list"),
        (good, {**signed(good), "X-Ravens-Time": "\u00b2"}, 401, "expected unix milliseconds"),
        (good, {**signed(good), "X-Ravens-Time": "9" * 5000}, 401, "expected unix milliseconds"),
    ]
    bad_entry = json.dumps({"entries": [{**entry, "origin": "huginn"}]}).encode()
    cases.append((bad_entry, signed(bad_entry), 422, "differs from origin"))
    for body, headers, status, message in cases:
        got, text = post(pair, "/sync/push", body, headers)
        assert (got, message in text) == (status, True), (got, text)
    with sqlite3.connect(pair.database("huginn")) as db:
        assert db.execute("SELECT count(*) FROM log WHERE key = 'target/intruder'").fetchone() == (
            0,
        )
    # The same entry, properly signed, is merged; the same request again is
    # a replay, and one stamped a minute ago is stale: both refused, and the
    # refusal tells the node's time.
    headers = signed(good)
    assert post(pair, "/sync/push", good, headers)[0] == 200
    got, text = post(pair, "/sync/push", good, headers)
    assert (got, "replayed" in text) == (401, True), text
    old = wire.signed_headers(secret, "muninn", now - 60_000, "POST", "/sync/push", good)
    got, text = post(pair, "/sync/push", good, old)
    assert (got, "s off (the window is 30 s)" in text) == (401, True), text


def test_ravens_status_prints_the_agreed_table(pair: Pair) -> None:
    import subprocess
    import sys

    pair.wait(pair.both("blog", "UP"), "both see blog UP")
    done = subprocess.run(
        [sys.executable, "-m", "watchers", "status", "--node", pair.url("muninn", "")],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert "as seen by muninn" in done.stdout
    assert (
        "blog" in done.stdout and "UP" in done.stdout and "huginn: UP (status 200)" in done.stdout
    )


def test_sighup_applies_a_changed_target_list_without_a_restart(
    pair: Pair, site: tuple[Behaviour, int]
) -> None:
    import signal

    _, port = site
    pair.wait(pair.both("blog", "UP"), "both see blog UP")
    pids = {name: proc.pid for name, proc in pair.procs.items()}
    # A broken file is refused and changes nothing.
    for name in pair.procs:
        (pair.root / f"{name}.toml").write_text("[node\nbroken")
        pair.procs[name].send_signal(signal.SIGHUP)
    pair.wait(lambda: "reload node=huginn refused" in (pair.root / "huginn.log").read_text(),
              "the refusal is logged")  # fmt: skip
    assert pair.state("huginn", "blog") == "UP"
    pair.targets_toml = f"""
[[targets]]
id = "shop"
kind = "tcp"
host = "127.0.0.1"
port = {port}
"""
    for name in pair.procs:
        pair.config(name)
        pair.procs[name].send_signal(signal.SIGHUP)
    pair.wait(pair.both("shop", "UP"), "the new target is watched and agreed UP")
    pair.wait(lambda: pair.state("huginn", "blog") is None, "the removed target is gone")
    assert {name: proc.pid for name, proc in pair.procs.items()} == pids
