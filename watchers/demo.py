"""`ravens demo`: Huginn and Muninn on loopback, watching real local targets.

Four demo targets run in this process: one healthy, one that goes down for
a minute every few minutes, one that answers 503 to Muninn only, and one
slow. Both nodes run as real `ravens run` subprocesses with their own SQLite
files under the demo directory; every agreed transition is printed as it
happens. Ctrl-C (or --duration) stops everything the demo started.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click

from notify.inbox import Inbox, serve_in_thread
from watchers.view_words import view_words

NAMES = ("huginn", "muninn")
OUTAGE_EVERY_S = 240
OUTAGE_LENGTH_S = 60
OUTAGE_FIRST_AFTER_S = 45
DEMO_TOPIC = "ravens-demo"

# status_for(user_agent, seconds since the demo started) -> (status, delay_s)
Behaviour = Callable[[str, float], tuple[int, float]]


def serve_target(behaviour: Behaviour, started: float) -> ThreadingHTTPServer:
    """A local HTTP target on 127.0.0.1, port from the kernel, in a thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, delay = behaviour(self.headers.get("User-Agent", ""), time.time() - started)
            time.sleep(delay)
            body = b"Welcome to the demo" if status == 200 else b"unavailable"
            # A watcher that gave up waiting has hung up: nothing to tell it.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

        def date_time_string(self, timestamp: float | None = None) -> str:
            # A target in a world on a clock of its own (a test's) tells
            # that clock's time in its Date header, as a real one tells ours.
            wall = getattr(behaviour, "wall", None)
            return super().date_time_string(wall() if wall is not None else timestamp)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _healthy(_agent: str, _t: float) -> tuple[int, float]:
    return 200, 0.0


def _outage(_agent: str, t: float) -> tuple[int, float]:
    phase = (t - OUTAGE_FIRST_AFTER_S) % OUTAGE_EVERY_S
    down = t >= OUTAGE_FIRST_AFTER_S and phase < OUTAGE_LENGTH_S
    return (503 if down else 200), 0.0


def _one_sided(agent: str, _t: float) -> tuple[int, float]:
    return (503 if "muninn" in agent else 200), 0.0


def _slow(_agent: str, _t: float) -> tuple[int, float]:
    return 200, 1.5


DEMO_TARGETS: dict[str, Behaviour] = {
    "healthy": _healthy,
    "outage": _outage,
    "one-sided": _one_sided,
    "slow": _slow,
}


def _show_notification(message: dict[str, Any]) -> None:
    tags = ",".join(message.get("tags", []))
    click.echo(
        f"{time.strftime('%H:%M:%S')}  ntfy       {message.get('title')}  "
        f"[priority {message.get('priority', 3)}; {tags}]"
    )


def free_port() -> int:
    """A port the kernel just handed out for 127.0.0.1 (bound to 0, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_configs(
    root: Path, target_ports: dict[str, int], canary_port: int, ntfy_url: str
) -> dict[str, Any]:
    """Both nodes' config files and the shared sync secret (kept if present)."""
    root.mkdir(parents=True, exist_ok=True)
    secret = root / "sync-secret"
    if not secret.exists():
        secret.write_text(secrets.token_hex(32))
        secret.chmod(0o600)
    ports = {name: free_port() for name in NAMES}
    targets = "".join(
        f'\n[[targets]]\nid = "{tid}"\nkind = "http"\nurl = "http://127.0.0.1:{port}/"\n'
        + ('keyword = "Welcome"\n' if tid != "slow" else "max_latency_ms = 5000\n")
        for tid, port in target_ports.items()
    )
    for name in NAMES:
        peer = next(n for n in NAMES if n != name)
        (root / f"{name}.toml").write_text(
            f'[node]\nname = "{name}"\nlisten = "127.0.0.1:{ports[name]}"\n'
            f'data_dir = "{root / name}"\n\n'
            f'[[peers]]\nname = "{peer}"\nurl = "http://127.0.0.1:{ports[peer]}"\n\n'
            f'[sync]\nsecret_file = "{secret}"\ninterval_s = 1\n\n'
            "[defaults]\ninterval_s = 5\nretry_interval_s = 2\ntimeout_s = 4\n\n"
            f'[[canaries]]\nhost = "127.0.0.1"\nport = {canary_port}\n\n'
            f'[ntfy]\nurl = "{ntfy_url}"\ntopic = "{DEMO_TOPIC}"\n' + targets
        )
    return {"ports": ports}


def _targets(port: int) -> dict[str, dict[str, Any]] | None:
    try:
        url = f"http://127.0.0.1:{port}/api/v1/targets"
        with urllib.request.urlopen(url, timeout=2) as resp:
            return {t["id"]: t for t in json.load(resp)["targets"]}
    except OSError:
        return None


def run_demo(root: Path, duration_s: float | None, fresh: bool = False) -> None:
    left = [name for name in NAMES if (root / name / "ravens.sqlite3").exists()]
    if left and fresh:
        for name in NAMES:
            shutil.rmtree(root / name, ignore_errors=True)
            (root / f"{name}.log").unlink(missing_ok=True)
        click.echo(f"ravens demo: started anew in {root} (the last run's data removed)")
    elif left:
        click.echo(
            f"ravens demo: resuming the last run in {root} (its history, incidents and "
            "notifications in flight); `ravens demo --fresh` starts anew"
        )
    started = time.time()
    servers = {tid: serve_target(b, started) for tid, b in DEMO_TARGETS.items()}
    ports = {tid: s.server_address[1] for tid, s in servers.items()}
    inbox = Inbox(on_message=_show_notification)
    cleanup = contextlib.ExitStack()
    ntfy_url = cleanup.enter_context(serve_in_thread(inbox))
    node_ports = write_configs(root, ports, ports["healthy"], ntfy_url)["ports"]
    procs: dict[str, subprocess.Popen[bytes]] = {}
    stop = threading.Event()

    def stopping(*_: object) -> None:
        # The first Ctrl-C (or SIGTERM) stops the demo; more while it
        # stops change nothing.
        stop.set()
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    try:
        for name in NAMES:
            with (root / f"{name}.log").open("ab") as log:
                procs[name] = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "watchers",
                        "run",
                        "--config",
                        str(root / f"{name}.toml"),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    # Apart from the terminal's Ctrl-C: the demo stops them.
                    start_new_session=True,
                )
        click.echo("ravens demo: Huginn and Muninn on loopback")
        for name in NAMES:
            base = f"http://127.0.0.1:{node_ports[name]}"
            click.echo(
                f"  {name:<7} status page {base}/   API {base}/api/v1/targets"
                f"   log: {root / (name + '.log')}"
            )
        click.echo(
            f"  targets: {', '.join(DEMO_TARGETS)}; 'outage' goes down for "
            f"{OUTAGE_LENGTH_S} s every {OUTAGE_EVERY_S} s, first after "
            f"{OUTAGE_FIRST_AFTER_S} s; 'one-sided' fails for muninn only"
        )
        click.echo(
            f"  ntfy inbox {ntfy_url}/{DEMO_TOPIC}/json?poll=1 (notifications marked 'ntfy')"
        )
        click.echo("  Ctrl-C stops everything.\n")
        _watch(node_ports, procs, stop, started, duration_s)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for server in servers.values():
            server.shutdown()
            server.server_close()
        cleanup.close()
        click.echo("\nravens demo: stopped both nodes and the demo targets.")


def _watch(
    node_ports: dict[str, int],
    procs: dict[str, subprocess.Popen[bytes]],
    stop: threading.Event,
    started: float,
    duration_s: float | None,
) -> None:
    """Print each agreed transition once both nodes show it."""
    shown: dict[str, str] = {}
    while not stop.is_set():
        if duration_s is not None and time.time() - started > duration_s:
            return
        for name, proc in procs.items():
            if proc.poll() is not None and not stop.is_set():
                raise click.ClickException(f"{name} exited with {proc.returncode}; see its log")
        views = [_targets(node_ports[n]) for n in NAMES]
        if all(v is not None for v in views):
            first, second = views
            assert first is not None and second is not None
            for tid, item in first.items():
                state = item["state"]
                before = shown.get(tid, "UNKNOWN")
                if second.get(tid, {}).get("state") != state or before == state:
                    continue
                shown[tid] = state
                seen = ", ".join(
                    f"{n}: {view_words(v, item.get('thresholds', {}))}"
                    for n, v in item["views"].items()
                )
                event = f" event {item['event'][:12]}" if item.get("event") else ""
                stamp = time.strftime("%H:%M:%S")
                click.echo(
                    f"{stamp}  {tid:<10} {before} -> {state} [{item['mode']}]{event}  {seen}"
                )
        stop.wait(1.0)
