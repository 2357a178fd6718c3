"""Online backup of a live node under write load, and restore: the copy
passes integrity_check, is a consistent earlier state of the live log,
equals it exactly when taken while nothing writes, and a node starts on it."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.processes import Pair
from tests.integration.test_pair import Behaviour
from watchers.demo import serve_target

# Many targets checked every second: the node commits all the time.
LOAD = 40


@pytest.fixture
def busy_pair(tmp_path: Path) -> Iterator[Pair]:
    server = serve_target(Behaviour(), time.time())
    port = server.server_address[1]
    targets = "".join(
        f'\n[[targets]]\nid = "t{i}"\nkind = "http"\nurl = "http://127.0.0.1:{port}/{i}"\n'
        for i in range(LOAD)
    )
    pair = Pair(tmp_path, targets, canary_port=port)
    try:
        pair.start_all()
        pair.wait(pair.both(f"t{LOAD - 1}", "UP"), "both see every target UP")
        yield pair
    finally:
        pair.stop_all()
        server.shutdown()
        server.server_close()


def ravens(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "watchers", *args], capture_output=True,
                          text=True, check=False, timeout=60)  # fmt: skip


def log_rows(path: Path) -> dict[str, tuple[int, int, str, str]]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT key, wall_ms, logical, origin, value FROM log").fetchall()
    return {key: (wall, logical, origin, value) for key, wall, logical, origin, value in rows}


def test_a_backup_under_write_load_restores_to_the_same_log(
    busy_pair: Pair, tmp_path: Path
) -> None:
    pair = busy_pair
    config = str(pair.config("huginn"))
    live = pair.database("huginn")
    copies = tmp_path / "copies"
    copies.mkdir()
    checks_before = sqlite3.connect(live).execute("SELECT count(*) FROM checks").fetchone()[0]

    # Three backups while the node writes about forty checks a second.
    for i in range(3):
        made = ravens("backup", "--config", config, str(copies / f"b{i}.sqlite3"))
        assert made.returncode == 0, made.stderr
        assert "integrity ok" in made.stdout
        time.sleep(0.5)
    with sqlite3.connect(live) as db:
        assert db.execute("SELECT count(*) FROM checks").fetchone()[0] > checks_before + 20
    now = log_rows(live)
    for i in range(3):
        copy = copies / f"b{i}.sqlite3"
        with sqlite3.connect(copy) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # A consistent earlier state: every entry is in the live log, as it
        # is now or older (last writer wins by HLC).
        for key, (wall, logical, _origin, _value) in log_rows(copy).items():
            assert key in now, key
            assert (wall, logical) <= now[key][:2], key

    # Taken while nothing writes (the node paused), the copy is the log.
    proc = pair.procs["huginn"]
    proc.send_signal(signal.SIGSTOP)
    try:
        exact = ravens("backup", "--config", config, str(copies))  # a dated name in a directory
        assert exact.returncode == 0, exact.stderr
        dated = next(copies.glob("ravens-*.sqlite3"))
        assert log_rows(dated) == log_rows(live)
    finally:
        proc.send_signal(signal.SIGCONT)

    # Restore: refused while the node runs, done once it is stopped.
    refused = ravens("restore", "--config", config, str(dated))
    assert refused.returncode == 1 and "stop the node first" in refused.stderr
    pair.kill("huginn", signal.SIGTERM)
    restored = ravens("restore", "--config", config, str(dated))
    assert restored.returncode == 0, restored.stderr
    assert "the one it replaced is" in restored.stdout
    assert list(live.parent.glob("ravens.sqlite3.replaced-*"))
    assert log_rows(live) == log_rows(dated)
    pair.start("huginn")
    pair.wait(pair.both(f"t{LOAD - 1}", "UP"), "the restored node serves and agrees again")


def test_a_damaged_backup_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"SQLite format 3\x00" + b"\x13" * 4000)
    config = tmp_path / "node.toml"
    (tmp_path / "secret").write_text("s" * 64)
    config.write_text(f'[node]\nname = "huginn"\nlisten = "127.0.0.1:1"\ndata_dir = "{tmp_path}"\n'
                      f'[sync]\nsecret_file = "{tmp_path / "secret"}"\n')  # fmt: skip
    result = ravens("restore", "--config", str(config), str(bad))
    assert result.returncode == 1 and "not a ravens database" in result.stderr, result.stderr
    assert not (tmp_path / "ravens.sqlite3").exists(), "nothing was put in place"
