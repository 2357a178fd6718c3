"""One node's verdict: hysteresis, streak caps, Icinga-style flap scores."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.errors import InvalidEntry
from consensus.flapping import WINDOW, FlapHistory
from consensus.hlc import Hlc
from consensus.settings import Settings
from consensus.verdict import Verdict, VerdictState

S = Settings()


def run(results: list[bool], start: Verdict | None = None) -> Verdict:
    verdict = start or Verdict()
    for i, ok in enumerate(results):
        verdict = verdict.observe(ok, Hlc(1000 + i, 0, "huginn"), "r", 10.0, S)
    return verdict


def test_a_first_success_makes_a_new_target_up() -> None:
    assert run([True]).state is VerdictState.UP


def test_down_after_fail_threshold_and_up_after_success_threshold() -> None:
    up = run([True])
    assert run([False], up).state is VerdictState.UP
    down = run([False, False], up)
    assert down.state is VerdictState.DOWN
    assert down.since == Hlc(1000, 0, "huginn")  # the streak's first check anchors it
    assert run([True], down).state is VerdictState.DOWN
    assert run([True, True], down).state is VerdictState.UP


@given(st.lists(st.booleans(), max_size=80))
def test_the_state_follows_only_complete_streaks(results: list[bool]) -> None:
    verdict = run(results)
    assert verdict.fails <= S.streak_cap and verdict.oks <= S.streak_cap
    if not results:
        assert verdict.state is VerdictState.UNKNOWN
        return
    # Replaying the rule by hand: the last streak long enough decides.
    state = VerdictState.UNKNOWN
    run_len = 0
    since: int | None = None
    for i, ok in enumerate(results):
        run_len = run_len + 1 if i and results[i - 1] == ok else 1
        moved = state
        if ok and (run_len >= S.success_threshold or state is VerdictState.UNKNOWN):
            state = VerdictState.UP
        elif not ok and run_len >= S.fail_threshold:
            state = VerdictState.DOWN
        if state is not moved:
            since = i - run_len + 1
    assert verdict.state is state
    # The state began after the check before its streak's first one.
    if since is not None:
        assert verdict.since == Hlc(1000 + since, 0, "huginn")
        assert verdict.before_since_ms == (None if since == 0 else 1000 + since - 1)


def test_a_steady_target_changes_nothing_worth_replicating() -> None:
    steady = run([True] * 30)
    again = run([True] * 5, steady)
    assert again.public() == steady.public()


def test_flap_score_weights_recent_changes_more() -> None:
    assert FlapHistory("1" * WINDOW).percent() == pytest.approx(99.0)
    old = FlapHistory("1" + "0" * (WINDOW - 1)).percent()
    new = FlapHistory("0" * (WINDOW - 1) + "1").percent()
    assert old == pytest.approx(4.0) and new == pytest.approx(5.9)


def test_flapping_starts_above_high_and_ends_after_a_calm_period_below_low() -> None:
    calm_ms = 600_000
    history = FlapHistory()
    t = 0
    for i in range(12):
        t += 60_000
        history = history.record(i % 2 == 1, t, 30.0, 25.0, calm_ms)
    assert history.flapping
    # Steady results: the score falls, but flapping holds through the calm period.
    while history.percent() >= 25.0:
        t += 60_000
        history = history.record(False, t, 30.0, 25.0, calm_ms)
        assert history.flapping
    low_at = t
    while history.flapping:
        t += 60_000
        history = history.record(False, t, 30.0, 25.0, calm_ms)
    assert t - low_at >= calm_ms
    # A change during the calm period starts it again.
    burst = FlapHistory("0" * 19 + "1", True, 0)
    assert burst.record(True, 10**9, 30.0, 25.0, calm_ms).flapping
    assert burst.record(True, 10**9, 30.0, 25.0, calm_ms).calm_since_ms is None


def test_alternating_checks_flap_the_verdict_without_moving_it() -> None:
    verdict = run([True, True] + [i % 2 == 0 for i in range(14)])
    assert verdict.flapping
    assert verdict.state is VerdictState.UP
    assert verdict.flap_since is not None


def test_a_verdict_round_trips_through_the_log_and_bad_values_are_named() -> None:
    verdict = run([True, False, False])
    assert Verdict.from_value(verdict.to_value()) == verdict
    with pytest.raises(InvalidEntry, match="verdict: expected an object"):
        Verdict.from_value([1, 2])
    with pytest.raises(InvalidEntry, match="verdict"):
        Verdict.from_value({"state": "SIDEWAYS"})


def test_reasons_are_capped() -> None:
    verdict = Verdict().observe(False, Hlc(1, 0, "huginn"), "x" * 5000, None, S)
    assert len(verdict.reason) == 200


def test_settings_name_the_bad_value() -> None:
    with pytest.raises(ValueError, match="fail_threshold: expected a positive number, got 0"):
        Settings(fail_threshold=0)
    with pytest.raises(ValueError, match="single_vantage_fail_threshold: expected at least"):
        Settings(fail_threshold=3, single_vantage_fail_threshold=2)
