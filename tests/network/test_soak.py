"""A short soak (`make soak` runs the long one): 60 targets for two and a
half minutes, outages at random, a node killed and a partition. Nothing
missed, no false alarm, no copy outside the partition, logs converge."""

from __future__ import annotations

from pathlib import Path

from tests.network.netns import needs_netns
from tests.network.soak import soak

pytestmark = needs_netns


def test_a_short_soak_misses_nothing_and_alarms_falsely_never(tmp_path: Path) -> None:
    found = soak(2.5, 60, seed=1, root=tmp_path, kinds=("kill", "partition"), quiet_s=30)
    print(found)
    assert found["outages"] >= 8 and len(found["faults"]) == 2
    assert found["missed"] == 0, found["missed_list"]
    assert found["false_alarms"] == 0, found["false_alarm_list"]
    assert found["duplicate_messages"] == found["of_which_partition_copies"]
    assert found["outages_with_two_downs"] <= found["outages"] // 2, "copies only from partitions"
    assert found["never_converged"] == 0, found["converged_s"]
