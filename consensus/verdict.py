"""One node's verdict on one target: hysteresis over its own checks.

DOWN after ``fail_threshold`` consecutive failures, UP after
``success_threshold`` consecutive successes; a first success on a target never
seen before is enough for UP, since there is nothing to recover from. The
moves are data: ``MOVES[(state, outcome)]`` names the state a threshold-reaching
streak leads to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from consensus.errors import InvalidEntry
from consensus.flapping import FlapHistory
from consensus.hlc import Hlc
from consensus.lww import JsonValue
from consensus.settings import Settings


class VerdictState(StrEnum):
    UNKNOWN = "UNKNOWN"
    UP = "UP"
    DOWN = "DOWN"


class Outcome(StrEnum):
    OK = "ok"
    FAIL = "fail"


U, P, D = VerdictState.UNKNOWN, VerdictState.UP, VerdictState.DOWN

# Where a streak that reached its threshold leads; a streak below threshold
# keeps the state.
MOVES: dict[tuple[VerdictState, Outcome], VerdictState] = {
    (U, Outcome.OK): P,
    (U, Outcome.FAIL): D,
    (P, Outcome.OK): P,
    (P, Outcome.FAIL): D,
    (D, Outcome.OK): P,
    (D, Outcome.FAIL): D,
}

MAX_REASON_CHARS = 200


@dataclass(frozen=True, slots=True)
class Verdict:
    state: VerdictState = VerdictState.UNKNOWN
    # hlc of the first check of the streak that produced the current state:
    # the anchor both nodes use in event ids.
    since: Hlc | None = None
    fails: int = 0
    oks: int = 0
    streak_start: Hlc | None = None
    last_ok: bool | None = None
    reason: str = ""
    latency_ms: float | None = None
    checked: Hlc | None = None
    flap: FlapHistory = field(default_factory=FlapHistory)
    flap_since: Hlc | None = None
    # Set when this node re-checked on a peer's first failure, so the peer
    # learns that this side looked after it and saw what it saw.
    confirmed: Hlc | None = None
    # Wall time of the last check before ``since`` (and before
    # ``streak_start``), which had the other outcome: the state began
    # somewhere between the two, which is what the history estimates from.
    before_since_ms: int | None = None
    before_streak_ms: int | None = None
    # Set by its own node when its checks of the target stopped (a stalled
    # scheduler, a stuck probe): the view is old and does not vote until
    # the next check.
    stale: bool = False

    @property
    def flapping(self) -> bool:
        return self.flap.flapping

    def observe(
        self,
        ok: bool,
        at: Hlc,
        reason: str,
        latency_ms: float | None,
        settings: Settings,
    ) -> Verdict:
        """The verdict after one more check."""
        if ok and self._steady_up(settings):
            # The common case, kept cheap: nothing moves but the last check.
            return Verdict(
                self.state,
                self.since,
                self.fails,
                self.oks,
                self.streak_start,
                True,
                reason[:MAX_REASON_CHARS],
                latency_ms,
                at,
                self.flap,
                self.flap_since,
                self.confirmed,
                self.before_since_ms,
                self.before_streak_ms,
            )
        outcome = Outcome.OK if ok else Outcome.FAIL
        continues = self.last_ok is ok
        new_streak = not (continues and self.streak_start)
        streak_start = at if new_streak else self.streak_start
        before_streak_ms = self.before_streak_ms
        if new_streak:
            # The previous check had the other outcome (or there was none).
            previous = self.checked if self.last_ok is not None else None
            before_streak_ms = None if previous is None else previous.wall_ms
        cap = settings.streak_cap
        fails = min(self.fails + 1, cap) if not ok else 0
        oks = min(self.oks + 1, cap) if ok else 0
        threshold_reached = (
            fails >= settings.fail_threshold
            if not ok
            else (oks >= settings.success_threshold or self.state is VerdictState.UNKNOWN)
        )
        state = MOVES[(self.state, outcome)] if threshold_reached else self.state
        moved = state is not self.state
        since = streak_start if moved else self.since
        before_since_ms = before_streak_ms if moved else self.before_since_ms
        changed = self.last_ok is not None and not continues
        flap = self.flap.record(
            changed,
            at.wall_ms,
            settings.flap_high_pct,
            settings.flap_low_pct,
            settings.flap_calm_ms,
        )
        flap_since = self.flap_since
        if flap.flapping and not self.flap.flapping:
            flap_since = at
        elif not flap.flapping:
            flap_since = None
        return Verdict(
            state=state,
            since=since,
            fails=fails,
            oks=oks,
            streak_start=streak_start,
            last_ok=ok,
            reason=reason[:MAX_REASON_CHARS],
            latency_ms=latency_ms,
            checked=at,
            flap=flap,
            flap_since=flap_since,
            confirmed=self.confirmed,
            before_since_ms=before_since_ms,
            before_streak_ms=before_streak_ms,
        )

    def _steady_up(self, settings: Settings) -> bool:
        return (
            self.state is VerdictState.UP
            and self.last_ok is True
            and self.oks >= settings.streak_cap
            and self.flap.settled
        )

    def public(self) -> tuple[object, ...]:
        """The fields whose change is worth replicating at once."""
        return (
            self.state,
            self.since,
            self.fails,
            self.oks,
            self.flapping,
            self.confirmed,
            self.stale,
        )

    def to_value(self) -> JsonValue:
        return {
            "state": self.state.value,
            "since": _enc(self.since),
            "fails": self.fails,
            "oks": self.oks,
            "streak_start": _enc(self.streak_start),
            "last_ok": self.last_ok,
            "reason": self.reason,
            "latency_ms": self.latency_ms,
            "checked": _enc(self.checked),
            "flap": self.flap.changes,
            "flapping": self.flap.flapping,
            "flap_calm_since_ms": self.flap.calm_since_ms,
            "flap_since": _enc(self.flap_since),
            "confirmed": _enc(self.confirmed),
            "before_since_ms": self.before_since_ms,
            "before_streak_ms": self.before_streak_ms,
            "stale": self.stale,
        }

    @classmethod
    def from_value(cls, value: JsonValue) -> Verdict:
        if not isinstance(value, dict):
            raise InvalidEntry(f"verdict: expected an object, got {type(value).__name__}")
        try:
            latency = value.get("latency_ms")
            last_ok = value.get("last_ok")
            return cls(
                state=VerdictState(str(value["state"])),
                since=_dec(value.get("since")),
                fails=int(str(value.get("fails", 0))),
                oks=int(str(value.get("oks", 0))),
                streak_start=_dec(value.get("streak_start")),
                last_ok=last_ok if isinstance(last_ok, bool) else None,
                reason=str(value.get("reason", "")),
                latency_ms=float(latency) if isinstance(latency, int | float) else None,
                checked=_dec(value.get("checked")),
                flap=FlapHistory(
                    str(value.get("flap", "")),
                    bool(value.get("flapping")),
                    _int_or_none(value.get("flap_calm_since_ms")),
                ),
                flap_since=_dec(value.get("flap_since")),
                confirmed=_dec(value.get("confirmed")),
                before_since_ms=_ms_or_none(value.get("before_since_ms")),
                before_streak_ms=_ms_or_none(value.get("before_streak_ms")),
                stale=value.get("stale") is True,
            )
        except (KeyError, ValueError) as exc:
            raise InvalidEntry(f"verdict: {exc}") from exc


def _int_or_none(value: JsonValue) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _ms_or_none(value: JsonValue) -> int | None:
    """Epoch milliseconds, or None for anything else (an older entry)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53:
        return value
    return None


def _enc(hlc: Hlc | None) -> str | None:
    return None if hlc is None else hlc.encode()


def _dec(value: JsonValue) -> Hlc | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidEntry(f"hlc: expected text, got {value!r}")
    return Hlc.decode(value)
