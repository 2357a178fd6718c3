"""Each node checks a target at its own point of the interval: the pair's
turns are half an interval apart, and targets spread over the interval."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from consensus.slots import check_slot


@given(st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True),
       st.floats(min_value=1, max_value=86_400))  # fmt: skip
def test_the_two_nodes_take_turns_half_an_interval_apart(target: str, interval: float) -> None:
    first, second = check_slot(target, interval, 0, 2), check_slot(target, interval, 1, 2)
    assert 0 <= first < interval and 0 <= second < interval
    gap = (second - first) % interval
    assert abs(gap - interval / 2) < 1e-6 * interval


def test_targets_spread_evenly_over_the_interval() -> None:
    slots = [check_slot(f"t{i:05d}", 60.0, 0, 2) for i in range(10_000)]
    per_tenth = [sum(1 for s in slots if k * 6 <= s < (k + 1) * 6) for k in range(10)]
    assert all(900 < n < 1100 for n in per_tenth), per_tenth
