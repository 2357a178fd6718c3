"""Families of targets: a parent (a host's ping, its nginx) and the targets
that depend on it. When a host falls, everything on it falls with it, and
one page should say so, not forty.

The rules, applied by whichever node is about to claim an event's post (the
designated sender, or the standby taking over), so one node decides and the
log carries its decision to the other:

- A child's DOWN while its parent is agreed DOWN is covered: recorded in
  full (history, incidents, uptime) and marked sent with ``covered_by``,
  never posted on its own; so is its note of trouble seen from one side
  while the parent is PARTIAL (or DOWN). Its UP is covered too while the
  parent's UP has not been told (that UP says which children are still down).
- The DOWN of a target in a family waits ``group_window_ms`` first, or
  the longest check interval in the family if that is longer (a child's
  check may fail before its parent's is even made), and longer, up to
  three such windows, while a relative is still being decided (failing but
  not yet agreed DOWN). A parent's UP waits the same, so children coming
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

# The notices a family shares; the first two are covered while the parent
# is in one of these states (its own page tells of the child), an UP while
# the parent's UP has not been told.
COVERED_WHILE = {
    Notice.DOWN: (AgreedState.DOWN,),
    Notice.PARTIAL_LASTING: (AgreedState.PARTIAL, AgreedState.DOWN),
}
FAMILY_NOTICES = (Notice.DOWN, Notice.PARTIAL_LASTING, Notice.UP)
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
        if event.notice is Notice.UP:
            # Any target's, family or not: nobody heard of the trouble.
            unheard = self._answers_nothing_told(event)
            if unheard is not None:
                return Covered(unheard)
        parent = self.parents.get(target)
        children = self.children_of(target)
        if event.notice not in FAMILY_NOTICES or (parent is None and not children):
            return None
        if parent is not None:
            covering = self._covering(event, parent)
            if covering is not None:
                return Covered(covering)
        if event.notice is Notice.UP and not children:
            return None
        began = self._family_since.setdefault(event.id, now_ms)
        relatives = [*children, *([parent] if parent is not None else [])]
        # Long enough for every relative to be checked once more: a page
        # cannot list what nobody has looked at since.
        window = max(
            self.settings.group_window_ms,
            *(self.intervals.get(t, 0) for t in (target, *relatives)),
        )
        if now_ms < began + window:
            return Wait(began + window)
        limit = began + MAX_WINDOWS * window
        if event.notice is Notice.PARTIAL_LASTING and parent is not None:
            # A parent seen down from one side gets its own note in time:
            # the child's waits for it (or for both to be back).
            limit = max(limit, self._note_due_ms(parent) + window)
        if (
            event.notice is Notice.PARTIAL_LASTING
            and now_ms < limit + MAX_WINDOWS * window
            and self._seen_up_again(target)
        ):
            # Seen up again from every side: its UP is a check or two away,
            # and overtakes a note nobody needs any more.
            return Wait(now_ms + LOOK_AGAIN_MS)
        if now_ms < limit and any(self._undecided(t, event.notice) for t in relatives):
            return Wait(now_ms + LOOK_AGAIN_MS)
        return None

    def _covering(self, event: Event, parent: str) -> str | None:
        record = self.record(parent)
        if event.notice in COVERED_WHILE:
            # Only by a parent whose own page was decided: one still
            # waiting for its note may never have one.
            troubled = COVERED_WHILE[event.notice]
            if record.state not in troubled or record.paged not in troubled:
                return None
            return record.event or f"parent {parent}"
        told = self._latest_told(event)
        if told is None or self.covered_by(told) is None:
            return None  # users were told of its trouble: they hear it is over
        # Posted, not covered: a parent's UP that answered nothing told
        # (its note overtaken) told nobody that this child is still down.
        told_up = (
            record.state is AgreedState.UP
            and record.event is not None
            and self.log.get(keys.sent(record.event)) is not None
            and self.covered_by(record.event) is None
        )
        return None if told_up else (record.event or f"parent {parent}")

    def _note_due_ms(self, target: str) -> int:
        """When target's note of trouble seen from one side is due (as the
        core's timed notes count it), if it is PARTIAL without one."""
        entry = self.log.get(keys.state(target))
        record = self.record(target)
        if entry is None or record.state is not AgreedState.PARTIAL or record.paged is not None:
            return 0
        began = max(entry.hlc.wall_ms, self.started_ms)
        return began + self.settings.partial_note_after_ms

    def _answers_nothing_told(self, up: Event) -> str | None:
        """The trouble an UP answers, when it never went out: a note held
        for its family and overtaken by this very recovery. Nobody heard
        of the trouble, so nobody needs to hear it is over."""
        told = self._latest_told(up)
        if told is None or self.log.get(keys.sent(told)) is not None:
            return None
        if self.log.get(keys.claim(told)) is not None:
            # Claimed: its post may be on its way, its sent mark not yet
            # here. Users may have heard of the trouble, so they hear it is
            # over (a spare all-clear rather than a lost one).
            return None
        return told if self.order.superseded(told) else None

    def _latest_told(self, up: Event) -> str | None:
        """The trouble an UP answers: the target's latest DOWN or note."""
        for earlier in reversed(self.order.earlier(up.id)):
            found = self.event(earlier)
            if found is not None and found.notice in COVERED_WHILE:
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
        if notice is Notice.PARTIAL_LASTING:
            if state is AgreedState.PARTIAL:
                return self.record(target).paged is None  # its own note may come
            return state is AgreedState.UP and any(
                v.last_ok is False for v in self._views_of(target)
            )
        troubled = state in (AgreedState.DOWN, AgreedState.PARTIAL)
        return troubled and any(v.last_ok for v in self._views_of(target))

    def _seen_up_again(self, target: str) -> bool:
        """Every side's last check passed: its UP is a check or two away."""
        return all(v.last_ok for v in self._views_of(target))

    def _views_of(self, target: str) -> list[Verdict]:
        views = [self.view(n, target) for n in self.nodes if n != self.node]
        own = self.verdicts.get(target) or self.view(self.node, target)
        return [own, *views]

    def _with_family(self, event: Event) -> Event:
        """A parent's page names its children agreed DOWN as it goes out."""
        children = self.children_of(event.subject)
        if not children or event.notice not in FAMILY_NOTICES:
            return event
        # A note of trouble seen from one side lists its children in any
        # trouble; a DOWN or an UP, its children down.
        troubled = COVERED_WHILE[Notice.PARTIAL_LASTING]
        if event.notice is not Notice.PARTIAL_LASTING:
            troubled = COVERED_WHILE[Notice.DOWN]
        down: list[JsonValue] = [c for c in children if self.record(c).state in troubled]
        detail: dict[str, JsonValue] = {**event.detail, "children": len(children),
                                        "children_down": down}  # fmt: skip
        return replace(event, detail=detail)
