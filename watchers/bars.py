"""The 90-day uptime bar: one segment per day, runs of alike days merged.

Pure: from agreed-state intervals to segments a template draws. A healthy
target's 90 days are one segment instead of 90, which keeps a page of a
thousand targets small; a day with downtime or an incident is always its
own segment, so hover and focus show that day's figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from watchers.uptime import Stretch, Uptime, daily

BAR_DAYS = 90


@dataclass(frozen=True, slots=True)
class Segment:
    first_day: int  # index of its first day, 0 = the oldest
    days: int
    level: str  # ok, minor, major, down, maint, nodata
    label: str  # what hover, focus and screen readers get

    @property
    def x(self) -> int:
        return self.first_day * 4

    @property
    def width(self) -> int:
        return self.days * 4 - 1


def level(day: Uptime) -> str:
    pct = day.percent
    if pct is None:
        return "maint" if day.seconds.get("MAINTENANCE") else "nodata"
    if pct >= 100 and not day.incidents:
        return "ok"
    if pct >= 99:
        return "minor"
    if pct >= 95:
        return "major"
    return "down"


def _date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def _day_label(day: Uptime) -> str:
    pct = day.percent
    if pct is None:
        what = "in maintenance" if day.seconds.get("MAINTENANCE") else "no data"
        return f"{_date(day.window_start_ms)}: {what}"
    down = day.down_s
    return (
        f"{_date(day.window_start_ms)}: {pct:.3f}% up, {_seconds(down)} down, "
        f"{day.incidents} incident{'s' if day.incidents != 1 else ''}"
    )


def _seconds(value: float) -> str:
    value = round(value)
    if value < 60:
        return f"{value} s"
    if value < 3600:
        return f"{value // 60} min {value % 60} s"
    return f"{value // 3600} h {value % 3600 // 60} min"


def segments(stretches: Sequence[Stretch], now_ms: int, days: int = BAR_DAYS) -> list[Segment]:
    found = daily(stretches, days, now_ms)
    out: list[Segment] = []
    run_start = 0
    for i, day in enumerate(found):
        quiet = level(day) in ("ok", "nodata", "maint")
        last = i == len(found) - 1
        if quiet and not last and level(found[i + 1]) == level(day):
            continue  # the run goes on
        first = found[run_start]
        if i == run_start:
            label = _day_label(day)
        else:
            what = {"ok": "100% up, no incidents", "nodata": "no data", "maint": "in maintenance"}[
                level(day)
            ]
            label = f"{_date(first.window_start_ms)} to {_date(day.window_start_ms)}: {what}"
        out.append(Segment(run_start, i - run_start + 1, level(day), label))
        run_start = i + 1
    return out
