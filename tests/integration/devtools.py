"""Debian's Chromium driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: commands on fd 3, answers and events on fd 4,
each JSON ended by a NUL byte), so a test can watch a page live: read its
DOM while it stays open, see the events its EventSource received. No
websocket client and no browser download needed."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.integration.browser import CHROMIUM

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
         "--no-first-run", "--no-default-browser-check"]  # fmt: skip


class Browser:
    def __init__(self, proc: subprocess.Popen[bytes], to_fd: int, from_fd: int) -> None:
        self.proc = proc
        self.to_fd = to_fd
        self.from_fd = from_fd
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def send(self, method: str, timeout_s: float = 30, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if self.session is not None and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self.to_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            for found in self._read(deadline - time.monotonic()):
                if found.get("id") == self.next_id:
                    if "error" in found:
                        raise AssertionError(f"{method}: {found['error']}")
                    result: dict[str, Any] = found.get("result", {})
                    return result
                self.events.append(found)
            if time.monotonic() > deadline:
                raise AssertionError(f"{method}: no answer within {timeout_s:g} s")

    def _read(self, wait_s: float) -> list[dict[str, Any]]:
        ready, _, _ = select.select([self.from_fd], [], [], max(0.0, wait_s))
        if ready:
            chunk = os.read(self.from_fd, 1 << 20)
            if not chunk:
                raise AssertionError("chromium closed its pipe")
            self.buffer += chunk
        *messages, self.buffer = self.buffer.split(b"\0")
        return [json.loads(m) for m in messages if m]

    def pump(self, wait_s: float = 0.2) -> None:
        """Take the events that arrived meanwhile."""
        self.events += self._read(wait_s)

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]  # fmt: skip
        self.send("Network.enable")
        self.send("Page.enable")
        self.send("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        found = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return found.get("result", {}).get("value")

    def wait(self, condition: Callable[[], bool], what: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout_s:g} s: {what}")
            self.pump(0.25)

    def of(self, method: str) -> list[dict[str, Any]]:
        return [e.get("params", {}) for e in self.events if e.get("method") == method]


@contextmanager
def chromium() -> Iterator[Browser]:
    assert CHROMIUM is not None
    to_read, to_write = os.pipe()
    from_read, from_write = os.pipe()
    # The child's ends, above 3 and 4, which bash then makes fds 3 and 4
    # (no preexec_fn: this process runs threads).
    child_in = fcntl.fcntl(to_read, fcntl.F_DUPFD, 10)
    child_out = fcntl.fcntl(from_write, fcntl.F_DUPFD, 10)
    for fd in (to_read, from_write):
        os.close(fd)
    plumbing = f'exec 3<&{child_in} 4>&{child_out} {child_in}<&- {child_out}>&-; exec "$@"'
    with tempfile.TemporaryDirectory() as profile:
        args = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}"]
        # A session of its own: its renderers and helpers, stopped with it.
        proc = subprocess.Popen(
            ["bash", "-c", plumbing, "chromium", *args],
            pass_fds=(child_in, child_out),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(child_in)
        os.close(child_out)
        try:
            yield Browser(proc, to_write, from_read)
        finally:
            stop_group(proc)
            os.close(to_write)
            os.close(from_read)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process and every process of its group. Chromium's helpers
    outlive its main process for a moment, still writing to the profile,
    which then cannot be removed ("Directory not empty")."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.05)
            if proc.returncode is not None and not group_running(proc.pid):
                return
    raise AssertionError(f"chromium's process group {proc.pid} did not stop")


def group_running(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies, whose parent
    has yet to reap them, write nothing and do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # After the command's closing parenthesis: state, ppid, pgrp.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False
