"""Signed webhooks on a real pair: the receiver gets each agreed event of an
outage once, in order, through a 5xx storm and a kill -9 of the node
delivering them; every signature verifies, and a tampered body does not."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from notify.signing import secret_key
from tests.integration.hook_receiver import SECRET, Receiver, serve_in_thread
from tests.integration.notify_world import World

NAMES = ("huginn", "muninn")


def test_each_event_once_in_order_through_a_5xx_storm_and_a_kill_9(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    receiver = Receiver(status=503)
    (tmp_path / "webhook-secret").write_text(SECRET)
    with serve_in_thread(receiver) as url:
        hook = f"""
[[webhooks]]
name = "biphrost-api"
url = "{url}"
secret_file = "{tmp_path / "webhook-secret"}"
timeout_s = 2
"""
        pair, _inbox, switch = make_world(ntfy="failover_s = 5\n", extra_toml=hook)
        pair.wait(pair.both("blog", "UP"), "both see blog UP")
        switch.down = True
        pair.wait(pair.both("blog", "DOWN"), "both agree blog is DOWN", 60)
        pair.wait(lambda: len(receiver.deliveries) >= 2, "deliveries tried in the storm", 60)
        agent = receiver.deliveries[-1].headers["user-agent"]
        holder = next(n for n in NAMES if f"ravens/{n}" in agent)
        survivor = next(n for n in NAMES if n != holder)
        pair.kill(holder)  # kill -9, in the middle of the storm
        switch.down = False
        pair.wait(lambda: pair.state(survivor, "blog") == "UP", f"{survivor} alone: UP", 90)
        assert receiver.accepted() == []
        receiver.status = 204
        pair.wait(lambda: receiver.told("blog") == ["DOWN", "UP"], "both told, in order", 120)
        # The killed node comes back: what it held was delivered by its peer,
        # and its outbox says so (nothing waits) rather than posting again.
        pair.start(holder)

        def settled() -> bool:
            found = [pair.api(n, "/api/v1/nodes") or {} for n in NAMES]
            return all(f.get("webhooks", {}).get("waiting") == {} for f in found)

        pair.wait(settled, "neither node has a delivery waiting", 60)
        pair.rounds_pass("blog", 3)
        assert receiver.told("blog") == ["DOWN", "UP"]
        assert receiver.copies() == 0
        assert all(d.answered == 503 for d in receiver.deliveries[:2])
        down, up = receiver.accepted()
        assert f"ravens/{survivor}" in down.headers["user-agent"]
        key = secret_key(SECRET)
        assert all(d.signed_by(key) for d in receiver.deliveries)
        tampered = type(down)(down.headers, down.body.replace(b"blog", b"blob"), 204)
        assert not tampered.signed_by(key)
        assert [json.loads(d.body)["type"] for d in (down, up)] == [
            "transition.down",
            "transition.up",
        ]
