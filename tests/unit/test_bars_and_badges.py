"""The 90-day bar's segments and the SVG badges: pure, exact."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from watchers.badges import latency_badge, status_badge, uptime_badge
from watchers.bars import segments
from watchers.storage import Interval
from watchers.uptime import DAY_MS

DAY0 = 1_795_000_000_000 - 1_795_000_000_000 % DAY_MS
H = 3_600_000


def test_quiet_days_merge_and_a_day_with_an_incident_stands_alone() -> None:
    now = DAY0 + 12 * H
    stretches = [
        Interval("t", "UP", "quorum", DAY0 - 40 * DAY_MS, DAY0 - 10 * DAY_MS + 5 * H),
        Interval("t", "DOWN", "quorum", DAY0 - 10 * DAY_MS + 5 * H, DAY0 - 10 * DAY_MS + 6 * H),
        Interval("t", "UP", "quorum", DAY0 - 10 * DAY_MS + 6 * H, None),
    ]
    found = segments(stretches, now)
    assert [(s.first_day, s.days, s.level) for s in found] == [
        (0, 49, "nodata"), (49, 30, "ok"), (79, 1, "major"), (80, 10, "ok"),
    ]  # fmt: skip
    assert found[2].label.endswith(": 95.833% up, 1 h 0 min down, 1 incident")
    assert sum(s.days for s in found) == 90
    assert (found[1].x, found[1].width) == (196, 119)


def test_badges_are_well_formed_svg_and_escape_their_text() -> None:
    for svg in (status_badge('<a href="x">', "DOWN"), uptime_badge("30d", 99.95),
                uptime_badge("7d", None), latency_badge(120.4)):  # fmt: skip
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg") and root.get("role") == "img"
    down = status_badge('<a href="x">', "DOWN")
    assert "&lt;a href=&quot;x&quot;&gt;" in down and "<a href" not in down
    assert "#e05d44" in down
    assert ">99.95%<" in uptime_badge("30d", 99.95) and ">no data<" in uptime_badge("7d", None)
    assert ">120 ms<" in latency_badge(120.4)
