"""Push heartbeats: a call to either node's secret URL keeps the target UP on
both; silence past the grace period makes both agree it is DOWN."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.processes import Pair, listening_socket

TOKEN = "push-token-0123456789abcdef"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    targets = (
        '\n[[targets]]\nid = "backup"\nkind = "push"\ngrace_s = 4\ntoken_env = "RAVENS_PUSH"\n'
    )
    with listening_socket() as canary:
        p = Pair(tmp_path, targets, canary_port=canary, env={"RAVENS_PUSH": TOKEN})
        try:
            p.start_all()
            yield p
        finally:
            p.stop_all()


def call(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_heartbeat_on_one_node_counts_for_both(pair: Pair) -> None:
    assert call(pair.url("huginn", f"/api/v1/push/{TOKEN}")) == 200
    pair.wait(pair.both("backup", "UP"), "both see the heartbeat")
    assert call(pair.url("muninn", "/api/v1/push/not-the-token")) == 404
    pair.wait(pair.both("backup", "DOWN"), "silence past the grace is DOWN on both", 30)
