"""Scenario 9: a target that flaps, seen from both networks: one
"flapping", one "settled", nothing between."""

from __future__ import annotations

import pytest

from tests.network.netns import needs_netns
from tests.network.world import World

pytestmark = needs_netns


@pytest.fixture
def world_defaults() -> str:
    return "flap_calm_s = 6"


def test_a_flapping_target_gives_one_flapping_and_one_settled(world: World) -> None:
    world.target_file.write_text("flap")
    world.wait(world.both("FLAPPING"), "both agree the site is FLAPPING", 90)
    world.checked(3)  # it keeps flapping: nothing more is announced
    assert world.titles() == ["site is flapping"]
    world.target_file.write_text("up")
    world.wait(lambda: len(world.titles()) >= 2, "the settled message", 90)
    world.wait(world.both("UP"), "both agree the site is UP")
    world.wait(world.all_told, "every message known as posted on both nodes")
    assert world.titles() == ["site is flapping", "site settled: UP"]
