"""The world every fault scenario starts from: both nodes up, the site UP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.network.netns import topology
from tests.network.world import World


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
