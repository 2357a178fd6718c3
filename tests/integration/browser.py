"""Debian's Chromium, headless, as the status page tests drive it: the DOM
after scripts ran, console messages, and a screenshot."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on this machine (Debian: apt-get install chromium; .ci/run does)",
)
CONSOLE = re.compile(r":CONSOLE[:(]\d+\)?\] (.*)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=3000"]  # fmt: skip


@dataclass
class Visit:
    dom: str
    console: list[str]


def visit(url: str, screenshot: Path | None = None, size: str = "1200,1000") -> Visit:
    """Load url; the DOM as rendered, and every console message on the way."""
    assert CHROMIUM is not None
    args = [CHROMIUM, *FLAGS, f"--window-size={size}"]
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([*args, f"--screenshot={screenshot}", url], capture_output=True,
                       timeout=120, check=True, cwd=screenshot.parent)  # fmt: skip
    done = subprocess.run([*args, "--dump-dom", url], capture_output=True, text=True,
                          timeout=120, check=True)  # fmt: skip
    return Visit(done.stdout, [m.group(1) for m in CONSOLE.finditer(done.stderr)])
