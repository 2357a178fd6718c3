"""`ravens demo` starts the pair and its targets, shows agreement, and stops everything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_demo_shows_agreement_and_cleans_up(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "watchers", "demo", "--dir", str(tmp_path), "--duration", "25"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    out = done.stdout
    assert "huginn  status page http://127.0.0.1:" in out
    assert "healthy    UNKNOWN -> UP [quorum]" in out
    assert "one-sided" in out and "-> PARTIAL [quorum]" in out
    assert "stopped both nodes and the demo targets" in out
    assert "ntfy inbox http://127.0.0.1:" in out
    assert "ntfy       one-sided" not in out  # a one-sided failure pages nobody
    for name in ("huginn", "muninn"):
        log = (tmp_path / f"{name}.log").read_text()
        assert f"node={name} stopped" in log, log[-2000:]
        assert (tmp_path / name / "ravens.sqlite3").exists()
