"""The response-time charts' geometry, judged against the hours and
outages a test chose: where each hour lands, gaps, shading, the scale, and
what a peer may not make the page draw."""

from __future__ import annotations

import math
import re

from hypothesis import given
from hypothesis import strategies as st

from watchers.latency_chart import (
    HEIGHT,
    HOUR_MS,
    LEFT,
    TOP,
    WIDTH,
    chart,
    hours_by_node,
    nice_ceiling,
)
from watchers.rows import Interval

NOW = 1_800_000_000_000 - 1_800_000_000_000 % HOUR_MS  # on the hour
DAY = 24 * HOUR_MS
PLOT_BOTTOM = HEIGHT - 18


def coordinates(path: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r"[ML](-?[\d.]+),(-?[\d.]+)", path)]


def test_each_hour_lands_at_its_middle_and_height_and_a_missing_hour_breaks_the_line() -> None:
    hours = {"huginn": {NOW - 3 * HOUR_MS: (10.0, 40.0), NOW - 2 * HOUR_MS: (20.0, 50.0),
                        NOW - HOUR_MS * 0: (30.0, 100.0)}}  # fmt: skip
    drawn = chart("24 hours", DAY, NOW, hours, ["huginn", "muninn"], [])
    assert drawn.y_max_ms == 100.0
    (p95, p50) = [s for s in drawn.series if s.node == "huginn"]
    assert (p95.kind, p50.kind, p50.points) == ("p95", "p50", 3)
    plot_w, plot_h = WIDTH - LEFT, PLOT_BOTTOM - TOP
    for (x, y), (hour, ms) in zip(
        coordinates(p50.path),
        [(NOW - 3 * HOUR_MS, 10), (NOW - 2 * HOUR_MS, 20), (NOW, 30)],
        strict=True,
    ):
        # At the hour's middle; the hour under way, at now.
        middle = min(hour + HOUR_MS / 2, NOW)
        assert math.isclose(x, LEFT + (middle - (NOW - DAY)) / DAY * plot_w, abs_tol=0.1)
        assert math.isclose(y, TOP + plot_h * (1 - ms / 100), abs_tol=0.1)
    # Hours 3 and 2 ago join; the last hour stands alone after a gap.
    assert p50.path.count("M") == 2 and p50.path.count("L") == 1
    muninn = [s for s in drawn.series if s.node == "muninn"]
    assert all(s.points == 0 for s in muninn)
    assert "muninn: no measurements" in drawn.summary


def test_an_outage_is_shaded_over_exactly_its_time_and_clipped_to_the_window() -> None:
    outage = Interval("blog", "DOWN", "quorum", NOW - 6 * HOUR_MS, NOW - 5 * HOUR_MS, None)
    older = Interval("blog", "DOWN", "quorum", NOW - 30 * HOUR_MS, NOW - 23 * HOUR_MS, None)
    up = Interval("blog", "UP", "quorum", NOW - 5 * HOUR_MS, None, None)
    drawn = chart("24 hours", DAY, NOW, {}, ["huginn"], [older, outage, up])
    plot_w = WIDTH - LEFT
    first, second = drawn.shades
    assert math.isclose(first.x, LEFT, abs_tol=0.1), "begun before the window: from its edge"
    assert math.isclose(first.width, plot_w / 24, abs_tol=0.2)
    assert math.isclose(second.x, LEFT + plot_w * 18 / 24, abs_tol=0.1)
    assert math.isclose(second.width, plot_w / 24, abs_tol=0.2)
    assert drawn.empty


def test_what_a_peer_sends_is_drawn_only_when_it_is_a_latency() -> None:
    points = [
        {"node": "muninn", "at_ms": NOW, "latency_p50_ms": 12, "latency_p95_ms": 30},
        {"node": "muninn", "at_ms": NOW - HOUR_MS, "latency_p50_ms": math.nan,
         "latency_p95_ms": 1},
        {"node": "muninn", "at_ms": NOW - 2 * HOUR_MS, "latency_p50_ms": 5,
         "latency_p95_ms": 1e300},
        {"node": "muninn", "at_ms": NOW - 3 * HOUR_MS, "latency_p50_ms": 50,
         "latency_p95_ms": 10},  # a p95 under its p50
        {"node": "muninn", "at_ms": True, "latency_p50_ms": 1, "latency_p95_ms": 2},
        {"node": 7, "at_ms": NOW, "latency_p50_ms": 1, "latency_p95_ms": 2},
        {"node": "muninn", "at_ms": NOW - 4 * HOUR_MS, "latency_p50_ms": None,
         "latency_p95_ms": None},
    ]  # fmt: skip
    assert hours_by_node(points) == {"muninn": {NOW: (12.0, 30.0)}}


@given(st.floats(min_value=0, max_value=86_400_000, allow_nan=False))
def test_the_scale_is_one_two_or_five_times_a_power_of_ten_at_or_above_the_peak(
    peak: float,
) -> None:
    top = nice_ceiling(peak)
    assert top >= peak and top >= 1
    mantissa = top / 10 ** math.floor(math.log10(top))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 5))
    assert top <= max(peak, 1) * 5


@given(
    st.dictionaries(
        st.integers(0, 30 * 24).map(lambda h: NOW - h * HOUR_MS),
        st.tuples(st.floats(0, 5_000), st.floats(0, 5_000)).map(lambda t: (min(t), max(t))),
        max_size=60,
    )
)
def test_every_line_stays_inside_the_plot(hours: dict[int, tuple[float, float]]) -> None:
    for title, span in (("24 hours", DAY), ("30 days", 30 * DAY)):
        drawn = chart(title, span, NOW, {"huginn": hours}, ["huginn"], [])
        for series in drawn.series:
            for x, y in coordinates(series.path):
                assert LEFT - 0.1 <= x <= WIDTH + 0.1
                assert TOP - 0.1 <= y <= PLOT_BOTTOM + 0.1
