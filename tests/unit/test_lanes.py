"""tests/parallel.py's check that its lanes, between them, run every test
of the suite exactly once."""

from __future__ import annotations

from pathlib import Path

from tests.lane_ids import count_kept, unplaced


def lane(tmp_path: Path, name: str, found: list[str], kept: list[str]) -> Path:
    path = tmp_path / f"{name}.ids"
    path.write_text("".join(f"found {t}\n" for t in found) + "".join(f"kept {t}\n" for t in kept))
    return path


def test_every_test_in_one_lane_is_no_problem(tmp_path: Path) -> None:
    files = {
        "network": lane(tmp_path, "network", ["a::x", "a::y"], ["a::x"]),
        "rest": lane(tmp_path, "rest", ["a::x", "a::y", "b::z"], ["a::y", "b::z"]),
    }
    assert unplaced(files) == []
    assert count_kept(files) == 3


def test_a_test_no_lane_kept_or_two_lanes_kept_is_named(tmp_path: Path) -> None:
    files = {
        # -k kept x only in one lane, and another dropped y and z too.
        "network": lane(tmp_path, "network", ["a::x", "a::y"], ["a::x"]),
        "rest": lane(tmp_path, "rest", ["a::x", "b::z"], ["a::x"]),
    }
    assert unplaced(files) == [
        "in no lane: a::y",
        "in no lane: b::z",
        "in 2 lanes (network, rest): a::x",
    ]


def test_a_lane_that_listed_nothing_is_named(tmp_path: Path) -> None:
    files = {
        "rest": lane(tmp_path, "rest", ["a::x"], ["a::x"]),
        "crashed": tmp_path / "never-written.ids",
        "emptied by -k": lane(tmp_path, "empty", ["b::z"], []),
    }
    assert unplaced(files) == [
        "crashed: listed no tests",
        "emptied by -k: listed no tests",
        "in no lane: b::z",
    ]
