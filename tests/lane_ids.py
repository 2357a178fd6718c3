"""A pytest plugin for tests/parallel.py: each lane writes the tests it
found in its files and the ones it kept (after -k), so the run can tell
that every test ran in exactly one lane. A lane's -k or --ignore that
drops a test from every lane would otherwise go unseen.

The file named by RAVENS_LANE_IDS gets one line per test: ``found <id>``
or ``kept <id>``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TARGET = "RAVENS_LANE_IDS"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # First of this hook: every test of the lane's files, before -k.
    _write("found", items)


def pytest_collection_finish(session: pytest.Session) -> None:
    _write("kept", session.items)


def _write(word: str, items: list[pytest.Item]) -> None:
    path = os.environ.get(TARGET)
    if path:
        with Path(path).open("a") as out:
            out.writelines(f"{word} {item.nodeid}\n" for item in items)


def count_kept(files: dict[str, Path]) -> int:
    """How many tests the lanes ran between them."""
    return sum(
        line.startswith("kept ")
        for path in files.values()
        if path.exists()
        for line in path.read_text().splitlines()
    )


def unplaced(files: dict[str, Path]) -> list[str]:
    """Problems in the lanes' lists (lane name: its file): tests found but
    kept by no lane, or kept by more than one, with the lanes that kept it."""
    found: set[str] = set()
    kept: dict[str, list[str]] = {}
    problems = []
    for lane, path in files.items():
        lines = path.read_text().splitlines() if path.exists() else []
        if not any(line.startswith("kept ") for line in lines):
            problems.append(f"{lane}: listed no tests")
        for line in lines:
            word, _, test = line.partition(" ")
            if word == "found":
                found.add(test)
            else:
                kept.setdefault(test, []).append(lane)
    problems += [f"in no lane: {test}" for test in sorted(found - kept.keys())]
    problems += [
        f"in {len(lanes)} lanes ({', '.join(lanes)}): {test}"
        for test, lanes in sorted(kept.items())
        if len(lanes) > 1
    ]
    return problems
