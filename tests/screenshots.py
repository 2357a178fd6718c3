"""The README's pictures: a pair on loopback with realistic targets and 90
days of history seeded through each node's own storage
(tests/seeded_history.py), photographed in Chromium.

    python -m tests.screenshots --out docs     # or: make screenshots
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tests.integration.browser import CHROMIUM, visit
from tests.integration.processes import NAMES, Pair, listening_socket
from tests.integration.test_pair import Behaviour
from tests.seeded_history import scenario, seed_pair
from watchers.config import load_config
from watchers.demo import serve_target

# Base latency (ms) of each target: what its hours swing around.
TARGETS = {"acme-shop": 85.0, "acme-mail": 14.0, "globex-portal": 240.0,
           "initech-api": 60.0, "biphrost-panel": 45.0}  # fmt: skip


def targets_toml(port: int, one_sided_port: int) -> str:
    return f"""
[[targets]]
id = "acme-shop"
name = "Acme webshop"
kind = "http"
url = "http://127.0.0.1:{port}/"
tags = ["acme"]

[[targets]]
id = "acme-mail"
name = "Acme mail (SMTP)"
kind = "tcp"
host = "127.0.0.1"
port = {port}
tags = ["acme"]

[[targets]]
id = "globex-portal"
name = "Globex customer portal"
kind = "http"
url = "http://127.0.0.1:{port}/portal"
tags = ["globex"]

[[targets]]
id = "initech-api"
name = "Initech API"
kind = "http"
url = "http://127.0.0.1:{one_sided_port}/health"
tags = ["initech"]

[[targets]]
id = "biphrost-panel"
name = "Biphrost control panel"
kind = "http"
url = "http://127.0.0.1:{port}/panel"

[[pages]]
slug = "acme"
title = "Acme Ltd"
tags = ["acme"]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    if CHROMIUM is None:
        raise SystemExit("screenshots: chromium is needed (Debian: apt-get install chromium)")
    healthy = serve_target(Behaviour(), time.time())
    one_sided = Behaviour()
    one_sided.down_for = "muninn"  # a path problem on one side: PARTIAL, nobody paged
    partial = serve_target(one_sided, time.time())
    with tempfile.TemporaryDirectory(prefix="ravens-shots-") as scratch, listening_socket() as c:
        toml = targets_toml(healthy.server_address[1], partial.server_address[1])
        pair = Pair(Path(scratch), toml, canary_port=c)
        story = scenario(int(time.time() * 1000), args.days, TARGETS)
        seed_pair({n: load_config(pair.config(n)) for n in NAMES}, story)
        try:
            pair.start_all()
            pair.wait(pair.both("acme-shop", "UP"), "both see the shop UP", 60)
            pair.wait(lambda: pair.state("huginn", "initech-api") == "PARTIAL", "PARTIAL", 60)
            # Live checks after the seeded past, seen by both nodes.
            pair.rounds_pass("globex-portal", rounds=3)
            args.out.mkdir(parents=True, exist_ok=True)
            shots = {
                "status-page.png": ("/", "1200,1100"),
                "target-page.png": ("/t/globex-portal", "1200,1700"),
                "customer-page.png": ("/s/acme?theme=plain", "1200,900"),
            }
            for file, (path, size) in shots.items():
                page = visit(pair.url("huginn", path), screenshot=args.out / file, size=size)
                if page.console:
                    raise SystemExit(f"screenshots: {path}: console: {page.console}")
                print(f"{args.out / file}: {path}")
        finally:
            pair.stop_all()
            for site in (healthy, partial):
                site.shutdown()
                site.server_close()


if __name__ == "__main__":
    main()
