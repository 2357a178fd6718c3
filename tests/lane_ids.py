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


def _lists(files: dict[str, Path]) -> dict[str, tuple[set[str], list[str]]]:
    """Each lane's tests found and kept (none for a lane that wrote nothing)."""
    lists: dict[str, tuple[set[str], list[str]]] = {}
    for lane, path in files.items():
        found: set[str] = set()
        kept: list[str] = []
        for line in path.read_text().splitlines() if path.exists() else []:
            word, _, test = line.partition(" ")
            if word == "found":
                found.add(test)
            else:
                kept.append(test)
        lists[lane] = (found, kept)
    return lists


def count_kept(files: dict[str, Path]) -> int:
    """How many tests the lanes ran between them."""
    return sum(len(kept) for _, kept in _lists(files).values())


def unplaced(files: dict[str, Path]) -> list[str]:
    """Problems in the lanes' lists (lane name: its file): tests found but
    kept by no lane, or kept by more than one, with the lanes that kept it."""
    lists = _lists(files)
    problems = [f"{lane}: listed no tests" for lane, (_, kept) in lists.items() if not kept]
    found = set().union(*(found for found, _ in lists.values()))
    kept_by: dict[str, list[str]] = {}
    for lane, (_, kept) in lists.items():
        for test in kept:
            kept_by.setdefault(test, []).append(lane)
    problems += [f"in no lane: {test}" for test in sorted(found - kept_by.keys())]
    problems += [
        f"in {len(lanes)} lanes ({', '.join(lanes)}): {test}"
        for test, lanes in sorted(kept_by.items())
        if len(lanes) > 1
    ]
    return problems
