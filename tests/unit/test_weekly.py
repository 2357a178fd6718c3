"""The weekly report: when it is due (against the calendar), and what it
says of a week, against stretches and node events the test wrote down."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.agreement import Mode, Notice
from consensus.events import Event
from consensus.hlc import Hlc
from consensus.reports import next_due_ms, report_events, week_start_ms
from watchers import weekly

HOUR_MS = 3_600_000
WEEK_MS = 7 * 24 * HOUR_MS
# Monday 2026-11-23 00:00 UTC.
MONDAY = int(datetime(2026, 11, 23, tzinfo=UTC).timestamp() * 1000)


@dataclass(frozen=True)
class Stretch:
    state: str
    start_ms: int
    end_ms: int | None


def test_the_time_in_the_week_is_read_as_written_and_refused_naming_what_is_wrong() -> None:
    assert weekly.when("mon 00:00") == 0
    assert weekly.when("Monday 08:30") == 8 * HOUR_MS + 30 * 60_000
    assert weekly.when("sun 23:59") == WEEK_MS - 60_000
    wrong = [("someday 08:00", "such as 'mon 08:00'"), ("mon 8", "such as"),
             ("tue 24:00", "00:00 to 23:59"), ("wed 10:75", "00:00 to 23:59")]  # fmt: skip
    for bad, says in wrong:
        with pytest.raises(ValueError, match=says):
            weekly.when(bad)


@given(st.integers(min_value=0, max_value=4_000_000_000_000), st.integers(0, WEEK_MS - 1))
def test_a_report_is_due_at_its_time_in_the_calendar_week(now_ms: int, at_ms: int) -> None:
    day = datetime.fromtimestamp(now_ms / 1000, UTC).date()
    monday = datetime.combine(day - timedelta(days=day.weekday()), datetime.min.time(), UTC)
    assert week_start_ms(now_ms) == int(monday.timestamp() * 1000)
    due = next_due_ms(now_ms, at_ms)
    assert now_ms < due <= now_ms + WEEK_MS
    assert (due - int(monday.timestamp() * 1000)) % WEEK_MS == at_ms


def test_each_topic_gets_one_report_whose_id_both_nodes_compute_alike() -> None:
    due = MONDAY + WEEK_MS + 8 * HOUR_MS
    first = report_events(["ops", "shop", "ops"], due, ("huginn", "muninn"))
    again = report_events(["shop", "ops"], due, ("huginn",))
    assert [e.subject for e in first] == ["report:ops", "report:shop"]
    assert [e.id for e in first] == [e.id for e in again]
    assert first[0].detail == {"topic": "ops", "week_start_ms": due - WEEK_MS, "week_end_ms": due}
    later = report_events(["ops"], due + WEEK_MS, ("huginn",))
    assert later[0].id != first[0].id


def node_event(node: str, notice: Notice, at_ms: int) -> Event:
    subject = f"node:{node}"
    return Event(f"{node}{at_ms}", subject, notice, notice.value, "", Hlc(at_ms, 0, "x"),
                 Mode.QUORUM, ("huginn",))  # fmt: skip


def test_the_week_in_figures_from_the_stretches_the_test_wrote() -> None:
    start, end = MONDAY, MONDAY + WEEK_MS
    shop = weekly.Watched("shop", ("web",), [
        Stretch("UP", start - HOUR_MS, start + 10 * HOUR_MS),
        Stretch("DOWN", start + 10 * HOUR_MS, start + 11 * HOUR_MS),  # 1 h down
        Stretch("UP", start + 11 * HOUR_MS, None),
    ])  # fmt: skip
    blog = weekly.Watched("blog", ("web", "eu"), [Stretch("UP", start - HOUR_MS, None)])
    # Watched only from the middle of the week, down for its last hour:
    # judged on the time it was watched, so worse than shop.
    new = weekly.Watched("new", (), [
        Stretch("UP", start + 84 * HOUR_MS, end - HOUR_MS),
        Stretch("DOWN", end - HOUR_MS, None),
    ])  # fmt: skip
    events = [
        node_event("muninn", Notice.PEER_LOST, start - HOUR_MS),  # cut off since before
        node_event("muninn", Notice.PEER_BACK, start + HOUR_MS),
        node_event("huginn", Notice.NODE_ISOLATED, start + 50 * HOUR_MS),
        node_event("huginn", Notice.PEER_BACK, start + 50 * HOUR_MS + 600_000),
        node_event("muninn", Notice.PEER_LOST, end - 1_800_000),  # still cut off at the end
    ]
    found = weekly.report([shop, blog, new], events, start, end)
    shop_pct = 100 * (1 - 1 / 168)
    new_pct = 100 * (1 - 1 / 84)
    assert found["targets"] == 3 and found["outages"] == 2
    assert found["down_s"] == 3600 + 3600
    assert found["uptime_pct"] == pytest.approx((shop_pct + 100 + new_pct) / 3, abs=1e-3)
    assert found["by_tag"] == [
        {"tag": "(no tag)", "targets": 1, "uptime_pct": pytest.approx(new_pct, abs=1e-3)},
        {"tag": "eu", "targets": 1, "uptime_pct": 100.0},
        {"tag": "web", "targets": 2, "uptime_pct": pytest.approx((shop_pct + 100) / 2, abs=1e-3)},
    ]
    assert [w["target"] for w in found["worst"]] == ["new", "shop"]  # blog never went down
    assert [w["down_s"] for w in found["worst"]] == [3600, 3600]
    assert found["pair"] == {
        "huginn": {"cut_off_s": 600, "times": 1},
        "muninn": {"cut_off_s": 3600 + 1800, "times": 2},
    }


def test_each_target_counts_in_the_topic_its_notifications_go_to() -> None:
    targets = {"a": (None, ("web",)), "b": ("own", ("web",)), "c": (None, ("db", "web")),
               "d": (None, ())}  # fmt: skip
    routes = {"db": "dba", "web": "webteam"}
    assert weekly.topics_of(targets, routes, "ops") == {
        "dba": ["c"], "own": ["b"], "ops": ["d"], "webteam": ["a"],
    }  # fmt: skip
