"""The pair posts each agreed transition once to the ntfy-compatible inbox,
and keeps what it could not post until ntfy takes it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from notify.inbox import Inbox, serve_in_thread
from tests.integration.processes import Pair
from watchers.demo import serve_target

TOKEN = "tk_" + "q" * 29


class Switch:
    def __init__(self) -> None:
        self.down = False

    def __call__(self, _agent: str, _t: float) -> tuple[int, float]:
        return (503 if self.down else 200), 0.0


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Pair, Inbox, Switch]]:
    switch = Switch()
    site = serve_target(switch, time.time())
    port = site.server_address[1]
    inbox = Inbox(token=TOKEN)
    with serve_in_thread(inbox) as url:
        (tmp_path / "ntfy-token").write_text(TOKEN)
        extra = f"""
[ntfy]
url = "{url}"
topic = "biphrost-status"
token_file = "{tmp_path / "ntfy-token"}"

[[targets]]
id = "blog"
kind = "http"
url = "http://127.0.0.1:{port}/"
"""
        pair = Pair(tmp_path, extra, canary_port=port)
        try:
            pair.start_all()
            yield pair, inbox, switch
        finally:
            pair.stop_all()
            site.shutdown()
            site.server_close()


def titles(inbox: Inbox) -> list[str]:
    return [str(m.get("title")) for m in inbox.all()]


def test_one_notification_per_transition(world: tuple[Pair, Inbox, Switch]) -> None:
    pair, inbox, switch = world
    pair.wait(pair.both("blog", "UP"), "both see blog UP")
    switch.down = True
    pair.wait(lambda: titles(inbox) == ["blog is DOWN"], "one DOWN notification")
    switch.down = False
    pair.wait(lambda: len(titles(inbox)) == 2, "the recovery notification")
    time.sleep(2)  # room for a second copy, if one were coming
    assert titles(inbox) == ["blog is DOWN", "blog is UP"]
    down, up = inbox.all()
    assert down["priority"] == 5 and up["priority"] == 3
    assert down["sequence_id"] != up["sequence_id"]


def test_ntfy_failing_during_an_outage_delays_but_loses_nothing(
    world: tuple[Pair, Inbox, Switch],
) -> None:
    pair, inbox, switch = world
    pair.wait(pair.both("blog", "UP"), "both see blog UP")
    inbox.fail_status = 503
    switch.down = True
    pair.wait(pair.both("blog", "DOWN"), "both agree blog is DOWN")
    switch.down = False
    pair.wait(pair.both("blog", "UP"), "both agree blog is UP again")
    assert inbox.all() == []
    inbox.fail_status = None
    pair.wait(lambda: len(titles(inbox)) == 2, "both notifications after ntfy recovers", 60)
    time.sleep(2)
    assert titles(inbox) == ["blog is DOWN", "blog is UP"]
