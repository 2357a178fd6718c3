"""Huginn and Muninn as real `ravens run` processes in their own namespaces,
a target and the ntfy test server in theirs, canaries on the router."""

from __future__ import annotations

import json
import secrets
import sqlite3
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.network.netns import CANARY, Topology, address

NODES = ("huginn", "muninn")
NODE_PORT = 8470
TARGET_PORT = 8080
NTFY_PORT = 8090
HOSTILE_PORT = 9001
# Short, so the slow-client test is quick.
READ_TIMEOUT_S = 3
TOPIC = "biphrost-status"


@dataclass
class World:
    net: Topology
    root: Path
    secret: str = field(default_factory=lambda: secrets.token_hex(32))
    extra: str = ""
    defaults: str = ""

    def __post_init__(self) -> None:
        (self.root / "sync-secret").write_text(self.secret)
        self.target_file = self.root / "target-state"
        self.target_file.write_text("up")
        self.ntfy_faults = self.root / "ntfy-faults"
        self.procs: dict[str, Any] = {}

    def start_services(self) -> None:
        serve = [sys.executable, "-m", "tests.network.serve"]
        self.net.start("world", [*serve, "canary", "--bind", CANARY, "--port", "53"],
                       str(self.root / "canary.log"))  # fmt: skip
        self.net.start("targets", [*serve, "target", "--bind", address("targets"),
                                   "--port", str(TARGET_PORT), "--state", str(self.target_file)],
                       str(self.root / "target.log"))  # fmt: skip
        self.net.start("ntfy", [*serve, "ntfy", "--bind", address("ntfy"), "--port",
                                str(NTFY_PORT), "--faults", str(self.ntfy_faults)],
                       str(self.root / "ntfy.log"))  # fmt: skip
        self.wait(lambda: self.get(f"http://{address('ntfy')}:{NTFY_PORT}/{TOPIC}/json?poll=1")
                  is not None, "the ntfy test server")  # fmt: skip

    def start_all(self) -> None:
        """Services, then both nodes, then wait until both see the site UP."""
        self.start_services()
        for name in NODES:
            self.start(name)
        self.wait(self.both("UP"), "both see the site UP")

    def config(self, name: str) -> Path:
        peer = next(n for n in NODES if n != name)
        text = f"""
[node]
name = "{name}"
listen = "{address(name)}:{NODE_PORT}"
data_dir = "{self.root / name}"
read_timeout_s = {READ_TIMEOUT_S}

[[peers]]
name = "{peer}"
url = "http://{address(peer)}:{NODE_PORT}"

[sync]
secret_file = "{self.root / "sync-secret"}"
interval_s = 1

[defaults]
interval_s = 2
retry_interval_s = 1
timeout_s = 2
{self.defaults}

[[canaries]]
host = "{CANARY}"
port = 53

[ntfy]
url = "http://{address("ntfy")}:{NTFY_PORT}"
topic = "{TOPIC}"
failover_s = 10
timeout_s = 4

[[targets]]
id = "site"
kind = "http"
url = "http://{address("targets")}:{TARGET_PORT}/"
{self.extra}
"""
        path = self.root / f"{name}.toml"
        path.write_text(text)
        return path

    def start(self, name: str, env: dict[str, str] | None = None) -> None:
        argv = [sys.executable, "-m", "watchers", "run", "--config", str(self.config(name))]
        self.procs[name] = self.net.start(name, argv, str(self.root / f"{name}.log"), env)
        self.wait(lambda: self.api(name) is not None, f"{name} answers", 30)

    def start_hostile(self) -> None:
        serve = [sys.executable, "-m", "tests.network.serve"]
        argv = [*serve, "hostile", "--bind", address("targets"), "--port", str(HOSTILE_PORT)]
        self.net.start("targets", argv, str(self.root / "hostile.log"))

    def rss_mb(self, name: str) -> float:
        """The node's resident memory, from the kernel."""
        status = Path(f"/proc/{self.procs[name].pid}/status").read_text()
        kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(kb) / 1024

    def kill(self, name: str, sig: int = 9) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        proc.wait(timeout=15)

    # -- reading -------------------------------------------------------------

    def get(self, url: str) -> Any:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                raw = response.read().decode()
        except (OSError, urllib.error.URLError):
            return None
        if url.endswith("poll=1"):
            return [json.loads(line) for line in raw.splitlines() if line.strip()]
        return json.loads(raw)

    def query(self, name: str, sql: str) -> list[Any]:
        """Rows from a node's database, read beside the running node (WAL)."""
        db = sqlite3.connect(self.root / name / "ravens.sqlite3", timeout=5)
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()

    def logs_equal(self) -> bool:
        """Both logs hold the same entries (health heartbeats aside); False
        while a node's database cannot be read (a node restarting)."""
        dumps = []
        for name in NODES:
            try:
                rows = self.query(name, "SELECT key, value, wall_ms, logical, origin FROM log "
                                        "WHERE key NOT LIKE 'health/%' ORDER BY key")  # fmt: skip
            except sqlite3.Error:
                return False
            # Values compare as JSON: the wire sorts keys, the origin may not.
            dumps.append([(k, json.loads(v), w, lg, o) for k, v, w, lg, o in rows])
        return dumps[0] == dumps[1]

    def api(self, name: str, path: str = "/api/v1/targets") -> Any:
        return self.get(f"http://{address(name)}:{NODE_PORT}{path}")

    def state(self, name: str, target: str = "site") -> str | None:
        data = self.api(name)
        if data is None:
            return None
        return next((t["state"] for t in data["targets"] if t["id"] == target), None)

    def both(self, state: str, target: str = "site") -> Callable[[], bool]:
        return lambda: all(self.state(n, target) == state for n in NODES)

    def titles(self) -> list[str]:
        found = self.get(f"http://{address('ntfy')}:{NTFY_PORT}/{TOPIC}/json?poll=1") or []
        return [str(m.get("title")) for m in found]

    def site_messages(self) -> list[dict[str, Any]]:
        found = self.get(f"http://{address('ntfy')}:{NTFY_PORT}/{TOPIC}/json?poll=1") or []
        return [m for m in found if str(m.get("title", "")).startswith("site ")]

    def sent_ids(self, name: str) -> set[str]:
        """The events this node's log knows were posted."""
        try:
            rows = self.query(name, "SELECT key FROM log WHERE key LIKE 'sent/%'")
        except sqlite3.Error:
            return set()
        return {str(key).removeprefix("sent/") for (key,) in rows}

    def checks_since(self, name: str, since_ms: int, target: str = "site") -> int:
        """How many checks of target the node has stored since since_ms."""
        try:
            rows = self.query(name, f"SELECT count(*) FROM checks WHERE target = '{target}' "
                                    f"AND at_ms > {since_ms}")  # fmt: skip
        except sqlite3.Error:
            return 0
        return int(rows[0][0])

    def checked(self, count: int, nodes: tuple[str, ...] = NODES) -> None:
        """Wait until each node has checked the site count more times: time
        passed with the node at work, which is what an absence is tested on."""
        since = int(time.time() * 1000)
        self.wait(lambda: all(self.checks_since(n, since) >= count for n in nodes),
                  f"{count} more checks by {', '.join(nodes)}", 30 + count * 10)  # fmt: skip

    def all_told(self, nodes: tuple[str, ...] = NODES) -> bool:
        """Every message on ntfy is known as posted in each node's log, so
        no node has a copy still to send."""
        found = self.get(f"http://{address('ntfy')}:{NTFY_PORT}/{TOPIC}/json?poll=1") or []
        ids = {str(m.get("sequence_id")) for m in found}
        return all(ids <= self.sent_ids(n) for n in nodes)

    def outage_is_paged_once(self) -> None:
        """A real outage of the site now: both nodes agree DOWN, then UP;
        ntfy gets one DOWN and one UP, and both nodes' logs know both were
        posted (so no node has a copy still to send)."""
        before = len(self.site_messages())
        self.target_file.write_text("down")
        self.wait(self.both("DOWN"), "both agree the site is DOWN", 90)
        self.target_file.write_text("up")
        self.wait(self.both("UP"), "both agree the site is UP again", 90)

        def settled() -> bool:
            new = self.site_messages()[before:]
            ids = {str(m.get("sequence_id")) for m in new}
            return len(new) >= 2 and all(ids <= self.sent_ids(n) for n in NODES)

        self.wait(settled, "one DOWN and one UP, known as posted on both nodes", 120)
        titles = [m["title"] for m in self.site_messages()[before:]]
        assert titles == ["site is DOWN", "site is UP"], titles

    def refused_posts(self) -> int:
        """Publish requests the ntfy test server refused with 429 on cue."""
        return (self.root / "ntfy.log").read_text().count('{"refusing": 429}')

    def publishers(self) -> dict[str, list[str]]:
        """Per sequence id, the node that published each stored copy, from
        the ntfy test server's log of whose address posted it."""
        names = {address(n): n for n in NODES}
        found: dict[str, list[str]] = {}
        for line in (self.root / "ntfy.log").read_text().splitlines():
            if line.startswith('{"published"'):
                seen = json.loads(line)
                found.setdefault(seen["published"], []).append(
                    names.get(seen["from"], seen["from"])
                )
        return found

    def wait(self, condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.5)
        logs = "\n".join(
            f"--- {log.name}\n" + log.read_text()[-3000:] for log in sorted(self.root.glob("*.log"))
        )
        raise AssertionError(f"timed out waiting for: {what}\n{logs}")
