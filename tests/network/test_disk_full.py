"""Scenario 8: Huginn's data directory is a small tmpfs that fills up. It
goes on checking and voting from memory, says so in its API and log, leaves
notifications to Muninn, never corrupts its database, and writes what it
kept once space returns."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.network.netns import CANARY, address, needs_netns, topology
from tests.network.world import NODE_PORT, World

pytestmark = needs_netns

# Cheap checks that make Huginn write often, so the disk runs out soon.
LOAD = "".join(
    f'\n[[targets]]\nid = "load-{i}"\nkind = "tcp"\nhost = "{CANARY}"\nport = 53\ninterval_s = 1\n'
    for i in range(20)
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[World]:
    data = tmp_path / "huginn"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(data)], check=True)
    try:
        with topology() as net:
            world = World(net, tmp_path, extra=LOAD)
            world.start_all()
            yield world
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


def fill(path: Path) -> None:
    """Write until the filesystem says no more, down to its last block."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)


def storage(world: World, name: str) -> dict[str, object]:
    nodes = world.api(name, "/api/v1/nodes") or {}
    return dict(nodes.get("storage") or {})


def test_a_full_disk_degrades_clearly_and_loses_nothing(small_disk: World) -> None:
    world = small_disk
    filler = world.root / "huginn" / "filler"
    fill(filler)
    full_ms = int(time.time() * 1000)
    world.wait(lambda: storage(world, "huginn").get("ok") is False,
               "huginn says its database refuses writes", 120)  # fmt: skip
    assert "full" in str(storage(world, "huginn")["error"])
    said = (world.root / "huginn.log").read_text()
    assert "storage node=huginn: database or disk is full" in said

    # It still checks and votes; the pair agrees and notifies once.
    world.target_file.write_text("down")
    world.wait(world.both("DOWN"), "both agree the site is DOWN")
    world.wait(lambda: world.titles() == ["site is DOWN"], "one DOWN, from muninn")
    muninn_view = world.api("muninn", "/api/v1/nodes")["peers"][0]
    assert muninn_view["voter"] is True, "huginn still votes"
    world.target_file.write_text("up")
    world.wait(world.both("UP"), "both agree the site is UP")
    world.wait(lambda: len(world.titles()) == 2, "the UP notification")
    kept = storage(world, "huginn")
    assert kept["ok"] is False and int(kept["unsaved_steps"]) > 0, kept  # type: ignore[call-overload]
    shown = subprocess.run([sys.executable, "-m", "watchers", "status", "--node",
                            f"http://{address('huginn')}:{NODE_PORT}"],
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "storage: the database refuses writes (database or disk is full)" in shown, shown

    filler.unlink()
    free_ms = int(time.time() * 1000)
    world.wait(lambda: storage(world, "huginn").get("ok") is True, "huginn writes again", 30)
    assert storage(world, "huginn")["unsaved_steps"] == 0
    assert world.query("huginn", "PRAGMA integrity_check")[0][0] == "ok"
    checked = world.query("huginn", "SELECT count(*) FROM checks WHERE target = 'site' AND "
                                    f"at_ms BETWEEN {full_ms} AND {free_ms}")[0][0]  # fmt: skip
    assert checked > 5, f"the checks made while the disk was full were written: {checked}"
    states = world.query("huginn", "SELECT state FROM intervals WHERE target = 'site' "
                                   "ORDER BY start_ms")  # fmt: skip
    moves = [s for (s,) in states]
    assert "DOWN" in moves and moves[-1] == "UP", f"the outage was written: {moves}"
    world.wait(world.all_told, "every message known as posted on both nodes")
    assert world.titles() == ["site is DOWN", "site is UP"]

    # A restart finds everything in place.
    world.kill("huginn", 15)
    world.start("huginn")
    assert world.query("huginn", "PRAGMA integrity_check")[0][0] == "ok"
    world.wait(world.both("UP"), "both agree after the restart")
