"""Uptime arithmetic against hand-computed intervals: partial days,
maintenance left out, an ongoing incident, time nobody could judge."""

from __future__ import annotations

import pytest

from watchers.storage import Interval
from watchers.uptime import DAY_MS, daily, parse_windows, uptime

H = 3_600_000
DAY0 = 1_795_000_000_000 - 1_795_000_000_000 % DAY_MS  # a UTC midnight


def test_a_clean_day_with_one_outage() -> None:
    stretches = [
        Interval("t", "UP", "quorum", DAY0 - DAY_MS, DAY0 + 10 * H),
        Interval("t", "DOWN", "quorum", DAY0 + 10 * H, DAY0 + 10 * H + 90_000),
        Interval("t", "UP", "quorum", DAY0 + 10 * H + 90_000, None),
    ]
    found = uptime(stretches, DAY0, DAY0 + DAY_MS, now_ms=DAY0 + 2 * DAY_MS)
    assert found.down_s == 90.0 and found.incidents == 1
    assert found.percent == pytest.approx(100 * (86_400 - 90) / 86_400)


def test_maintenance_is_left_out_and_partial_counts_as_up() -> None:
    stretches = [
        Interval("t", "UP", "quorum", DAY0, DAY0 + 2 * H),
        Interval("t", "MAINTENANCE", "quorum", DAY0 + 2 * H, DAY0 + 4 * H),
        Interval("t", "PARTIAL", "quorum", DAY0 + 4 * H, DAY0 + 5 * H),
        Interval("t", "DOWN", "quorum", DAY0 + 5 * H, DAY0 + 6 * H),
        Interval("t", "UP", "quorum", DAY0 + 6 * H, None),
    ]
    found = uptime(stretches, DAY0, DAY0 + DAY_MS, now_ms=DAY0 + DAY_MS)
    assert found.seconds == {"UP": 20 * 3600.0, "MAINTENANCE": 7200.0, "PARTIAL": 3600.0,
                             "DOWN": 3600.0}  # fmt: skip
    assert found.judged_s == 22 * 3600
    assert found.percent == pytest.approx(100 * 21 / 22)


def test_an_ongoing_incident_counts_until_now_and_the_future_not_at_all() -> None:
    stretches = [
        Interval("t", "UP", "quorum", DAY0, DAY0 + 6 * H),
        Interval("t", "DOWN", "single_vantage", DAY0 + 6 * H, None),
    ]
    found = uptime(stretches, DAY0, DAY0 + DAY_MS, now_ms=DAY0 + 9 * H)
    assert found.window_end_ms == DAY0 + 9 * H
    assert (found.seconds, found.incidents) == ({"UP": 21_600.0, "DOWN": 10_800.0}, 1)
    assert found.percent == pytest.approx(100 * 6 / 9)


def test_time_before_the_target_was_watched_is_unknown_and_left_out() -> None:
    stretches = [Interval("t", "UP", "quorum", DAY0 + 12 * H, None)]
    found = uptime(stretches, DAY0, DAY0 + DAY_MS, now_ms=DAY0 + DAY_MS)
    assert found.seconds == {"UP": 43_200.0, "UNKNOWN": 43_200.0}
    assert found.percent == 100.0
    assert uptime([], DAY0, DAY0 + DAY_MS, DAY0 + DAY_MS).percent is None


def test_an_incident_across_midnight_is_split_between_the_two_days() -> None:
    stretches = [
        Interval("t", "UP", "quorum", DAY0 - 2 * DAY_MS, DAY0 - H),
        Interval("t", "DOWN", "quorum", DAY0 - H, DAY0 + 2 * H),
        Interval("t", "UP", "quorum", DAY0 + 2 * H, None),
    ]
    yesterday, today = daily(stretches, 2, now_ms=DAY0 + 12 * H)
    assert (yesterday.down_s, today.down_s) == (3600.0, 7200.0)
    assert yesterday.incidents == today.incidents == 1
    assert today.percent == pytest.approx(100 * 10 / 12)


def test_windows_are_named_or_refused_with_the_list() -> None:
    assert parse_windows("24h, 7d,30d") == ["24h", "7d", "30d"]
    with pytest.raises(ValueError, match="unknown window 2w; expected a comma-separated list"):
        parse_windows("24h,2w")
