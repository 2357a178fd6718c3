"""Building the package, as `pip install -e .` does (with the backend
pyproject.toml names): no warning on the way."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = """
import sys, warnings
from setuptools import build_meta
warnings.simplefilter("always")
print(build_meta.build_editable(sys.argv[1]))
"""


def test_an_editable_build_says_nothing_but_its_wheel(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", BUILD, str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].endswith(".whl")
    assert (tmp_path / done.stdout.strip().splitlines()[-1]).exists()
    # setuptools' chatter goes to its logger; a warning is printed as
    # "<file>.py:<line>: <Category>: <message>" (pip shows it as a
    # BuildBackendWarning on every install).
    assert not re.search(r"\.py:\d+: \w+", done.stderr), done.stderr
