"""``make bench``: every figure of the benchmark, printed as a table and as
Markdown ready for BENCHMARKS.md, with the machine, versions and command.

    python -m tests.bench              # the full run (about 35 minutes)
    python -m tests.bench --quick      # a smoke run of every part (about 5 minutes)
    python -m tests.bench --only throughput,storage --write figures.md
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from tests.bench import api, catchup, detection, flood, schedule, storage, throughput
from tests.bench.report import report

FULL = {"seconds": 15, "scale": ((1000, 3), (10_000, 10)), "catchup": 1000, "storage": 100,
        "api": (1000, 200), "detection": (20, 300), "flood": (1000, 200, 120)}  # fmt: skip
QUICK = {"seconds": 3, "scale": ((1000, 1.5),), "catchup": 200, "storage": 5,
         "api": (1000, 30), "detection": (4, 40), "flood": (200, 50, 20)}  # fmt: skip


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())  # fmt: skip
    cores = os.cpu_count()
    tools = [f"Python {platform.python_version()}", f"httpx {version('httpx')}",
             f"h11 {version('h11')}", f"aiosqlite {version('aiosqlite')}",
             f"SQLite {sqlite3.sqlite_version}", ssl.OPENSSL_VERSION.rsplit(" ", 3)[0]]  # fmt: skip
    with contextlib.suppress(PackageNotFoundError):
        tools.append(f"uvloop {version('uvloop')}")
    if shutil.which("nginx"):
        said = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False)
        tools.append("nginx " + said.stderr.strip().split("/")[-1])
    if shutil.which("prometheus-blackbox-exporter"):
        said = subprocess.run(["prometheus-blackbox-exporter", "--version"], capture_output=True,
                              text=True, check=False)  # fmt: skip
        tools.append("blackbox exporter " + (said.stdout + said.stderr).split()[2])
    return f"{model}, {cores} cores; {', '.join(tools)}"


def sections(plan: dict[str, Any], root: Path) -> dict[str, Callable[[], Any]]:
    return {
        "throughput": lambda: throughput.run(root, plan["seconds"], plan["loops"]),
        "schedule": lambda: [schedule.run(root, n, m) for n, m in plan["scale"]],
        "catchup": lambda: catchup.run(root / "catchup", plan["catchup"]),
        "storage": lambda: storage.run(root, plan["storage"]),
        "api": lambda: api.run(root / "api", *plan["api"]),
        "detection": lambda: detection.run(root / "detection", *plan["detection"]),
        "flood": lambda: flood.run(root / "flood", *plan["flood"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of every part")
    parser.add_argument("--only", help="comma list of: throughput, schedule, catchup, storage, "
                                       "api, detection, flood")  # fmt: skip
    parser.add_argument(
        "--seconds",
        type=float,
        help="how long each throughput run lasts (the plan's own otherwise)",
    )
    parser.add_argument("--loops", help="comma list of the event loops part 1 runs ravens on "
                                        "(default: uvloop, if installed, and asyncio)")  # fmt: skip
    parser.add_argument("--write", type=Path, help="also write the Markdown here")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    if shutil.which("taskset") is None:
        sys.exit("bench: taskset (util-linux) is needed to pin processes to cores")
    plan = dict(QUICK if args.quick else FULL)
    if args.seconds is not None:
        plan["seconds"] = args.seconds
    plan["loops"] = tuple(args.loops.split(",")) if args.loops else throughput.LOOPS
    unknown = set(plan["loops"]) - set(throughput.LOOPS)
    if unknown:
        sys.exit(f"bench: --loops: {', '.join(sorted(unknown))} is not one of "
                 f"{', '.join(throughput.LOOPS)} (installed here)")  # fmt: skip
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ravens-bench-") as scratch:
        root = Path(scratch)
        for sub in ("catchup", "api", "detection", "flood"):
            (root / sub).mkdir()
        chosen = sections(plan, root)
        wanted = args.only.split(",") if args.only else list(chosen)
        for name in wanted:
            began = time.monotonic()
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            found[name] = chosen[name]()
            print(f"bench: {name} done in {time.monotonic() - began:.0f} s", file=sys.stderr)
    command = " ".join(["python -m tests.bench", *sys.argv[1:]])
    text = report(found, machine(), command)
    print(text)
    if args.write:
        args.write.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(found, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
