"""Fixtures shared by the loopback pair tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.integration.notify_world import Switch, make_world
from watchers.demo import serve_target

__all__ = ["make_world", "site", "switched_site"]


@contextmanager
def switched_site() -> Iterator[tuple[Switch, int]]:
    """A real HTTP target on loopback that the test switches down and up;
    the switch and its port."""
    switch = Switch()
    server = serve_target(switch, time.time())
    try:
        yield switch, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def site() -> Iterator[tuple[Switch, int]]:
    with switched_site() as found:
        yield found
