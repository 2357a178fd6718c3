"""A pair on loopback with an ntfy-compatible inbox and a target a test
switches off and on: the world of the notification tests (the
``make_world`` fixture lives in conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from notify.inbox import Inbox, serve_in_thread
from tests.integration.processes import Pair
from watchers.demo import serve_target

TOKEN = "tk_" + "q" * 29
OTHER_TOKEN = "tk_" + "r" * 29


# The wall clocks of the worlds tests run in process (tests/integration/
# fakepair.py), innermost last.
WORLD_WALL: list[Callable[[], float]] = []


class Switch:
    """What the target answers: up, down, down for one node only (named in
    its User-Agent), or flapping check by check."""

    def __init__(self) -> None:
        self.down = False
        self.down_for: str | None = None
        self.flapping = False
        self.seen: dict[str, int] = {}

    @property
    def wall(self) -> Callable[[], float] | None:
        """The clock its Date header tells: the world's a test runs in
        process on (a fake one), else None: the real one."""
        return WORLD_WALL[-1] if WORLD_WALL else None

    def __call__(self, agent: str, _t: float) -> tuple[int, float]:
        if self.flapping:  # every node sees it alternate, check by check
            self.seen[agent] = self.seen.get(agent, 0) + 1
            return (503 if self.seen[agent] % 2 else 200), 0.0
        blocked = self.down_for is not None and self.down_for in agent
        return (503 if self.down or blocked else 200), 0.0


World = tuple[Pair, Inbox, Switch]


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[Callable[..., World]]:
    stack: list[Callable[[], None]] = []

    def make(
        ntfy: str = "", defaults: str = "", own_secret: str | None = None, extra_toml: str = ""
    ) -> World:
        switch = Switch()
        site = serve_target(switch, time.time())
        stack.append(lambda: (site.shutdown(), site.server_close()))
        port = site.server_address[1]
        inbox = Inbox(token=TOKEN)
        threaded = serve_in_thread(inbox)
        url = threaded.__enter__()
        stack.append(lambda: threaded.__exit__(None, None, None))
        (tmp_path / "ntfy-token").write_text(TOKEN)
        extra = f"""
[ntfy]
url = "{url}"
topic = "biphrost-status"
token_file = "{tmp_path / "ntfy-token"}"
{ntfy}
[[targets]]
id = "blog"
kind = "http"
url = "http://127.0.0.1:{port}/"
tags = ["web"]
{extra_toml}"""
        pair = Pair(tmp_path, extra, canary_port=port, defaults_toml=defaults)
        if own_secret is not None:
            pair.give_own_secret(own_secret)
        stack.append(pair.stop_all)
        pair.start_all()
        return pair, inbox, switch

    yield make
    for undo in reversed(stack):
        undo()


def titles(inbox: Inbox) -> list[str]:
    return [str(m.get("title")) for m in inbox.all()]
