"""The pair's guarantees, checked by the deterministic simulator over many seeds."""

from __future__ import annotations

import pytest

from consensus.simulation import Fault, simulate

ALL = tuple(Fault)
# No partition, crash or isolation: nothing can cut the send window.
CALM = (Fault.PATH, Fault.FLAP, Fault.SKEW, Fault.NTFY)
REQUIRED = {
    "outages", "detected", "missed", "false_alarms", "duplicates", "max_copies",
    "detection_latency_s", "convergence_s", "checks", "sim_seconds",
    "single_vantage_false_alarms",
}  # fmt: skip


def test_same_seed_same_report() -> None:
    first = simulate(0.3, 15, 7, faults=ALL)
    second = simulate(0.3, 15, 7, faults=ALL)
    assert first == second
    assert first.keys() >= REQUIRED
    assert {"p50", "p95", "max"} == first["detection_latency_s"].keys()
    assert simulate(0.3, 15, 8, faults=ALL) != first


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 31))
def test_every_fault_no_miss_no_false_alarm_at_most_one_copy_per_side(seed: int) -> None:
    report = simulate(1.0, 20, seed, faults=ALL)
    assert report["missed"] == 0
    assert report["false_alarms"] == 0
    assert report["max_copies"] <= 2
    assert report["unconverged"] == 0
    assert report["lost_events"] == 0
    assert report["detected"] >= report["must_detect"]
    # What users read: the same history from both nodes, in order, recovered.
    assert report["history_mismatch"] == 0
    assert report["order_violations"] == 0
    assert report["missed_recoveries"] == 0
    assert report["copies_per_node_max"] <= 1
    # One note when flapping starts, per flapping episode at most.
    assert report["notifications"].get("FLAPPING_STARTED", 0) <= report["flap_episodes"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(101, 131))
def test_without_cuts_in_the_send_window_exactly_one_copy(seed: int) -> None:
    report = simulate(1.0, 20, seed, faults=CALM)
    assert report["missed"] == 0
    assert report["false_alarms"] == 0
    assert report["single_vantage_false_alarms"] == 0
    assert report["max_copies"] == 1
    assert report["duplicates"] == 0
    assert report["lost_events"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(201, 206))
def test_three_nodes_by_majority(seed: int) -> None:
    report = simulate(0.5, 15, seed, nodes=3, faults=ALL)
    assert report["missed"] == 0
    assert report["false_alarms"] == 0
    assert report["unconverged"] == 0
    assert report["lost_events"] == 0
