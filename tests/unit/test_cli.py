"""The ravens command, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

RAVENS = [sys.executable, "-m", "watchers"]


def test_simulate_prints_one_json_report() -> None:
    done = subprocess.run(
        [*RAVENS, "simulate", "--days", "0.1", "--targets", "5", "--seed", "3",
         "--faults", "partition,crash", "--json"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    report = json.loads(done.stdout)
    assert report["missed"] == 0 and report["false_alarms"] == 0
    assert report["faults"] == ["crash", "partition"]
    assert report["wall_seconds"] > 0


def test_simulate_prints_a_table_by_default() -> None:
    done = subprocess.run(
        [*RAVENS, "simulate", "--days", "0.05", "--targets", "3"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert "detection_latency_s.p95" in done.stdout
    assert "max_copies" in done.stdout


def test_an_unknown_fault_is_named_with_the_choices() -> None:
    done = subprocess.run(
        [*RAVENS, "simulate", "--faults", "partition,meteor"],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "unknown fault 'meteor'" in done.stderr
    assert "partition, isolation, path, flap, crash, skew, ntfy" in done.stderr
