"""The world every fault scenario starts from: both nodes up, the site UP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.network.netns import topology
from tests.network.world import World


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The network scenarios share one address plan: they run one after
    another, on one worker, while the other tests run beside them."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.xdist_group("netns"))


@pytest.fixture
def world_extra() -> str:
    """More of the nodes' config (TOML); a test module overrides it."""
    return ""


@pytest.fixture
def world_defaults() -> str:
    """More of the nodes' [defaults] (TOML); a test module overrides it."""
    return ""


@pytest.fixture
def world(tmp_path: Path, world_extra: str, world_defaults: str) -> Iterator[World]:
    with topology() as net:
        world = World(net, tmp_path, extra=world_extra, defaults=world_defaults)
        world.start_all()
        yield world
