"""The pair's agreed state for a target, computed from every node's verdict.

``assess`` reads the verdicts of the voters and says what the state should be;
``advance`` moves the agreed record there and names the notice the move
announces, if any. The notices per move are data (``NOTICES``); a repeat of
what users were already told is dropped by the ``paged`` memory in the record.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from consensus.errors import IllegalTransition, InvalidEntry
from consensus.hlc import Hlc
from consensus.lww import JsonValue
from consensus.settings import Settings
from consensus.verdict import Verdict, VerdictState


class AgreedState(StrEnum):
    UNKNOWN = "UNKNOWN"
    UP = "UP"
    DOWN = "DOWN"
    PARTIAL = "PARTIAL"
    FLAPPING = "FLAPPING"
    MAINTENANCE = "MAINTENANCE"


class Mode(StrEnum):
    QUORUM = "quorum"
    SINGLE_VANTAGE = "single_vantage"


class Notice(StrEnum):
    DOWN = "DOWN"
    UP = "UP"
    PARTIAL_LASTING = "PARTIAL_LASTING"
    FLAPPING_STARTED = "FLAPPING_STARTED"
    FLAPPING_SETTLED = "FLAPPING_SETTLED"
    NODE_ISOLATED = "NODE_ISOLATED"
    PEER_LOST = "PEER_LOST"
    PEER_BACK = "PEER_BACK"
    # A node's wall clock stepped, or it restarted with its hlc far ahead.
    CLOCK_JUMPED = "CLOCK_JUMPED"
    # Not moves of the agreed state: a timed reminder, and a certificate
    # crossing one of its expiry thresholds.
    STILL_DOWN = "STILL_DOWN"
    TLS_EXPIRING = "TLS_EXPIRING"
    # A domain's registration (its registry's RDAP) crossing an expiry threshold.
    DOMAIN_EXPIRING = "DOMAIN_EXPIRING"
    # A DOWN nobody acknowledged in time, posted once more to the escalation topic.
    ESCALATED = "ESCALATED"
    # Once a week, per topic: the week's uptime, outages and the pair's health.
    WEEKLY_REPORT = "WEEKLY_REPORT"


S = AgreedState
_ALL = tuple(AgreedState)

# The notice each move announces; moves not listed announce nothing.
NOTICES: dict[tuple[AgreedState, AgreedState], Notice] = {
    **{(s, S.DOWN): Notice.DOWN for s in _ALL if s not in (S.DOWN, S.FLAPPING)},
    **{(s, S.UP): Notice.UP for s in (S.DOWN, S.PARTIAL, S.MAINTENANCE, S.UNKNOWN)},
    **{(s, S.FLAPPING): Notice.FLAPPING_STARTED for s in _ALL if s is not S.FLAPPING},
    **{(S.FLAPPING, s): Notice.FLAPPING_SETTLED for s in (S.UP, S.DOWN, S.PARTIAL)},
}

# What users were last told, so that a bounce (DOWN, PARTIAL, DOWN) pages once
# and a recovery is announced only after trouble was.
PAGED_AFTER: dict[Notice, AgreedState | None] = {
    Notice.DOWN: S.DOWN,
    Notice.UP: None,
    Notice.PARTIAL_LASTING: S.PARTIAL,
    Notice.FLAPPING_STARTED: S.FLAPPING,
}


@dataclass(frozen=True, slots=True)
class Assessment:
    state: AgreedState
    mode: Mode
    anchor: Hlc | None
    voters: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AgreedRecord:
    """The replicated agreed state of one target (key ``state/<target>``).

    Its value is a function of the decision alone, so both nodes that make the
    same move write the same value."""

    state: AgreedState = AgreedState.UNKNOWN
    mode: Mode = Mode.QUORUM
    anchor: Hlc | None = None
    event: str | None = None
    paged: AgreedState | None = None

    @property
    def since_ms(self) -> int | None:
        return None if self.anchor is None else self.anchor.wall_ms

    def to_value(self) -> JsonValue:
        return {
            "state": self.state.value,
            "mode": self.mode.value,
            "anchor": None if self.anchor is None else self.anchor.encode(),
            "event": self.event,
            "paged": None if self.paged is None else self.paged.value,
        }

    @classmethod
    def from_value(cls, value: JsonValue) -> AgreedRecord:
        if not isinstance(value, dict):
            raise InvalidEntry(f"agreed state: expected an object, got {value!r}")
        try:
            anchor = value.get("anchor")
            paged = value.get("paged")
            event = value.get("event")
            return cls(
                state=AgreedState(str(value["state"])),
                mode=Mode(str(value.get("mode", Mode.QUORUM.value))),
                anchor=Hlc.decode(anchor) if isinstance(anchor, str) else None,
                event=event if isinstance(event, str) else None,
                paged=AgreedState(paged) if isinstance(paged, str) else None,
            )
        except (KeyError, ValueError) as exc:
            raise InvalidEntry(f"agreed state: {exc}") from exc


def assess(
    current: AgreedState,
    views: Mapping[str, Verdict],
    voters: Collection[str],
    node_count: int,
    canary_pass: Mapping[str, Hlc | None],
    settings: Settings,
    in_maintenance: bool = False,
    shift_ms: Mapping[str, int] | None = None,
) -> Assessment | None:
    """What the agreed state should be; None when no voter can say.

    ``shift_ms`` puts each node's wall stamps in one time (what to add to
    them): the nodes' clocks may differ by minutes, and a peer's "when" is
    compared with ours only once both are in the same time."""
    active = tuple(sorted(voters))
    if in_maintenance:
        return Assessment(S.MAINTENANCE, Mode.QUORUM, None, active)
    if not active:
        return None
    mode = Mode.SINGLE_VANTAGE if len(active) == 1 and node_count > 1 else Mode.QUORUM
    seen = {n: views.get(n, Verdict()) for n in active}
    flapping = [seen[n].flap_since for n in active if seen[n].flapping]
    # Flapping starts when most voters see it and ends when most have
    # settled: one node settling first must not end it, or the other,
    # left alone by a crash, would start the same flapping again.
    if 2 * len(flapping) > len(active) or (
        current is S.FLAPPING and flapping and 2 * len(flapping) == len(active)
    ):
        return Assessment(S.FLAPPING, mode, _latest(flapping), active)
    if mode is Mode.SINGLE_VANTAGE:
        return _assess_alone(current, active[0], views, canary_pass, settings, shift_ms or {})
    down = [seen[n].since for n in active if seen[n].state is VerdictState.DOWN]
    up = [seen[n].since for n in active if seen[n].state is VerdictState.UP]
    if 2 * len(down) > len(active):
        return Assessment(S.DOWN, mode, _latest(down), active)
    if down:
        return Assessment(S.PARTIAL, mode, _latest(down), active)
    if up:
        return Assessment(S.UP, mode, _latest(up), active)
    return None


def _assess_alone(
    current: AgreedState,
    voter: str,
    views: Mapping[str, Verdict],
    canary_pass: Mapping[str, Hlc | None],
    settings: Settings,
    shift_ms: Mapping[str, int],
) -> Assessment | None:
    """Single vantage: a longer failure streak, a canary pass after the last
    failure, and no silent peer that saw the target up after this streak began."""
    mine = views.get(voter, Verdict())
    active = (voter,)
    if mine.state is VerdictState.UP:
        return Assessment(S.UP, Mode.SINGLE_VANTAGE, mine.since, active)
    if mine.state is not VerdictState.DOWN:
        return None
    if current is S.DOWN:
        return Assessment(S.DOWN, Mode.SINGLE_VANTAGE, mine.since, active)
    passed = canary_pass.get(voter)
    confirmed = (
        mine.fails >= settings.single_vantage_fail_threshold
        and passed is not None
        and mine.checked is not None
        and passed > mine.checked
        and not _contradicted(voter, mine, views, shift_ms)
    )
    state = S.DOWN if confirmed else S.PARTIAL
    return Assessment(state, Mode.SINGLE_VANTAGE, mine.since, active)


def _contradicted(
    voter: str, mine: Verdict, views: Mapping[str, Verdict], shift_ms: Mapping[str, int]
) -> bool:
    """A silent peer that saw the target answer after our streak began
    (each stamp read in one time: a peer's clock minutes ahead must not
    make its last UP look newer than our failures)."""
    start = mine.streak_start
    if start is None:
        return False
    began = start.wall_ms + shift_ms.get(voter, 0)
    for node, view in views.items():
        if node == voter or view.state is not VerdictState.UP:
            continue
        seen_ms = _last_seen_up_ms(view)
        if seen_ms is not None and seen_ms + shift_ms.get(node, 0) >= began:
            return True
    return False


def _last_seen_up_ms(view: Verdict) -> int | None:
    """When a node whose verdict is UP last saw the target answer (its own
    wall time). Its latest checks may have failed already, a streak too
    short to move it (the re-check on our first failure, then it fell
    silent): those say the target is failing, not up."""
    if view.last_ok is False:
        return view.before_streak_ms
    heard = max((h for h in (view.checked, view.confirmed) if h is not None), default=None)
    return None if heard is None else heard.wall_ms


def _latest(anchors: list[Hlc | None]) -> Hlc | None:
    present = [a for a in anchors if a is not None]
    return max(present) if present else None


def advance(record: AgreedRecord, assessment: Assessment) -> tuple[AgreedRecord, Notice | None]:
    """Move the agreed record to the assessed state; the notice to announce.

    The caller names the event of an announced move with ``with_event``."""
    if assessment.state is record.state:
        raise IllegalTransition("agreed", record.state.value, f"assess {assessment.state.value}")
    notice = NOTICES.get((record.state, assessment.state))
    if notice is Notice.DOWN and record.paged is S.DOWN:
        notice = None
    if notice is Notice.UP and record.paged not in (S.DOWN, S.PARTIAL):
        notice = None
    paged = record.paged
    if notice is Notice.FLAPPING_SETTLED:
        paged = S.DOWN if assessment.state is S.DOWN else None
    elif notice is not None:
        paged = PAGED_AFTER.get(notice, paged)
    moved = AgreedRecord(
        state=assessment.state,
        mode=assessment.mode,
        anchor=assessment.anchor,
        event=None,
        paged=paged,
    )
    return moved, notice


def with_event(record: AgreedRecord, event_id: str) -> AgreedRecord:
    return replace(record, event=event_id)


def note_partial(record: AgreedRecord, event_id: str) -> AgreedRecord:
    """The PARTIAL state has lasted past its grace and its note goes out."""
    if record.state is not S.PARTIAL or record.paged is not None:
        raise IllegalTransition("agreed", record.state.value, "note partial")
    return replace(record, event=event_id, paged=S.PARTIAL)
