"""The agreed history of a target: a pure function of its replicated moves.

Every agreed move a node makes is an entry of its own
(``move/<target>/<hlc>``, single writer: the hlc names the node), carrying
the evidence behind it: when each voter's streak began. ``derive`` orders a
target's moves by their hlc and turns them into stretches of agreed state, so
every node that holds the same moves tells the same history, whoever made
them and in whatever order they arrived.

A stretch starts when its evidence says the state began, not when the pair
finished deciding. Each voter's evidence is a bracket: its last check that
still saw the old state and its first that saw the new one (DOWN: the last
answer and the first failure; UP: the other way round; PARTIAL on the way
in like DOWN, on the way out like UP). The last check of the old state
among all voters bounds the start from below, the first check after it that
saw the new state bounds it from above; the start is the middle, the
estimate least far from the truth (the first failing check alone is always
late, by half an interval on average). A voter that saw the new state long
before the others (its own path failing first) thus does not pull a DOWN
back over the time the others still saw the target answer. Evidence older than the previous
stretch belongs to that stretch, not to this move; without evidence (a voter
leaving, a maintenance window) the decision time is the start. A stretch of
no length (a PARTIAL on the way into a DOWN whose first failure it shares)
disappears.

``group_incidents`` groups consecutive stretches of trouble into one incident per
outage; a PARTIAL that never became more and was shorter than
``min_partial_ms`` is the pair disagreeing for a moment, not an incident
(its seconds still count in uptime).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from consensus import keys
from consensus.agreement import AgreedState, Mode
from consensus.errors import InvalidEntry
from consensus.hlc import Hlc
from consensus.lww import Entry, JsonValue

S = AgreedState
# Worst first: the state an incident is named after.
SEVERITY = (S.DOWN, S.FLAPPING, S.PARTIAL)
TROUBLE = frozenset(SEVERITY)
# A move carries at most this many streak starts per side (one per voter).
MAX_EVIDENCE = 64
# A PARTIAL shorter than this that never became worse is not an incident.
MIN_PARTIAL_INCIDENT_MS = 120_000


@dataclass(frozen=True, slots=True)
class AgreedMove:
    """One agreed move of one target, as one node made it."""

    target: str
    state: AgreedState
    mode: Mode
    decided: Hlc
    # When each voter's current streak began, per side (epoch ms).
    down_ms: tuple[int, ...] = ()
    up_ms: tuple[int, ...] = ()
    flap_ms: tuple[int, ...] = ()
    event: str | None = None
    # When it was decided, in the same corrected time as the streak starts
    # (the hlc orders moves; its wall may be off with the node's clock).
    at_ms: int | None = None
    # Per streak start, in the same order: the voter's last check before
    # it, which had the other outcome (equal to the start when unknown).
    down_after_ms: tuple[int, ...] = ()
    up_after_ms: tuple[int, ...] = ()
    # The latest move of the target its maker held when deciding: this one
    # comes after it, whatever the clocks say. None for a first move; absent
    # (``legacy``) in moves written before it was kept.
    seen: Hlc | None = None
    legacy: bool = False
    # For a move some voter had left (stopped, cut off, its checks stale):
    # until when each such voter's view was known to hold. None in moves
    # written before it was kept.
    left_ms: tuple[int, ...] | None = None

    @property
    def decided_ms(self) -> int:
        return self.decided.wall_ms if self.at_ms is None else self.at_ms

    def to_value(self) -> JsonValue:
        return {
            "at_ms": self.at_ms,
            "state": self.state.value,
            "mode": self.mode.value,
            "down_ms": list(self.down_ms),
            "up_ms": list(self.up_ms),
            "flap_ms": list(self.flap_ms),
            "event": self.event,
            "down_after_ms": list(self.down_after_ms),
            "up_after_ms": list(self.up_after_ms),
            "seen": None if self.seen is None else self.seen.encode(),
            "left_ms": None if self.left_ms is None else list(self.left_ms),
        }

    @classmethod
    def from_value(cls, target: str, decided: Hlc, value: JsonValue) -> AgreedMove:
        if not isinstance(value, dict):
            raise InvalidEntry(f"move of {target}: expected an object, got {value!r}")
        try:
            event = value.get("event")
            return cls(
                target=target,
                state=AgreedState(str(value["state"])),
                mode=Mode(str(value.get("mode", Mode.QUORUM.value))),
                decided=decided,
                down_ms=_times(value.get("down_ms"), "down_ms", target),
                up_ms=_times(value.get("up_ms"), "up_ms", target),
                flap_ms=_times(value.get("flap_ms"), "flap_ms", target),
                event=event if isinstance(event, str) else None,
                at_ms=_time(value.get("at_ms"), target),
                down_after_ms=_times(value.get("down_after_ms"), "down_after_ms", target),
                up_after_ms=_times(value.get("up_after_ms"), "up_after_ms", target),
                seen=_seen(value.get("seen"), decided, target),
                legacy="seen" not in value,
                left_ms=_left(value.get("left_ms"), target),
            )
        except (KeyError, ValueError) as exc:
            raise InvalidEntry(f"move of {target}: {exc}") from exc

    def evidence(self, previous: AgreedState | None) -> tuple[Bracket, ...]:
        """When this move's state began, as each voter saw it: after its
        last check of the other outcome, at or before its first of this."""
        if self.state is S.DOWN:
            return _brackets(self.down_ms, self.down_after_ms)
        if self.state is S.UP:
            return _brackets(self.up_ms, self.up_after_ms)
        if self.state is S.FLAPPING:
            return _brackets(self.flap_ms, ())
        if self.state is S.PARTIAL:
            # Out of an outage the PARTIAL begins with the first answer;
            # into trouble, with the first failure.
            if previous in (S.DOWN, S.FLAPPING):
                return _brackets(self.up_ms, self.up_after_ms)
            return _brackets(self.down_ms, self.down_after_ms)
        return ()  # MAINTENANCE, UNKNOWN: when it was decided


@dataclass(frozen=True, slots=True)
class Bracket:
    """A voter's evidence: the state began after ``after_ms``, at or before
    ``at_ms`` (its first check that saw it)."""

    after_ms: int
    at_ms: int


def _brackets(starts: tuple[int, ...], afters: tuple[int, ...]) -> tuple[Bracket, ...]:
    # A move written without the checks before (or a mismatched list)
    # knows only the first check that saw the state.
    if len(afters) != len(starts):
        afters = starts
    return tuple(Bracket(min(a, t), t) for t, a in zip(starts, afters, strict=True))


def _times(value: JsonValue, name: str, target: str) -> tuple[int, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_EVIDENCE:
        raise InvalidEntry(
            f"move of {target}: {name}: expected a list of at most {MAX_EVIDENCE} times"
        )
    if not all(
        isinstance(t, int) and not isinstance(t, bool) and -(2**53) < t < 2**53 for t in value
    ):
        raise InvalidEntry(f"move of {target}: {name}: expected epoch milliseconds")
    return tuple(int(t) for t in value)  # type: ignore[arg-type]


def _seen(value: JsonValue, decided: Hlc, target: str) -> Hlc | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidEntry(f"move of {target}: seen: expected an hlc, got {value!r}")
    seen = Hlc.decode(value)
    if not seen < decided:
        raise InvalidEntry(f"move of {target}: seen: {value} is not before the move")
    return seen


def _left(value: JsonValue, target: str) -> tuple[int, ...] | None:
    return None if value is None else _times(value, "left_ms", target)


def _time(value: JsonValue, target: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**53) < value < 2**53:
        raise InvalidEntry(f"move of {target}: at_ms: expected epoch milliseconds")
    return value


@dataclass(frozen=True, slots=True)
class Stretch:
    """A stretch of one agreed state of one target; end_ms None while it lasts."""

    target: str
    state: str
    mode: str
    start_ms: int
    end_ms: int | None = None
    event: str | None = None


def move_of(entry: Entry) -> AgreedMove | None:
    """The move a ``move/<target>/<hlc>`` entry holds; None for any other
    entry, or one that cannot be read."""
    split = keys.split_move(entry.key)
    if split is None or entry.tombstone:
        return None
    try:
        return AgreedMove.from_value(split[0], entry.hlc, entry.value)
    except InvalidEntry:
        return None


def histories(entries: Iterable[Entry]) -> dict[str, list[Stretch]]:
    """Every target's derived history from a log's entries."""
    by_target: dict[str, list[AgreedMove]] = {}
    for entry in entries:
        move = move_of(entry)
        if move is not None:
            by_target.setdefault(move.target, []).append(move)
    return {target: derive(moves) for target, moves in sorted(by_target.items())}


def derive(moves: Iterable[AgreedMove]) -> list[Stretch]:
    """A target's agreed history from its moves, oldest first.

    Depends only on the set of moves: the order they are given in, and
    which node made which, change nothing."""
    ordered = in_order(moves)
    by_hlc = {m.decided: m for m in ordered}
    out: list[Stretch] = []
    # The move that began each stretch of out.
    began: list[AgreedMove] = []
    for move in ordered:
        previous = out[-1] if out else None
        if previous is not None and _unheard_weaker_word(move, began[-1], by_hlc):
            # Decided alone, apart, before this node heard of the DOWN: the
            # same trouble seen from one side, not a recovery from it.
            continue
        if previous is not None and previous.state == move.state.value:
            if previous.event is None and move.event is not None:
                out[-1] = _with(previous, event=move.event)
            continue
        floor = previous.start_ms if previous is not None else None
        start = _start(move, None if previous is None else AgreedState(previous.state), floor)
        if previous is not None and _left_to_one(previous, move):
            start = _after_the_left(move, AgreedState(previous.state), previous.start_ms, start)
        elif previous is not None and _in_passing(move, began[-1], out):
            # The pair disagreed only while its checks took turns: the
            # evidence cannot tell the two moves apart, so the state before
            # the PARTIAL turned into this one at once.
            out.pop()
            began.pop()
            previous = out[-1]
            start = _start(move, AgreedState(previous.state), previous.start_ms)
            if previous.state == move.state.value:
                out[-1] = _with(previous, end_ms=None)
                continue
        if previous is not None and start <= previous.start_ms:
            # The previous stretch had no length: it was only the pair
            # deciding; the state before it continues or this one begins.
            out.pop()
            began.pop()
            start = previous.start_ms
            if out and out[-1].state == move.state.value:
                out[-1] = _with(out[-1], end_ms=None)
                continue
        if out:
            out[-1] = _with(out[-1], end_ms=start)
        out.append(Stretch(move.target, move.state.value, move.mode.value, start, None, move.event))
        began.append(move)
    return out


def _unheard_weaker_word(
    move: AgreedMove, current: AgreedMove, by_hlc: dict[Hlc, AgreedMove]
) -> bool:
    """A PARTIAL decided by one vantage alone that had not seen the DOWN it
    follows (a partition: the other side had already confirmed it)."""
    return (
        current.state is S.DOWN
        and move.state is S.PARTIAL
        and move.mode is Mode.SINGLE_VANTAGE
        and not _saw(move, current, by_hlc)
    )


def _saw(move: AgreedMove, other: AgreedMove, by_hlc: dict[Hlc, AgreedMove]) -> bool:
    """Whether other is on the chain of moves that move's maker had seen
    (a move written before ``seen`` was kept saw everything before it)."""
    step: AgreedMove | None = move
    for _ in range(len(by_hlc)):
        if step is None:
            return False
        if step.legacy:
            return other.decided < step.decided
        if step.seen is None or step.seen < other.decided:
            return False
        if step.seen == other.decided:
            return True
        step = by_hlc.get(step.seen)
    return False


def in_order(moves: Iterable[AgreedMove]) -> list[AgreedMove]:
    """Moves in the order they were decided: each after the move its maker
    had seen, and moves made apart (a partition, a crash) by when they were
    decided in corrected time, not by their hlc, which a clock minutes
    ahead carries forward."""
    by_hlc = sorted(moves, key=lambda m: m.decided)
    when: dict[Hlc, int] = {}
    previous: AgreedMove | None = None
    for move in by_hlc:
        after = previous.decided if move.legacy and previous is not None else move.seen
        earliest = when[after] + 1 if after is not None and after in when else None
        when[move.decided] = move.decided_ms if earliest is None else max(move.decided_ms, earliest)
        previous = move
    return sorted(by_hlc, key=lambda m: (when[m.decided], m.decided))


def _in_passing(move: AgreedMove, partial: AgreedMove, out: list[Stretch]) -> bool:
    """Whether out ends in a PARTIAL of both voters that this move's
    evidence overlaps: some voter still saw the state before the PARTIAL
    later than any voter first saw the PARTIAL's side (a DOWN for all that
    began while the one not yet failing had simply not checked again)."""
    if len(out) < 2 or out[-1].state != S.PARTIAL.value or out[-1].mode != Mode.QUORUM.value:
        return False
    if move.state not in (S.DOWN, S.UP):
        return False
    before = AgreedState(out[-2].state)
    partial_seen = [b.at_ms for b in partial.evidence(before) if b.at_ms <= partial.decided_ms]
    floor, decided = out[-2].start_ms, move.decided_ms
    known = [
        b.after_ms
        for b in move.evidence(S.PARTIAL)
        if b.after_ms < b.at_ms and floor <= b.at_ms <= decided
    ]
    return bool(partial_seen and known) and max(known) < min(partial_seen)


def _left_to_one(previous: Stretch, move: AgreedMove) -> bool:
    """Whether move is one vantage deciding alone after a disagreement of both."""
    return (
        previous.state == S.PARTIAL.value
        and previous.mode == Mode.QUORUM.value
        and move.mode is Mode.SINGLE_VANTAGE
    )


def _after_the_left(move: AgreedMove, previous: AgreedState, floor: int, start: int) -> int:
    """When a state one vantage decides alone, after the voter it disagreed
    with left, began. The voter that left saw its state hold until a last
    check (``left_ms``). Held until after the one vantage first saw the new
    state, it saw otherwise meanwhile: the state begins when decided, not
    with the streak the two disagreed about. Held until before that first
    sight, it narrows the bracket: the state began after its last check.
    Held until before the estimate, it says nothing. A move that does not say
    when its voters left is taken to be contradicted."""
    decided = max(move.decided_ms, floor)
    if move.left_ms is None:
        return decided
    held = max(move.left_ms, default=None)
    if held is None or held <= start:
        return start
    seen = [b.at_ms for b in move.evidence(previous) if floor <= b.at_ms <= move.decided_ms]
    first = min(seen, default=None)
    if first is None or held >= first:
        return decided
    return max(start, (held + first) // 2)


def _start(move: AgreedMove, previous: AgreedState | None, floor: int | None) -> int:
    decided = move.decided_ms
    evidence = [b for b in move.evidence(previous) if b.at_ms <= decided]
    if floor is not None:
        evidence = [b for b in evidence if b.at_ms >= floor]
    if not evidence:
        return decided if floor is None else max(decided, floor)
    # The state (as the pair means it: DOWN is down for every voter) began
    # after every voter's last check of the old state, and by the first
    # check after that which saw the new one. A voter that saw the new
    # state earlier (its own path failing first) bounds nothing; one whose
    # check before is unknown bounds nothing from below. The middle of what
    # is left is the estimate least far from the truth.
    known = [b.after_ms for b in evidence if b.after_ms < b.at_ms]
    lower = max(known, default=None)
    if lower is None:
        start = min(b.at_ms for b in evidence)
    else:
        upper = min(b.at_ms for b in evidence if b.at_ms > lower)
        start = (lower + upper) // 2
    return start if floor is None else max(start, floor)


def _with(stretch: Stretch, **changes: object) -> Stretch:
    fields = {
        "target": stretch.target,
        "state": stretch.state,
        "mode": stretch.mode,
        "start_ms": stretch.start_ms,
        "end_ms": stretch.end_ms,
        "event": stretch.event,
    }
    fields.update(changes)
    return Stretch(**fields)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Incident:
    """One outage (or lasting disagreement): consecutive stretches of trouble."""

    target: str
    state: str  # the worst state it reached
    mode: str
    start_ms: int
    end_ms: int | None
    # The event of its worst stretch: the notification users got, if any.
    event: str | None
    stretches: tuple[Stretch, ...]

    @property
    def ongoing(self) -> bool:
        return self.end_ms is None


def group_incidents(
    stretches: Sequence[Stretch], now_ms: int, min_partial_ms: int = MIN_PARTIAL_INCIDENT_MS
) -> list[Incident]:
    """One incident per run of DOWN, FLAPPING and PARTIAL stretches; a run
    that was only PARTIAL, and shorter than min_partial_ms, is none."""
    found: list[Incident] = []
    run: list[Stretch] = []

    def close() -> None:
        if not run:
            return
        states = {s.state for s in run}
        worst = next(s for s in SEVERITY if s.value in states)
        end = run[-1].end_ms
        length = (now_ms if end is None else end) - run[0].start_ms
        if worst is S.PARTIAL and length < min_partial_ms:
            run.clear()
            return
        first_worst = next(s for s in run if s.state == worst.value)
        event = next((s.event for s in run if s.state == worst.value and s.event), None)
        found.append(
            Incident(
                run[0].target,
                worst.value,
                first_worst.mode,
                run[0].start_ms,
                end,
                event,
                tuple(run),
            )
        )
        run.clear()

    for stretch in stretches:
        if stretch.state in TROUBLE and (not run or run[-1].end_ms == stretch.start_ms):
            run.append(stretch)
            continue
        close()
        if stretch.state in TROUBLE:
            run.append(stretch)
    close()
    return found
