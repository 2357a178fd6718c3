"""What one node's core holds, and how it reads and writes it: the log and
the indexes kept beside it, verdicts, peers' health, the readers the API
uses. The layers above it (delivering, agreeing, node) add behaviour.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, TypeVar, cast

from consensus import keys
from consensus.agreement import (
    AgreedRecord,
    AgreedState,
    Mode,
)
from consensus.announced import Announced, announced
from consensus.commands import (
    HistoryMoved,
    Step,
    telling,
)
from consensus.dispatch import (
    Dispatch,
)
from consensus.entries import node_of
from consensus.errors import InvalidEntry
from consensus.events import Event
from consensus.health import Health
from consensus.history import AgreedMove, Stretch, derive, move_of
from consensus.hlc import ZERO, Hlc, HybridClock
from consensus.lww import Entry, JsonValue, LwwMap, VersionVector
from consensus.order import EventOrder
from consensus.peers import PeerRecord
from consensus.reference import TimeReference
from consensus.reports import next_due_ms
from consensus.settings import Settings
from consensus.verdict import Verdict, VerdictState

T = TypeVar("T")
# A view whose node has not checked its target for this many intervals
# (plus a probe's timeout) stops voting until it checks again.
STALE_INTERVALS = 3
STALE_SLACK_MS = 30_000
CLOCK_NOTE_EVERY_MS = 3_600_000

SKEW_WARN_EVERY_MS = 10 * 60_000
RESTART_SETTLE_MS = 10_000
# How often a standby past its failover time looks again at a live
# claimant's lease.
LEASE_LOOK_AGAIN_MS = 2_000
STATE_SETTLE_MS = 1_000
GC_EVERY_MS = 3_600_000


class CoreState:
    """The state of one watcher node's core and its readers."""

    # Posts waiting for ntfy and posts it refused, as the shell last counted
    # (outbox_observed); unknown until it does.
    outbox_counts: tuple[int | None, int | None] = (None, None)
    # The webhooks (name -> the notices each wants; None: all), each
    # (webhook, event) delivery's part, and the webhooks our last attempt
    # did not reach (hook_delivery.py).
    hooks: dict[str, frozenset[str] | None]
    hook_dispatch: dict[tuple[str, str], Dispatch]
    hooks_failing: set[str]
    # Targets to confirm from here at once; peers we pulled from since start.
    _confirm: set[str]
    _pulled: set[str]

    def __init__(
        self,
        node: str,
        nodes: Iterable[str],
        targets: Iterable[str],
        settings: Settings,
        now_ms: int,
        log: LwwMap | None = None,
        clock_last: Hlc = ZERO,
    ) -> None:
        self.node = node
        self.nodes = tuple(sorted({*nodes, node}))
        self.peers = tuple(n for n in self.nodes if n != node)
        self.settings = settings
        self.log = log if log is not None else LwwMap(node)
        self._cache: dict[str, tuple[Entry, Any]] = {}
        # Never behind what we already wrote, whatever was persisted.
        if clock_last == ZERO:
            clock_last = max((e.hlc for e in self.log.entries() if e.origin == node), default=ZERO)
        self.clock = HybridClock(node, settings.max_skew_ms, clock_last)
        self.targets: set[str] = set(targets)
        self.maintenance: set[str] = set()
        # Silenced targets: agreed and recorded as usual, nobody notified.
        self.silenced: set[str] = set()
        self.verdicts: dict[str, Verdict] = self._saved_verdicts()
        # Verdicts carried over a restart: their last check is the last one
        # saved, not the last one made, so it bounds nothing (history).
        self._resumed: set[str] = set(self.verdicts)
        # How often the shell checks each target, and when we last did: a
        # view whose checks stopped for STALE_INTERVALS of them stops voting.
        self.intervals: dict[str, int] = {}
        self._checked_ms: dict[str, int] = dict.fromkeys(self.targets, now_ms)
        # No view can go stale before this (0: look at each on the next tick).
        self._stale_from_ms = 0
        self.canaries_ok: bool | None = None
        # False while the node's database refuses writes (disk full): it
        # still checks and votes from memory, but claims no notification.
        self.storage_ok = True
        self.canary_pass: Hlc | None = None
        # Whether our last attempt to reach ntfy got an answer: our claims
        # to post hold only while it does.
        self.ntfy_ok: bool | None = None
        self.heard: dict[str, int] = dict.fromkeys(self.peers, now_ms)
        # Peers that answer but refuse us, and why (their signature check):
        # said in the note when they count as lost.
        self.refused_by: dict[str, str] = {}
        # Told once that the log nears its cap (until it falls well below).
        self._log_warned = False
        self.peer_vectors: dict[str, VersionVector] = {}
        self.peer_offset_ms: dict[str, int] = {}
        self._skew_warned: dict[str, int] = {}
        # When our hlc last started again from the wall clock, and how far
        # ahead it had been.
        self.clock_restarted: tuple[int, int] | None = None
        # A jump of our clock users hear of once (a note), and when we last told one.
        self._clock_jumped: dict[str, int] | None = None
        self._clock_told_ms: int | None = None
        self._confirm, self._pulled = set(), set()
        self._held: dict[str, int] = {}
        self._voters: frozenset[str] = frozenset()
        self._next_heartbeat_ms = now_ms
        # Timed notes count only time this node watched: not the time it was stopped.
        self.started_ms = now_ms
        self._next_gc_ms = now_ms + GC_EVERY_MS
        self.dispatch: dict[str, Dispatch] = {}
        self.hooks, self.hook_dispatch, self.hooks_failing = {}, {}, set()
        # Targets whose agreed record is PARTIAL without a note yet: the only
        # ones the timed note has to look at on every tick.
        self._partial: set[str] = set()
        # Targets agreed DOWN, with when their next reminder is due: the
        # only ones reminders have to look at.
        self._down: dict[str, int] = {}
        # Targets agreed DOWN, with when their outage is escalated unless
        # acknowledged: dropped once looked at, so each outage is looked at once.
        self._escalate: dict[str, int] = {}
        self._init_relations()
        self._init_reports(now_ms)
        # (node, target) of every view marked stale: what a canary pass
        # has to look at again, without reading every view.
        self._stale_pairs: set[tuple[str, str]] = set()
        # Every target's agreed moves, by key: its history derives from them.
        self._moves: dict[str, dict[str, AgreedMove]] = {}
        self._index_log()
        # How far our clock is off, from the time our targets' servers tell.
        self.reference = self._carried_reference()
        self.order = EventOrder()
        for entry in self.log.items(keys.EVENT):
            self._place(entry)
        self._resume(now_ms)

    def _saved_verdicts(self) -> dict[str, Verdict]:
        """Our verdicts as the log kept them (after a restart)."""
        found = {}
        for target in self.targets:
            entry = self.log.get(keys.obs(self.node, target))
            if entry is not None:
                found[target] = Verdict.from_value(entry.value)
        return found

    def _resume(self, now_ms: int) -> None:
        """Pick up where the log left off (a layer above: unsent events)."""

    def _index_log(self) -> None:
        """The indexes kept beside the log, built from what it holds."""
        for target in self.targets:
            self._index_state(target)
        for entry in self.log.items(keys.OBS):
            self._index_view(entry)
        for entry in self.log.items(keys.MOVE):
            self._index_move(entry)

    def _carried_reference(self) -> TimeReference:
        """The estimate we last published: our clock is as far off as it was
        before the restart until our targets say otherwise."""
        reference = TimeReference()
        own = self.log.get(keys.health(self.node))
        if own is not None:
            with contextlib.suppress(InvalidEntry):
                reference.carried_ms = Health.from_value(own.value).clock_error_ms
        return reference

    def _init_relations(self) -> None:
        # What each target depends on and its tags (from the shell), and
        # since when each page has been held for its family or group.
        self.parents: dict[str, str] = {}
        self.tags: dict[str, tuple[str, ...]] = {}
        self._family_since: dict[str, int] = {}

    def _init_reports(self, now_ms: int) -> None:
        # The topics a weekly report goes to (from the shell), and when the
        # next is due: never one for a week that ended before we started.
        self.report_topics: tuple[str, ...] = ()
        at = self.settings.weekly_report_at_ms
        self._next_report_ms = None if at is None else next_due_ms(now_ms, at)

    def is_live(self, peer: str, now_ms: int) -> bool:
        return now_ms - self.heard.get(peer, now_ms) <= self.settings.peer_timeout_ms

    def _parsed(self, key: str, parse: Callable[[JsonValue], T], default: T) -> T:
        """The parsed value of key, reusing the last parse while the entry is the same."""
        entry = self.log.get(key)
        if entry is None:
            return default
        cached = self._cache.get(key)
        if cached is not None and cached[0] is entry:
            return cast(T, cached[1])
        value = parse(entry.value)
        self._cache[key] = (entry, value)
        return value

    def health_of(self, node: str) -> Health:
        return self._parsed(keys.health(node), Health.from_value, Health())

    def ready(self, now_ms: int) -> bool:
        """Whether our log is fresh enough to decide: after a start we first
        pull everything from each live peer, or we would act on stale views."""
        return all(p in self._pulled or not self.is_live(p, now_ms) for p in self.peers)

    def voters(self, now_ms: int) -> frozenset[str]:
        """Nodes whose vote counts now: canaries pass and heard from lately."""
        voting = {self.node} if self.canaries_ok and self.ready(now_ms) else set()
        voting |= {
            p for p in self.peers if self.is_live(p, now_ms) and self.health_of(p).canaries_ok
        }
        return frozenset(voting)

    def view(self, node: str, target: str) -> Verdict:
        return self._parsed(keys.obs(node, target), Verdict.from_value, Verdict())

    def record(self, target: str) -> AgreedRecord:
        return self._parsed(keys.state(target), AgreedRecord.from_value, AgreedRecord())

    def history(self, target: str) -> list[Stretch]:
        """The target's agreed history, derived from the replicated moves:
        the same on every node that holds the same log."""
        return derive(self._moves.get(target, {}).values())

    @telling
    def import_history(self, stretches: Iterable[Stretch]) -> Step:
        """Moves for history kept before moves were entries (an upgrade):
        one per stretch, stamped at its start, so it lives on in the log.
        Each node imports its own; the peer learns them through sync."""
        step = Step()
        for stretch in stretches:
            try:
                state = AgreedState(stretch.state)
                mode = Mode(stretch.mode)
            except ValueError:
                continue
            hlc = Hlc(stretch.start_ms, 0, self.node)
            key = keys.move(stretch.target, hlc.encode())
            if self.log.raw(key) is not None:
                continue
            at = (stretch.start_ms,)
            move = AgreedMove(
                stretch.target,
                state,
                mode,
                hlc,
                down_ms=at if state is AgreedState.DOWN else (),
                up_ms=at if state is AgreedState.UP else (),
                flap_ms=at if state is AgreedState.FLAPPING else (),
                event=stretch.event,
                at_ms=stretch.start_ms,
            )
            entry = self.log.write(key, move.to_value(), hlc)
            self._index_move(entry)
            step.to_commit.append(entry)
            step.commands.append(HistoryMoved(stretch.target))
        return step

    def history_targets(self) -> list[str]:
        """Every target with a recorded move, watched now or not."""
        return sorted(self._moves)

    def forget_history_before(self, cutoff_ms: int) -> list[str]:
        """Drop moves past the history's retention; per target the last move
        before the cutoff stays, since it says what state the kept history
        starts in. Every node drops by this rule alone. Returns the keys."""
        dropped: list[str] = []
        for moves in self._moves.values():
            old = sorted((m.decided, k) for k, m in moves.items() if m.decided.wall_ms < cutoff_ms)
            for _, key in old[:-1]:
                del moves[key]
                self.log.forget(key)
                dropped.append(key)
        return dropped

    def peer_record(self, peer: str) -> PeerRecord:
        return self._parsed(keys.peer(peer), PeerRecord.from_value, PeerRecord())

    def event(self, event_id_: str) -> Event | None:
        entry = self.log.get(keys.event(event_id_))
        return None if entry is None else Event.from_value(event_id_, entry.value)

    def node_events(self) -> list[Event]:
        """The events about nodes (cut off, lost, back, clock) the log holds."""
        found = []
        for entry in self.log.items(keys.EVENT):
            subject = entry.value.get("subject") if isinstance(entry.value, dict) else None
            if isinstance(subject, str) and keys.subject_node(subject) is not None:
                found.append(Event.from_value(entry.key[len(keys.EVENT) :], entry.value))
        return found

    def announced(self, entries: Iterable[Entry] | None = None) -> list[Announced]:
        """The events and acknowledgements among entries (a committed step's);
        without entries, all the log holds."""
        if entries is None:
            entries = [*self.log.items(keys.EVENT), *self.log.items(keys.ACK)]
        return announced(entries)

    def sent_by(self, event_id_: str) -> str | None:
        """The node that posted the event, as the log says; None while unsent."""
        entry = self.log.get(keys.sent(event_id_))
        return None if entry is None else node_of(entry.value) or "?"

    def acknowledgement(self, event_id_: str) -> JsonValue:
        """Who acknowledged the event's incident, when and why; None if nobody."""
        entry = self.log.get(keys.ack(event_id_))
        return None if entry is None else entry.value

    def admin_windows(self, silences: bool) -> dict[str, JsonValue]:
        """Maintenance windows (or silences) written through the admin API, by id."""
        prefix = keys.SILENCE if silences else keys.MAINTENANCE
        return {e.key[len(prefix) :]: e.value for e in self.log.items(prefix)}

    def admin_targets(self) -> dict[str, JsonValue]:
        """Targets written through the admin API, by id (either node's)."""
        return admin_targets(self.log)

    def audit_records(self) -> list[dict[str, JsonValue]]:
        """Every admin change either node took, in no order."""
        return [e.value for e in self.log.items(keys.AUDIT) if isinstance(e.value, dict)]

    def acknowledged(self, event_id_: str) -> bool:
        entry = self.log.get(keys.ack(event_id_))
        return entry is not None and not entry.tombstone

    def last_heartbeat_ms(self, target: str) -> int | None:
        entry = self.log.get(keys.push(target))
        if entry is None or not isinstance(entry.value, dict):
            return None
        at = entry.value.get("at_ms")
        return at if isinstance(at, int) else None

    def stale_after_ms(self, target: str) -> int | None:
        interval = self.intervals.get(target)
        return None if interval is None else STALE_INTERVALS * interval + STALE_SLACK_MS

    def _health(self, now_ms: int) -> Health:
        waiting, refused = self.outbox_counts
        return Health(
            self.canaries_ok,
            self.canary_pass,
            self.ntfy_ok,
            now_ms,
            self.reference.carried_ms,
            waiting,
            refused,
            tuple(sorted(self.hooks_failing)),
        )

    def outbox_observed(self, waiting: int, refused: int) -> None:
        """The shell counted its outbox: told to the peers with the next heartbeat."""
        self.outbox_counts = (waiting, refused)

    def _write(self, key: str, value: JsonValue, now_ms: int) -> Entry:
        entry = self._write_at(key, value, self.clock.tick(now_ms))
        target = keys.suffix(key, keys.STATE)
        if target is not None:
            self._index_state(target)
        return entry

    def _index_state(self, target: str) -> None:
        record = self.record(target)
        if record.state is AgreedState.PARTIAL and record.paged is None:
            self._partial.add(target)
        else:
            self._partial.discard(target)
        every = self.settings.remind_down_every_ms
        if record.state is AgreedState.DOWN and every and record.since_ms is not None:
            self._down.setdefault(target, record.since_ms + every)
        else:
            self._down.pop(target, None)
        after = self.settings.escalate_after_ms
        if record.state is AgreedState.DOWN and after and record.since_ms is not None:
            self._escalate.setdefault(target, record.since_ms + after)
        else:
            self._escalate.pop(target, None)

    def _write_at(self, key: str, value: JsonValue, hlc: Hlc, tombstone: bool = False) -> Entry:
        current = self.log.raw(key)
        if current is not None and current.hlc >= hlc:
            # A peer's entry stamped ahead of our clock (refused skew) holds the
            # key: write just after it so that our newer decision wins.
            hlc = Hlc(current.hlc.wall_ms, current.hlc.logical + 1, self.node)
        entry = self.log.write(key, value, hlc, tombstone)
        self._index_view(entry)
        return entry

    def _index_view(self, entry: Entry) -> None:
        split = keys.split_obs(entry.key)
        if split is None:
            return
        stale = False
        if not entry.tombstone:
            with contextlib.suppress(InvalidEntry):
                stale = self.view(*split).stale
        if stale:
            self._stale_pairs.add(split)
        else:
            self._stale_pairs.discard(split)

    def _place(self, entry: Entry) -> None:
        """Keep an event's place in its subject's order."""
        event_key = keys.suffix(entry.key, keys.EVENT)
        if event_key is None or entry.tombstone:
            return
        try:
            event = Event.from_value(event_key, entry.value)
        except InvalidEntry:
            return
        self.order.place(event.id, event.subject, event.notice, entry.hlc)

    def _index_move(self, entry: Entry) -> str | None:
        """Keep a move entry in the per-target index; its target, or None
        when the entry is not a readable move."""
        move = move_of(entry)
        if move is None:
            return None
        self._moves.setdefault(move.target, {})[entry.key] = move
        return move.target


def admin_targets(log: LwwMap) -> dict[str, JsonValue]:
    """Targets written through the admin API into a log, by id: what a
    node reads before its core is built, and its core after."""
    return {e.key[len(keys.TARGET) :]: e.value for e in log.items(keys.TARGET)}


def settled(verdict: Verdict) -> bool:
    """Whether the last check agrees with the verdict."""
    return (verdict.last_ok is True and verdict.state is VerdictState.UP) or (
        verdict.last_ok is False and verdict.state is VerdictState.DOWN
    )


def wall_of(health: Entry) -> int | None:
    """The writer's wall clock when it wrote its health (older nodes: the
    entry's hlc, true unless it stands after a stamp from a clock step)."""
    try:
        wall = Health.from_value(health.value).wall_ms
    except InvalidEntry:
        return None
    return health.hlc.wall_ms if wall is None else wall


def is_urgent(key: str) -> bool:
    return key.startswith(keys.URGENT_PREFIXES)


def confirmed(verdict: Verdict) -> Verdict:
    return replace(verdict, confirmed=verdict.checked)
