"""What the benchmarks share: processes pinned to a core, their CPU and
memory from the kernel, node configs and percentiles."""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.integration.processes import stop

__all__ = ["stop"]

TICK = os.sysconf("SC_CLK_TCK")
NODE_CORE = 0
OTHER_CORE = 1 if (os.cpu_count() or 1) > 1 else 0


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pinned(argv: Sequence[str], core: int, log: Path, env: dict[str, str] | None = None
           ) -> subprocess.Popen[bytes]:  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(
            ["taskset", "-c", str(core), *argv], stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )  # fmt: skip


def get_json(url: str, timeout: float = 10) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def wait(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (OSError, httpx.HTTPError):
            pass  # not listening yet
        time.sleep(0.5)
    raise TimeoutError(f"benchmark: timed out waiting for {what}")


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    if len(ordered) == 1:
        return ordered[0]
    if q >= 1:
        return ordered[-1]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q * 100) - 1]


def node_config(root: Path, name: str, port: int, targets: str, *, peers: str = "",
                extra: str = "", defaults: str = "interval_s = 60") -> Path:  # fmt: skip
    secret = root / "sync-secret"
    if not secret.exists():
        secret.write_text(secrets.token_hex(32))
    (root / name).mkdir(exist_ok=True)
    path = root / f"{name}.toml"
    path.write_text(f"""
[node]
name = "{name}"
listen = "127.0.0.1:{port}"
data_dir = "{root / name}"
{peers}
[sync]
secret_file = "{secret}"
interval_s = 2

[defaults]
timeout_s = 10
max_concurrent_checks = 500
{defaults}
[[canaries]]
host = "127.0.0.1"
port = {port}
{extra}
{targets}
""")
    return path


def start_node(config: Path, core: int, log: Path) -> subprocess.Popen[bytes]:
    return pinned([sys.executable, "-m", "watchers", "run", "--config", str(config)], core, log)


def http_targets(count: int, port: int, interval_s: float = 60, prefix: str = "t") -> str:
    return "".join(
        f'\n[[targets]]\nid = "{prefix}{i:05d}"\nkind = "http"\n'
        f'url = "http://127.0.0.1:{port}/{i}"\ninterval_s = {interval_s}\n'
        for i in range(count)
    )
