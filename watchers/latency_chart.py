"""Response-time charts for a target's page: each node's p50 and p95 per
hour over a window, outages shaded, as inline SVG geometry (no script, no
external asset; the template draws it and the theme colours it).

Pure: the hours and the agreed history come in, the shapes go out. A point
a peer sent is hostile like anything else a peer sends: only finite
latencies within a day are drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from watchers.live import as_latency
from watchers.rows import Interval

HOUR_MS = 3_600_000
WIDTH, HEIGHT = 720, 160
# Room for the axis labels: left for the milliseconds, below for the times.
LEFT, BOTTOM, TOP = 48, 18, 8
WINDOWS = {"24 hours": 24 * HOUR_MS, "7 days": 7 * 24 * HOUR_MS, "30 days": 30 * 24 * HOUR_MS}


@dataclass(frozen=True)
class Series:
    node: str
    index: int  # the node's place: its colour
    kind: str  # "p50" or "p95"
    path: str  # SVG path data; a gap in the hours is a gap in the line
    points: int


@dataclass(frozen=True)
class Shade:
    x: float
    width: float
    label: str


@dataclass(frozen=True)
class Chart:
    title: str
    y_max_ms: float
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    series: list[Series] = field(default_factory=list)
    shades: list[Shade] = field(default_factory=list)
    summary: str = ""
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    plot_bottom: int = HEIGHT - BOTTOM
    top: int = TOP

    @property
    def empty(self) -> bool:
        return not any(s.points for s in self.series)


def hours_by_node(points: Iterable[Mapping[str, Any]]) -> dict[str, dict[int, tuple[float, float]]]:
    """History points (resolution hour) as node -> hour -> (p50, p95), keeping
    only those whose figures are finite, ordered and within a day."""
    found: dict[str, dict[int, tuple[float, float]]] = {}
    for point in points:
        node, at = point.get("node"), point.get("at_ms")
        p50, p95 = point.get("latency_p50_ms"), point.get("latency_p95_ms")
        if not isinstance(node, str) or not isinstance(at, int) or isinstance(at, bool):
            continue
        low, high = as_latency(p50), as_latency(p95)
        if low is None or high is None or high < low:
            continue
        found.setdefault(node, {})[at - at % HOUR_MS] = (low, high)
    return found


def chart(
    title: str,
    span_ms: int,
    now_ms: int,
    hours: Mapping[str, Mapping[int, tuple[float, float]]],
    nodes: Sequence[str],
    history: Sequence[Interval],
) -> Chart:
    """The chart of the span_ms before now_ms."""
    start = now_ms - span_ms
    first_hour = start - start % HOUR_MS
    shown = {
        node: {h: v for h, v in hours.get(node, {}).items() if first_hour <= h <= now_ms}
        for node in nodes
    }
    top = max((p95 for by_hour in shown.values() for _, p95 in by_hour.values()), default=0.0)
    y_max = nice_ceiling(top)
    plot_w, plot_h = WIDTH - LEFT, HEIGHT - BOTTOM - TOP

    def x_of(at_ms: float) -> float:
        return round(LEFT + (at_ms - start) / span_ms * plot_w, 1)

    def y_of(ms: float) -> float:
        return round(TOP + plot_h - ms / y_max * plot_h, 1)

    series = []
    for index, node in enumerate(nodes):
        for kind, which in (("p95", 1), ("p50", 0)):
            drawn = sorted(shown[node].items())
            path = _path(
                # An hour at its middle; the one under way (or cut by the
                # window's start) within the window.
                [
                    (x_of(min(max(h + HOUR_MS / 2, start), now_ms)), y_of(v[which]))
                    for h, v in drawn
                ],
                [h for h, _ in drawn],
            )
            series.append(Series(node, index, kind, path, len(drawn)))
    shades = [
        Shade(x_of(lo), max(round(x_of(hi) - x_of(lo), 1), 1.0), f"DOWN {_hm(lo)} to {_hm(hi)}")
        for lo, hi in _outages(history, start, now_ms)
    ]
    ticks = [(y_of(v), _ms_label(v)) for v in (0.0, y_max / 2, y_max)]
    x_ticks = _time_ticks(start, span_ms, x_of)
    return Chart(title, y_max, ticks, x_ticks, series, shades, _summary(title, shown, nodes))


def charts(
    now_ms: int,
    points: Iterable[Mapping[str, Any]],
    nodes: Sequence[str],
    history: Sequence[Interval],
) -> list[Chart]:
    """The target page's three charts: 24 hours, 7 days, 30 days."""
    hours = hours_by_node(points)
    return [chart(title, span, now_ms, hours, nodes, history) for title, span in WINDOWS.items()]


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten at or above value (at least 1 ms)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)


def _path(points: list[tuple[float, float]], hours: list[int]) -> str:
    """Path data; a missing hour starts a new piece of line."""
    parts = []
    previous = None
    for (x, y), hour in zip(points, hours, strict=True):
        if previous is not None and hour - previous == HOUR_MS:
            parts.append(f"L{x},{y}")
        else:
            # A zero-length step: an hour alone still shows, as a dot.
            parts.append(f"M{x},{y} l0,0")
        previous = hour
    return " ".join(parts)


def _outages(history: Sequence[Interval], start: int, end: int) -> list[tuple[int, int]]:
    found = []
    for stretch in history:
        if stretch.state != "DOWN":
            continue
        lo = max(stretch.start_ms, start)
        hi = min(stretch.end_ms if stretch.end_ms is not None else end, end)
        if hi > lo:
            found.append((lo, hi))
    return found


def _time_ticks(
    start: int, span_ms: int, x_of: Callable[[float], float]
) -> list[tuple[float, str]]:
    step = span_ms // 4
    ticks = []
    for i in range(5):
        at = start + i * step
        moment = datetime.fromtimestamp(at / 1000, UTC)
        label = moment.strftime("%H:%M") if span_ms <= 24 * HOUR_MS else moment.strftime("%b %d")
        ticks.append((x_of(at), label))
    return ticks


def _ms_label(value: float) -> str:
    return f"{value / 1000:g} s" if value >= 1000 else f"{value:g} ms"


def _hm(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _summary(
    title: str, shown: Mapping[str, Mapping[int, tuple[float, float]]], nodes: Sequence[str]
) -> str:
    """What the chart shows, in words, for a screen reader."""
    parts = []
    for node in nodes:
        values = sorted(shown[node].values())
        if not values:
            parts.append(f"{node}: no measurements")
            continue
        p50s = sorted(v[0] for v in values)
        p95s = sorted(v[1] for v in values)
        parts.append(
            f"{node}: hourly median from {p50s[0]:.0f} to {p50s[-1]:.0f} ms, "
            f"p95 up to {p95s[-1]:.0f} ms"
        )
    return f"Response time over the last {title}. " + "; ".join(parts)
