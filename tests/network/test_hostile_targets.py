"""Scenario 11: targets that misbehave on purpose. Each check ends within
its timeout with a reason a person can act on, and the node's memory stays
bounded however much a target sends."""

from __future__ import annotations

import json
import time

import pytest

from tests.network.netns import address, needs_netns
from tests.network.serve import LEAKED
from tests.network.world import HOSTILE_PORT, NODES, World

pytestmark = needs_netns

HOST = address("targets")
KINDS = {
    "endless": f'kind = "http"\nurl = "http://{HOST}:{HOSTILE_PORT}/"',
    "gigabyte": f'kind = "http"\nurl = "http://{HOST}:{HOSTILE_PORT + 1}/"',
    "trickle": f'kind = "http"\nurl = "http://{HOST}:{HOSTILE_PORT + 2}/"',
    "redirect-loop": f'kind = "http"\nurl = "http://{HOST}:{HOSTILE_PORT + 3}/"',
    "stalled-tls": f'kind = "http"\nurl = "https://{HOST}:{HOSTILE_PORT + 4}/"',
    "silent-dns": f'kind = "dns"\nquery = "example.org"\nresolver = "{HOST}"\n'
    f"port = {HOSTILE_PORT + 5}",
    "gzip-bomb": f'kind = "http"\nurl = "http://{HOST}:{HOSTILE_PORT + 6}/"',
    "regex": f'kind = "http"\nurl = "http://{HOST}:{HOSTILE_PORT + 7}/"\n'
    "regex = '((\\w|\\W)*)*!'",
    "redirect-away": f'kind = "http"\nurl = "http://{HOST}:{HOSTILE_PORT + 8}/"\n'
    'headers = { Authorization = "Bearer k3y" }',
}
# What each check must end with (the node's timeout is 2 s).
REASONS = {
    "endless": "status 200",
    "gigabyte": "status 200",
    "trickle": "timeout after 2 s reading the body",
    "redirect-loop": "more than 5 redirects",
    "stalled-tls": "timeout after 2 s in the TLS handshake",
    "silent-dns": "no answer after 2 s",
    "gzip-bomb": "status 200",
    "regex": "regex '((\\\\w|\\\\W)*)*!' not matched",
    "redirect-away": "status 200",
}
WATCH_S = 40


@pytest.fixture
def world_extra() -> str:
    return "".join(f'\n[[targets]]\nid = "{name}"\n{spec}\n' for name, spec in KINDS.items())


def test_hostile_targets_end_within_their_timeout_and_memory_stays_bounded(
    world: World,
) -> None:
    world.start_hostile()
    world.wait(lambda: all(world.state("huginn", t) in ("UP", "DOWN") for t in KINDS),
               "a verdict on every hostile target")  # fmt: skip
    before = {name: world.rss_mb(name) for name in NODES}
    began_ms = int(time.time() * 1000)
    time.sleep(WATCH_S)
    after = {name: world.rss_mb(name) for name in NODES}
    print(f"RSS MB before {before}, after {WATCH_S} s {after}")
    for name in NODES:
        rows = world.query(name, "SELECT target, ok, reason, details FROM checks "
                                 f"WHERE at_ms >= {began_ms}")  # fmt: skip
        for target, reason in REASONS.items():
            seen = [r for r in rows if r[0] == target]
            # A check that hung would hold its target's only slot: fewer checks.
            assert len(seen) >= WATCH_S / 2 / 2, f"{name} {target}: only {len(seen)} checks"
            assert {r[2] for r in seen} == {reason}, f"{name} {target}: {seen[:3]}"
        for target in ("endless", "gigabyte", "gzip-bomb"):
            details = [json.loads(r[3]) for r in rows if r[0] == target]
            assert all(d.get("body_cut_at_kb") == 1024 for d in details), details[:3]
        assert after[name] < 200, f"{name} uses {after[name]:.0f} MB"
        grew = after[name] - before[name]
        assert grew < 40, f"{name} grew {grew:.0f} MB"
    # The redirect to another origin was followed without the credentials.
    assert LEAKED not in (world.root / "hostile.log").read_text()
    views = world.api("muninn", "/api/v1/targets/redirect-loop")["views"]
    assert views["huginn"]["reason"] == views["muninn"]["reason"] == "more than 5 redirects"
    # With the hostile targets still checked, the pair pages a real outage once.
    world.outage_is_paged_once()
