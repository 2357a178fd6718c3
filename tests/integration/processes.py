"""Huginn and Muninn as real `ravens run` subprocesses on loopback, for tests.

Every process a test starts is stopped by the fixture that started it.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import BaseServer
from typing import Any

from watchers.demo import free_port

NAMES = ("huginn", "muninn")
# tests/parallel.py gives each lane a block of ports below the kernel's
# ephemeral range (32768 up): a port handed out by binding to 0 could be
# taken, before the node binds it, by another lane or by any outgoing
# connection. A lane's tests run one at a time, so a block is enough.
PORT_BLOCK = 400


class _LanePorts:
    """This lane's block, taken in turn (wrapping), each checked free."""

    def __init__(self) -> None:
        self._turn: Iterator[int] | None = None

    def take(self) -> int:
        base = os.environ.get("RAVENS_TEST_PORTS")
        if base is None:
            return free_port()
        if self._turn is None:
            self._turn = itertools.cycle(range(int(base), int(base) + PORT_BLOCK))
        for port in itertools.islice(self._turn, PORT_BLOCK):
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
        raise RuntimeError(f"no free port in {base} to {int(base) + PORT_BLOCK - 1}")


_LANE_PORTS = _LanePorts()


def node_port() -> int:
    """A port for a node a test starts: the next free one of this lane's
    block (RAVENS_TEST_PORTS), else whatever the kernel hands out."""
    return _LANE_PORTS.take()


@contextmanager
def listening_socket() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections: a canary that always passes."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 10) -> None:
    """SIGTERM, then SIGKILL if it does not end in time."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Pair:
    root: Path
    targets_toml: str
    canary_port: int
    env: dict[str, str] = field(default_factory=dict)
    # (certificate, key) for 127.0.0.1: both nodes serve and sync over TLS.
    tls: tuple[Path, Path] | None = None
    # More lines for the [defaults] table.
    defaults_toml: str = ""
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # A node given its own sync secret here (a misconfigured pair).
    own_secret: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.secret_file = self.root / "sync-secret"
        self.secret_file.write_text(secrets.token_hex(32))
        self.ports = {name: node_port() for name in NAMES}

    def give_own_secret(self, name: str) -> None:
        path = self.root / f"sync-secret-{name}"
        path.write_text(secrets.token_hex(32))
        self.own_secret[name] = path

    def config(self, name: str) -> Path:
        peer = next(n for n in NAMES if n != name)
        tls = ""
        trust = ""
        if self.tls is not None:
            tls = f'tls_cert_file = "{self.tls[0]}"\ntls_key_file = "{self.tls[1]}"\n'
            trust = f'ca_file = "{self.tls[0]}"\n'
        text = f"""
[node]
name = "{name}"
listen = "127.0.0.1:{self.ports[name]}"
data_dir = "{self.root / name}"
{tls}
[[peers]]
name = "{peer}"
url = "{self.scheme}://127.0.0.1:{self.ports[peer]}"

[sync]
secret_file = "{self.own_secret.get(name, self.secret_file)}"
interval_s = 0.5
{trust}
[defaults]
interval_s = 1
retry_interval_s = 0.5
timeout_s = 2
{self.defaults_toml}
[[canaries]]
host = "127.0.0.1"
port = {self.canary_port}
{self.targets_toml}
"""
        path = self.root / f"{name}.toml"
        path.write_text(text)
        return path

    def start(self, name: str) -> None:
        with (self.root / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "watchers", "run", "--config", str(self.config(name))],
                stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            )  # fmt: skip
        self.wait(lambda: self.api(name, "/healthz") is not None, f"{name} answers", 20)

    def start_all(self) -> None:
        for name in NAMES:
            self.start(name)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()  # not left running after the test
            proc.wait()
            raise AssertionError(f"{name} did not stop within 15 s of signal {sig}") from None
        finally:
            del self.procs[name]

    def stop_all(self) -> None:
        for name in list(self.procs):
            stop(self.procs.pop(name))

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def url(self, name: str, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.ports[name]}{path}"

    def api(self, name: str, path: str = "/api/v1/targets") -> dict[str, Any] | None:
        context = ssl.create_default_context(cafile=str(self.tls[0])) if self.tls else None
        try:
            url = self.url(name, path)
            with urllib.request.urlopen(url, timeout=2, context=context) as resp:
                return dict(json.load(resp))
        except OSError:
            return None

    def state(self, name: str, target: str) -> str | None:
        data = self.api(name)
        if data is None:
            return None
        for item in data["targets"]:
            if item["id"] == target:
                return str(item["state"])
        return None

    def wait(self, condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.2)
        logs = "\n".join(
            (self.root / f"{n}.log").read_text()[-2000:]
            for n in NAMES
            if (self.root / f"{n}.log").exists()
        )
        raise AssertionError(f"timed out waiting for: {what}\n{logs}")

    def checked_since(self, target: str, since_ms: float, names: Sequence[str] = NAMES) -> bool:
        """Whether, on each running node, every node's view of target comes
        from a check made after since_ms (so those checks ran, and sync
        carried each node's to the other)."""
        for name in names:
            data = self.api(name)
            item = next((t for t in (data or {}).get("targets", []) if t["id"] == target), None)
            if item is None:
                return False
            views = [item["views"].get(n) or {} for n in names]
            if any((v.get("checked_ms") or 0) <= since_ms for v in views):
                return False
        return True

    def rounds_pass(self, target: str, rounds: int = 2, names: Sequence[str] = NAMES) -> None:
        """Time passed with work done, the way to wait before asserting that
        something did not happen: rounds of checks of target by every node,
        each seen by every node."""
        for done in range(rounds):
            since = time.time() * 1000

            def seen(since: float = since) -> bool:
                return self.checked_since(target, since, names)

            what = f"round {done + 1} of checks of {target}, seen by {', '.join(names)}"
            self.wait(seen, what, 60)

    def both(self, target: str, state: str) -> Callable[[], bool]:
        return lambda: all(self.state(n, target) == state for n in NAMES)

    def database(self, name: str) -> Path:
        return self.root / name / "ravens.sqlite3"


@contextmanager
def running(pair: Pair, *sites: BaseServer, up: str | None = None) -> Iterator[Pair]:
    """The pair started (and, given a target, seen UP by both); at the end
    stopped, and the test's target servers with it."""
    try:
        pair.start_all()
        if up is not None:
            pair.wait(pair.both(up, "UP"), f"both see {up} UP")
        yield pair
    finally:
        pair.stop_all()
        for site in sites:
            site.shutdown()
            site.server_close()
