"""`make bench` stays runnable: a smoke run of two of its parts prints
their tables and goals (the full run is not part of the tests)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) is not here")
def test_a_quick_bench_of_storage_and_throughput_prints_its_figures(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.bench", "--quick", "--only", "storage,throughput",
         "--seconds", "0.3", "--loops", "asyncio",
         "--write", str(tmp_path / "figures.md")],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "figures.md").read_text()
    assert "### 1. Probe throughput on one core" in text
    loops = ["asyncio"]  # the loop asked for; the node's own loop runs in the pair tests
    kinds = ["http", "tcp", "dns", "icmp", *(["https"] if shutil.which("nginx") else [])]
    for loop in loops:
        for kind in kinds:
            assert re.search(rf"\| ravens \({loop}\) \| {kind} \| [\d,]+ \|", text), (loop, kind)
    if "https" in kinds:
        assert re.search(r"\| TLS alone, blocking \(the floor\) \| https \| [\d,]+ \|", text)
    assert "KB per target-day" in text and "GB for 1,000 targets" in text
    assert "### Goals" in text
