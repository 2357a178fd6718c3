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
    assert (
        "partition, isolation, path, flap, crash, skew, ntfy, ntfy_cut, clock_step, stall"
        in done.stderr
    )


def test_simulate_over_seeds_sums_the_runs_it_would_make_one_by_one() -> None:
    args = ["simulate", "--days", "0.05", "--targets", "4", "--faults", "partition,crash"]
    done = subprocess.run(
        [*RAVENS, *args, "--seeds", "2-3", "--jobs", "2", "--json"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    swept = json.loads(done.stdout)
    assert [r["seed"] for r in swept["reports"]] == [2, 3]
    for report in swept["reports"]:
        alone = subprocess.run(
            [*RAVENS, *args, "--seed", str(report["seed"]), "--json"],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        single = json.loads(alone.stdout)
        for timing in ("wall_seconds", "checks_per_wall_second"):
            single.pop(timing)
        assert report == single, "a seed run among others reports what it reports alone"
    summary = swept["summary"]
    assert summary["seeds"] == 2
    assert summary["judged"] == sum(r["judged"] for r in swept["reports"])
    assert summary["outages"] == sum(r["outages"] for r in swept["reports"])
    assert summary["uptime_error_s"]["bound"] == 255.0
    assert summary["late_pages"] == sum(r["late_pages"] for r in swept["reports"])
    paged = sum(
        k["outages"] for r in swept["reports"] for k in r["notification_latency_s"].values()
    )
    assert sum(k["outages"] for k in summary["notification_latency_s"].values()) == paged


def test_a_bad_seed_range_is_named() -> None:
    done = subprocess.run(
        [*RAVENS, "simulate", "--seeds", "30-1"],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "'30-1': expected FIRST <= LAST" in done.stderr


def test_an_undelivered_test_notification_says_what_ntfy_said_and_what_to_check() -> None:
    from notify.publisher import Refused, RetryLater
    from watchers.cli import not_delivered
    from watchers.config import NtfySection

    with_token = NtfySection(url="https://ntfy.example.net", topic="ops", token_env="NTFY_TOKEN")
    with_user = NtfySection(url="https://ntfy.example.net", topic="ops", username="ops",
                            password_file="/etc/ravens/pw")  # fmt: skip
    bare = NtfySection(url="https://ntfy.example.net", topic="ops")
    denied = Refused(403, "forbidden (40301)")
    assert not_delivered(denied, with_token) == (
        "ntfy refused the token (403 forbidden (40301)): check [ntfy] token_env"
    )
    assert not_delivered(denied, with_user) == (
        "ntfy refused the user and password (403 forbidden (40301)): "
        "check [ntfy] username and password_file"
    )
    assert not_delivered(Refused(401, "unauthorized (40101)"), bare) == (
        "ntfy wants credentials (401 unauthorized (40101)): set [ntfy] token_file or token_env"
    )
    assert not_delivered(Refused(400, "invalid request: topic invalid (40010)"), bare) == (
        "ntfy refused the message (400 invalid request: topic invalid (40010)): "
        "check [ntfy] topic and url"
    )
    assert not_delivered(RetryLater("limit", after_s=30, paced=True), bare) == (
        "ntfy asks to slow down (429): try again in 30 s"
    )
    assert not_delivered(RetryLater("connect refused"), bare) == (
        "ntfy did not answer (connect refused): check [ntfy] url and the network"
    )


def test_density_draws_more_outages_into_the_same_days_and_is_bounded() -> None:
    def outages(density: str) -> int:
        args = ["simulate", "--days", "0.1", "--targets", "30", "--seed", "5"]
        done = subprocess.run(
            [*RAVENS, *args, "--density", density, "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return int(json.loads(done.stdout)["outages"])

    # A tenth of a day of 30 targets, a third of them failing once a day:
    # one outage; three times as dense, three.
    assert (outages("1"), outages("3")) == (1, 3)
    done = subprocess.run(
        [*RAVENS, "simulate", "--density", "0"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "'--density'" in done.stderr
