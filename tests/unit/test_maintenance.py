"""Maintenance windows from the config: one-off and weekly, by id or tag."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from watchers.maintenance import MaintenanceWindow, in_maintenance
from watchers.probes.tcp import TcpTarget

DB = TcpTarget(kind="tcp", id="db", host="10.0.0.5", port=5432, tags=("customer",))
WEB = TcpTarget(kind="tcp", id="web", host="10.0.0.6", port=443)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def window(**fields: object) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate(fields)


def test_a_one_off_window_covers_its_targets_from_start_to_end() -> None:
    w = window(targets=["db"], start=at("2026-12-01T02:00"), end=at("2026-12-01T03:00"))
    assert in_maintenance([w], [DB, WEB], at("2026-12-01T01:59")) == set()
    assert in_maintenance([w], [DB, WEB], at("2026-12-01T02:00")) == {"db"}
    assert in_maintenance([w], [DB, WEB], at("2026-12-01T03:00")) == set()


def test_a_weekly_window_by_tag_and_one_across_midnight() -> None:
    sunday = window(tags=["customer"], days=["sun"], **{"from": "02:00", "to": "03:00"})
    assert in_maintenance([sunday], [DB, WEB], at("2026-11-29T02:30")) == {"db"}  # a Sunday
    assert in_maintenance([sunday], [DB, WEB], at("2026-11-30T02:30")) == set()
    night = window(targets=["web"], days=["sat"], **{"from": "23:00", "to": "01:00"})
    assert night.active(at("2026-11-28T23:30"))  # Saturday evening
    assert night.active(at("2026-11-29T00:30"))  # the morning after
    assert not night.active(at("2026-11-29T23:30"))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"start": at("2026-12-01T02:00"), "end": at("2026-12-01T03:00")}, "name the targets"),
        ({"targets": ["db"]}, "give either start and end"),
        ({"targets": ["db"], "start": at("2026-12-01T03:00"), "end": at("2026-12-01T02:00")},
         "start before end"),
        ({"targets": ["db"], "days": ["sun"]}, "needs days, from and to"),
        ({"targets": ["db"], "start": datetime(2026, 12, 1), "end": at("2026-12-02T00:00")},
         "with an offset"),
        ({"targets": ["db"], "days": ["sunday"], "from": "02:00", "to": "03:00"}, "sun"),
    ],
)  # fmt: skip
def test_bad_windows_are_refused_with_the_reason(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        window(**fields)
