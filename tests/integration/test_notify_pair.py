"""The pair posts each agreed transition once to the ntfy-compatible inbox,
and keeps what it could not post until ntfy takes it."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.integration.notify_world import OTHER_TOKEN, World, titles
from tests.integration.processes import Pair


def status_output(pair: Pair, name: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "watchers", "status", "--node", pair.url(name, "")],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return done.stdout


def test_what_ntfy_refuses_is_shown_kept_and_sent_after_the_config_is_fixed(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    pair, inbox, switch = make_world()
    inbox.token = OTHER_TOKEN  # the operator rotated the token on ntfy only
    pair.wait(pair.both("blog", "UP"), "both see blog UP")
    switch.down = True
    pair.wait(lambda: any("refused" in status_output(pair, n) for n in ("huginn", "muninn")),
              "the refusal in ravens status")  # fmt: skip
    shown = "".join(status_output(pair, n) for n in ("huginn", "muninn"))
    assert "unauthorized (40101)" in shown and "fix [ntfy], then reload" in shown
    assert inbox.all() == []
    (tmp_path / "ntfy-token").write_text(OTHER_TOKEN)
    for proc in pair.procs.values():
        proc.send_signal(signal.SIGHUP)
    pair.wait(lambda: titles(inbox) == ["blog is DOWN"], "the kept DOWN, once, after the reload")
    pair.rounds_pass("blog")
    assert titles(inbox) == ["blog is DOWN"]


def test_the_sender_killed_right_after_posting_is_not_followed_by_a_second_post(
    make_world: Callable[..., World],
) -> None:
    pair, inbox, switch = make_world(ntfy="failover_s = 5\n")
    killed: list[str] = []

    def kill_the_poster(_message: dict[str, Any]) -> None:
        if killed:
            return
        agent = inbox.requests[-1]["headers"]["user-agent"]
        name = "huginn" if "huginn" in agent else "muninn"
        killed.append(name)
        pair.kill(name)  # before ntfy's answer reaches it

    pair.wait(pair.both("blog", "UP"), "both see blog UP")
    inbox.on_message = kill_the_poster
    switch.down = True
    pair.wait(lambda: bool(killed), "the DOWN posted, and its sender killed")
    (survivor,) = [n for n in ("huginn", "muninn") if n not in killed]

    # The standby takes over once the sender is silent past the peer timeout,
    # finds the post on ntfy, and records it as sent instead of posting again.
    def settled() -> bool:
        nodes = pair.api(survivor, "/api/v1/nodes") or {}
        return nodes.get("outbox_depth") == 0 and outbox_sent(pair, survivor) == 1

    pair.wait(settled, "the standby settles the event", 90)
    pair.start(killed[0])
    pair.wait(pair.both("blog", "DOWN"), "both agree blog is DOWN after the restart")
    switch.down = False
    pair.wait(lambda: len(titles(inbox)) == 2, "the UP")
    pair.rounds_pass("blog", 3)
    assert titles(inbox) == ["blog is DOWN", "blog is UP"]
    down_requests = [r for r in inbox.requests if b"is DOWN" in r["body"]]
    assert len(down_requests) == 1, "posted once; the standby looked it up"


def outbox_sent(pair: Pair, name: str) -> int:
    import sqlite3

    with sqlite3.connect(pair.database(name)) as db:
        row = db.execute("SELECT count(*) FROM outbox WHERE status = 'sent'").fetchone()
    db.close()
    return int(row[0])
