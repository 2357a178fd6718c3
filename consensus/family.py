"""Families of targets: a parent (a host's ping, its nginx) and the targets
that depend on it. When a host falls, everything on it falls with it, and
one page should say so, not forty.

The rules, applied by whichever node is about to claim an event's post (the
designated sender, or the standby taking over), so one node decides and the
log carries its decision to the other:

- A child's DOWN while its parent is agreed DOWN is covered: recorded in
  full (history, incidents, uptime) and marked sent with ``covered_by``,
  never posted on its own. Its UP is covered too while the parent's UP has
  not been told (that UP says which children are still down).
- The DOWN of a target in a family waits ``group_window_ms`` first (a
  child's check may fail before its parent's does), and longer, up to
  three windows, while a relative is still being decided (failing but not
  yet agreed DOWN). A parent's UP waits the window too, so children coming
  back with it are not listed as still down.
- A parent's page lists its children agreed DOWN when it is posted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from consensus import keys
from consensus.agreement import AgreedState, Notice
from consensus.core_state import CoreState
from consensus.events import Event
from consensus.lww import JsonValue
from consensus.verdict import Verdict

# How often a held page looks again at a family still being decided.
LOOK_AGAIN_MS = 2_000
# A held page waits at most this many windows, whatever its family does.
MAX_WINDOWS = 3


@dataclass(frozen=True, slots=True)
class Wait:
    until_ms: int


@dataclass(frozen=True, slots=True)
class Covered:
    """Told by another event's page (the parent's): never posted alone."""

    by: str


class Families(CoreState):
    """Which targets depend on which, and what that does to their pages."""

    def set_parent(self, target: str, parent: str | None) -> None:
        """The shell says what target depends on (None: nothing)."""
        if parent is None:
            self.parents.pop(target, None)
        else:
            self.parents[target] = parent

    def children_of(self, target: str) -> list[str]:
        return sorted(child for child, parent in self.parents.items() if parent == target)

    def covered_by(self, event_id_: str) -> str | None:
        """The event whose page told of this one, when it was covered."""
        sent = self.log.get(keys.sent(event_id_))
        value = None if sent is None else sent.value
        found = value.get("covered_by") if isinstance(value, dict) else None
        return found if isinstance(found, str) else None

    def _family_says(self, event: Event, now_ms: int) -> Wait | Covered | None:
        """Whether the page of event may go now (None), waits, or is told
        by its parent's page."""
        target = event.subject
        parent = self.parents.get(target)
        children = self.children_of(target)
        if event.notice not in (Notice.DOWN, Notice.UP) or (parent is None and not children):
            return None
        if parent is not None:
            covering = self._covering(event, parent)
            if covering is not None:
                return Covered(covering)
        if event.notice is Notice.UP and not children:
            return None
        began = self._family_since.setdefault(event.id, now_ms)
        window = self.settings.group_window_ms
        if now_ms < began + window:
            return Wait(began + window)
        relatives = [*children, *([parent] if parent is not None else [])]
        if now_ms < began + MAX_WINDOWS * window and any(
            self._undecided(t, event.notice) for t in relatives
        ):
            return Wait(now_ms + LOOK_AGAIN_MS)
        return None

    def _covering(self, event: Event, parent: str) -> str | None:
        record = self.record(parent)
        if event.notice is Notice.DOWN:
            if record.state is not AgreedState.DOWN:
                return None
            return record.event or f"parent {parent}"
        down = self._latest_down(event)
        if down is None or self.covered_by(down) is None:
            return None  # users were told it was down: they hear it is back
        told_up = record.state is AgreedState.UP and (
            record.event is None or self.log.get(keys.sent(record.event)) is not None
        )
        return None if told_up else (record.event or f"parent {parent}")

    def _latest_down(self, up: Event) -> str | None:
        for earlier in reversed(self.order.earlier(up.id)):
            found = self.event(earlier)
            if found is not None and found.notice is Notice.DOWN:
                return earlier
        return None

    def _undecided(self, target: str, notice: Notice) -> bool:
        """A relative whose checks say it is moving the same way as the
        page (failing, or back up) but whose agreed state has not moved yet."""
        state = self.record(target).state
        if notice is Notice.DOWN:
            if state is AgreedState.DOWN:
                return False
            return state is AgreedState.PARTIAL or any(
                v.last_ok is False for v in self._views_of(target)
            )
        return state is AgreedState.DOWN and any(v.last_ok for v in self._views_of(target))

    def _views_of(self, target: str) -> list[Verdict]:
        views = [self.view(n, target) for n in self.nodes if n != self.node]
        own = self.verdicts.get(target) or self.view(self.node, target)
        return [own, *views]

    def _with_family(self, event: Event) -> Event:
        """A parent's page names its children agreed DOWN as it goes out."""
        children = self.children_of(event.subject)
        if not children or event.notice not in (Notice.DOWN, Notice.UP):
            return event
        down: list[JsonValue] = [c for c in children if self.record(c).state is AgreedState.DOWN]
        detail: dict[str, JsonValue] = {**event.detail, "children": len(children),
                                        "children_down": down}  # fmt: skip
        return replace(event, detail=detail)
