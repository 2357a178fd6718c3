"""Fixtures shared by the loopback pair tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.notify_world import Switch, make_world
from tests.integration.processes import Pair, listening_socket, running
from tests.integration.test_pair import Behaviour
from watchers.demo import serve_target

__all__ = ["blog_pair", "make_world", "site", "switched_site"]


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


@pytest.fixture
def blog_pair(tmp_path: Path) -> Iterator[tuple[Pair, Behaviour]]:
    """A real pair of processes watching one HTTP target, blog, that the
    test switches; started, and both see blog UP."""
    behaviour = Behaviour()
    site = serve_target(behaviour, time.time())
    with listening_socket() as canary:
        targets = f"""
[[targets]]
id = "blog"
kind = "http"
url = "http://127.0.0.1:{site.server_address[1]}/"
"""
        with running(Pair(tmp_path, targets, canary_port=canary), site, up="blog") as pair:
            yield pair, behaviour
