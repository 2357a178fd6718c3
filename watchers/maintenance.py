"""Maintenance windows from the config: which targets are in one right now.

A window names targets by id or by tag and is either one-off (``start``,
``end``, TOML datetimes with an offset) or weekly (``days``, ``from``, ``to``
in UTC, e.g. every Sunday 02:00-03:00). While a target is in a window its
agreed state is MAINTENANCE: checks and history go on, nobody is paged.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time
from typing import Literal

from pydantic import Field, field_validator, model_validator

from watchers.probes import AnyTarget
from watchers.probes.base import Strict

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class MaintenanceWindow(Strict):
    targets: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    days: tuple[Day, ...] = ()
    from_utc: time | None = Field(default=None, alias="from")
    to_utc: time | None = Field(default=None, alias="to")
    reason: str = Field(default="", max_length=200)

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expected a date and time with an offset, such as 2026-12-01T02:00Z")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> MaintenanceWindow:
        if not self.targets and not self.tags:
            raise ValueError("name the targets or tags the window covers")
        once = self.start is not None or self.end is not None
        weekly = bool(self.days) or self.from_utc is not None or self.to_utc is not None
        if once == weekly:
            raise ValueError("give either start and end, or days with from and to")
        if once and (self.start is None or self.end is None or self.end <= self.start):
            raise ValueError("a one-off window needs start before end")
        if weekly and (not self.days or self.from_utc is None or self.to_utc is None):
            raise ValueError("a weekly window needs days, from and to")
        return self

    def covers(self, target: AnyTarget) -> bool:
        return target.id in self.targets or bool(set(self.tags) & set(target.tags))

    def active(self, now: datetime) -> bool:
        if self.start is not None and self.end is not None:
            return self.start <= now < self.end
        assert self.from_utc is not None and self.to_utc is not None
        now = now.astimezone(UTC)
        today, clock = DAYS[now.weekday()], now.time()
        if self.from_utc <= self.to_utc:
            return today in self.days and self.from_utc <= clock < self.to_utc
        # Across midnight: the evening of a listed day, or the next morning.
        yesterday = DAYS[(now.weekday() - 1) % 7]
        return (today in self.days and clock >= self.from_utc) or (
            yesterday in self.days and clock < self.to_utc
        )


def in_maintenance(
    windows: Iterable[MaintenanceWindow], targets: Iterable[AnyTarget], now: datetime
) -> set[str]:
    live = [w for w in windows if w.active(now)]
    return {t.id for t in targets if any(w.covers(t) for w in live)}
