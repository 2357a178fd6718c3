"""`ravens demo` starts the pair and its targets, shows agreement, and stops everything."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def test_the_demo_shows_agreement_and_cleans_up(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "watchers", "demo", "--dir", str(tmp_path), "--duration", "25"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    out = done.stdout
    assert "huginn  status page http://127.0.0.1:" in out
    assert "healthy    UNKNOWN -> UP [quorum]" in out
    assert "one-sided" in out and "-> PARTIAL [quorum]" in out
    assert "stopped both nodes and the demo targets" in out
    assert "ntfy inbox http://127.0.0.1:" in out
    assert "ntfy       one-sided" not in out  # a one-sided failure pages nobody
    for name in ("huginn", "muninn"):
        log = (tmp_path / f"{name}.log").read_text()
        assert f"node={name} stopped" in log, log[-2000:]
        assert (tmp_path / name / "ravens.sqlite3").exists()


def test_ctrl_c_stops_the_demo_cleanly_and_a_second_run_says_it_resumes(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole foreground process group, twice here (as an
    impatient user or `timeout` sends it): the demo says it stopped, exits 0,
    and says nothing else."""
    demo = [sys.executable, "-m", "watchers", "demo", "--dir", str(tmp_path)]
    proc = subprocess.Popen(demo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        logs = [tmp_path / f"{name}.log" for name in ("huginn", "muninn")]
        while not all(p.exists() and "agreed node=" in p.read_text() for p in logs):
            assert time.monotonic() < deadline and proc.poll() is None, "the demo agreed nothing"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, (out, err)
    assert out.rstrip().splitlines()[-1] == "ravens demo: stopped both nodes and the demo targets."
    assert "Error" not in out + err and "Aborted" not in out + err, (out, err)
    for log in logs:
        assert "stopped" in log.read_text().splitlines()[-1], log.read_text()[-1000:]

    again = subprocess.run([*demo, "--duration", "2"], capture_output=True, text=True,
                           timeout=60, check=True)  # fmt: skip
    assert again.stdout.startswith(f"ravens demo: resuming the last run in {tmp_path}")
    assert "`ravens demo --fresh` starts anew" in again.stdout
    fresh = subprocess.run([*demo, "--duration", "2", "--fresh"], capture_output=True,
                           text=True, timeout=60, check=True)  # fmt: skip
    assert fresh.stdout.startswith(f"ravens demo: started anew in {tmp_path}")
