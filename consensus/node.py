"""One node's core: facts in, entries to commit and commands out.

Like h11's Connection, it never touches a socket, a database or a clock. The
shell hands it check results, canary results, peers' entries and the time;
it answers with a ``Step``: the entries to commit in one transaction, then
what to do (push to peers, re-check, post a notification, warn).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar, cast

from consensus import keys
from consensus.agreement import (
    AgreedRecord,
    AgreedState,
    Assessment,
    Mode,
    Notice,
    advance,
    assess,
    note_partial,
    with_event,
)
from consensus.commands import (
    AgreedMoved,
    CheckCanaries,
    HistoryMoved,
    Publish,
    Push,
    Recheck,
    Step,
    Warn,
    telling,
)
from consensus.dispatch import (
    Dispatch,
    DispatchState,
    Move,
    Role,
    standby_should_take_over,
    start,
)
from consensus.errors import InvalidEntry
from consensus.events import Event, event_id
from consensus.health import Health
from consensus.history import AgreedMove, Stretch, derive, move_of
from consensus.hlc import ZERO, Hlc, HybridClock
from consensus.lww import DeltaPage, Entry, JsonValue, LwwMap, VersionVector
from consensus.order import EventOrder
from consensus.peers import NodeState, PeerRecord, grace_ms, observe_peer
from consensus.reference import TimeReference
from consensus.settings import DAY_MS, LOG_WARN_FRACTION, Settings
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


class NodeCore:
    """The pure state of one watcher node."""

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
        self.verdicts: dict[str, Verdict] = {}
        for target in self.targets:
            entry = self.log.get(keys.obs(node, target))
            if entry is not None:
                self.verdicts[target] = Verdict.from_value(entry.value)
        # Verdicts carried over a restart: their last check is the last one
        # saved, not the last one made, so it bounds nothing (history).
        self._resumed: set[str] = set(self.verdicts)
        # How often the shell checks each target, and when we last did: a
        # view whose checks stopped for STALE_INTERVALS of them stops voting.
        self.intervals: dict[str, int] = {}
        self._checked_ms: dict[str, int] = dict.fromkeys(self.targets, now_ms)
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
        self._confirm: set[str] = set()
        self._pulled: set[str] = set()
        self._held: dict[str, int] = {}
        self._voters: frozenset[str] = frozenset()
        self._next_heartbeat_ms = now_ms
        # Timed notes count only time this node watched: not the time it was stopped.
        self.started_ms = now_ms
        self._next_gc_ms = now_ms + GC_EVERY_MS
        self.dispatch: dict[str, Dispatch] = {}
        # Targets whose agreed record is PARTIAL without a note yet: the only
        # ones the timed note has to look at on every tick.
        self._partial: set[str] = set()
        # Targets agreed DOWN, with when their next reminder is due: the
        # only ones reminders have to look at.
        self._down: dict[str, int] = {}
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
        self._restore_dispatch(now_ms)

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

    # -- reading -------------------------------------------------------------

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
            move = AgreedMove(stretch.target, state, mode, hlc,
                              down_ms=at if state is AgreedState.DOWN else (),
                              up_ms=at if state is AgreedState.UP else (),
                              flap_ms=at if state is AgreedState.FLAPPING else (),
                              event=stretch.event, at_ms=stretch.start_ms)  # fmt: skip
            entry = self.log.write(key, move.to_value(), hlc)
            self._index_move(entry)
            step.written.append(entry)
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

    # -- what the API reads, typed (no shell reads the log's keys) -----------

    def sent_by(self, event_id_: str) -> str | None:
        """The node that posted the event, as the log says; None while unsent."""
        entry = self.log.get(keys.sent(event_id_))
        return None if entry is None else _node_of(entry.value) or "?"

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

    def should_post(self, event_id_: str) -> bool:
        """Asked by the notifier before each attempt: is this still ours to post?"""
        record = self.dispatch.get(event_id_)
        sent = self.log.get(keys.sent(event_id_))
        if sent is not None and _node_of(sent.value) != self.node:
            return False
        if record is None or record.state is not DispatchState.POSTING:
            return False
        return not self.superseded(event_id_) and self.held_back_by(event_id_) is None

    def superseded(self, event_id_: str) -> bool:
        """A note made moot by a later event of its target, an event that a
        later one already told overtook, or the second of two twins (both
        sides of a cut decided the same move): never posted."""
        if self.order.superseded(event_id_):
            return True
        if any(self.log.get(keys.sent(later)) is not None for later in self.order.later(event_id_)):
            # Decided before an event users were told already, and learnt of
            # only now (its node was cut off): told late, it would say a
            # state that is over, out of order.
            return True
        # The earlier twin is posted, or was. (A later twin that went out
        # first, its side able to post and ours not, is a told later event.)
        before = self.order.twin_before(event_id_)
        return before is not None and self._tells_users(before)

    def _tells_users(self, event_id_: str) -> bool:
        event = self.event(event_id_)
        return event is not None and not event.suppressed

    def held_back_by(self, event_id_: str) -> str | None:
        """An earlier event of the same subject still unsent anywhere, which
        must reach ntfy first."""
        for earlier in self.order.earlier(event_id_):
            if self.log.get(keys.sent(earlier)) is not None or self.superseded(earlier):
                continue
            event = self.event(earlier)
            if event is not None and not event.suppressed:
                return earlier
        return None

    def _release_later(self, event_id_: str) -> list[Publish]:
        """Our events of the subject that waited on this one: hand them to
        the notifier again."""
        released = []
        for later in self.order.later(event_id_):
            record = self.dispatch.get(later)
            event = self.event(later)
            if record is not None and record.state is DispatchState.POSTING and event is not None:
                released.append(Publish(event))
        return released

    def took_over(self, event_id_: str) -> bool:
        """Whether we post this event as the standby, in place of the sender."""
        record = self.dispatch.get(event_id_)
        return record is not None and record.role is Role.STANDBY

    def sent_elsewhere(self, event_id_: str) -> bool:
        """Another node recorded that it posted this event."""
        sent = self.log.get(keys.sent(event_id_))
        return sent is not None and _node_of(sent.value) != self.node

    def next_tick_ms(self) -> int:
        """When ``tick`` next has work: the shell sleeps until then (or until
        a fact arrives, after which it asks again)."""
        due = [self._next_heartbeat_ms, self._next_gc_ms]
        timeout = self.settings.peer_timeout_ms
        # When a peer we still count as live would fall silent.
        due += [self.heard[p] + timeout + 1 for p in self.peers if p in self._voters]
        due += [d.deadline_ms for d in self.dispatch.values() if d.open]
        due += self._held.values()
        # Timed notes are due only where tick would act on them.
        if self.node in self._voters:
            for target in self._partial:
                entry = self.log.get(keys.state(target))
                if entry is not None:
                    began = max(entry.hlc.wall_ms, self.started_ms)
                    due.append(began + self.settings.partial_note_after_ms)
            due += self._down.values()
        if self.canaries_ok:
            for peer in self.peers:
                record = self.peer_record(peer)
                if record.state is not NodeState.VOTING and not record.noted:
                    due.append(record.since_ms + grace_ms(record.state, self.settings))
        return min(due)

    # -- facts ---------------------------------------------------------------

    @telling
    def check_observed(
        self, target: str, ok: bool, reason: str, latency_ms: float | None, now_ms: int
    ) -> Step:
        """One check of one target by this node finished."""
        if target not in self.targets:
            raise InvalidEntry(f"check of unknown target {target!r}")
        step = Step()
        self._checked_ms[target] = now_ms
        before = self.verdicts.get(target, Verdict())
        if target in self._resumed:
            self._resumed.discard(target)
            before = replace(before, checked=None)
        after = before.observe(ok, self.clock.tick(now_ms), reason, latency_ms, self.settings)
        if target in self._confirm:
            self._confirm.discard(target)
            after = _confirmed(after)
        if before.stale and not _settled(after):
            # Back from a stall: the old verdict votes again only once a
            # fresh check agrees with it, or fresh checks moved it.
            after = replace(after, stale=True)
        self.verdicts[target] = after
        first_failure = not ok and after.fails == 1
        if not ok and after.fails < self.settings.streak_cap:
            step.commands.append(Recheck(target, self.settings.retry_interval_ms))
        if first_failure:
            step.commands.append(CheckCanaries())
        # Compared with what the log holds, not with our last check: checks
        # made while cut off change only memory, and the log must catch up
        # with the first check after (else a stale DOWN would vote on).
        logged = self.view(self.node, target)
        if after.public() != logged.public() and self.canaries_ok is not False:
            # While our own network is down our checks say nothing of the
            # targets: they stay in memory and are forgotten on recovery.
            entry = self._write(keys.obs(self.node, target), after.to_value(), now_ms)
            step.written.append(entry)
            # Views change rarely (streak steps, verdicts, flapping): push each.
            step.commands.append(Push((entry,)))
            # The agreed state reads only the log: unchanged views, unchanged state.
            step.extend(self._evaluate(target, now_ms))
        return step

    def check_every(self, target: str, interval_ms: int) -> None:
        """The shell checks target every interval_ms (a push target: never)."""
        if interval_ms <= 0:
            raise InvalidEntry(f"{target}: interval: expected a positive number of ms")
        self.intervals[target] = interval_ms

    def stale_after_ms(self, target: str) -> int | None:
        interval = self.intervals.get(target)
        return None if interval is None else STALE_INTERVALS * interval + STALE_SLACK_MS

    def _stale_views(self, now_ms: int) -> Step:
        """Our views whose checks stopped: marked stale in the log, so
        neither node counts them until we check again."""
        step = Step()
        for target, interval in self.intervals.items():
            verdict = self.verdicts.get(target)
            checked = self._checked_ms.get(target)
            if verdict is None or verdict.stale or checked is None or target not in self.targets:
                continue
            if now_ms - checked <= STALE_INTERVALS * interval + STALE_SLACK_MS:
                continue
            stale = replace(verdict, stale=True)
            self.verdicts[target] = stale
            if self.canaries_ok is False:
                continue  # our checks do not vote anyway; the log shows the last good view
            entry = self._write(keys.obs(self.node, target), stale.to_value(), now_ms)
            step.written.append(entry)
            step.commands.append(Push((entry,)))
            step.commands.append(Warn("stale_checks", {
                "target": target,
                "last_check_s_ago": (now_ms - checked) // 1000,
                "interval_s": interval // 1000,
                "why": "this node's checks of the target stopped; its view does not vote "
                       "until it checks again",
            }))  # fmt: skip
            step.extend(self._evaluate(target, now_ms))
        return step

    def server_time_observed(self, target: str, their_ms: int, now_ms: int) -> None:
        """A target's server told its time (an HTTP Date header)."""
        if target in self.targets:
            self.reference.observe(target, their_ms, now_ms)

    @telling
    def canaries_observed(self, ok: bool, now_ms: int) -> Step:
        """This node's canaries (its own network) were checked."""
        step = Step()
        changed = ok != self.canaries_ok
        was_isolated = self.canaries_ok is False
        self.canaries_ok = ok
        hlc = self.clock.tick(now_ms)
        if ok:
            self.canary_pass = hlc
        health = self._health(now_ms)
        entry = self._write_at(keys.health(self.node), health.to_value(), hlc)
        step.written.append(entry)
        if changed:
            step.commands.append(Push((entry,)))
        self._next_heartbeat_ms = now_ms + self.settings.heartbeat_interval_ms
        if ok and was_isolated:
            step.extend(self._forget_isolated_checks(now_ms))
        step.extend(self._reassess_if_voters_changed(now_ms, force=changed))
        # A single-vantage verdict waits for a canary pass after its failures
        # (all targets when we are the one voter; else those a stale view
        # left to one).
        if ok and len(self._voters) == 1:
            step.extend(self._evaluate_all(now_ms))
        elif ok:
            for target in sorted({t for _, t in self._stale_pairs if t in self.targets}):
                step.extend(self._evaluate(target, now_ms))
        return step

    def _health(self, now_ms: int) -> Health:
        return Health(self.canaries_ok, self.canary_pass, self.ntfy_ok, now_ms,
                      self.reference.carried_ms)  # fmt: skip

    def time_stepped(self, delta_ms: int) -> None:
        """The wall clock jumped by delta_ms (the shell saw it against the
        monotonic clock). Timers set in the old time move with it, so a step
        forward fires none of them early (no peer counted lost) and a step
        back holds none of them for its length."""
        if abs(delta_ms) >= self.settings.max_skew_ms:
            self._clock_jumped = {"step_ms": delta_ms}
        self.heard = {peer: at + delta_ms for peer, at in self.heard.items()}
        # The peers' clocks did not move: ours did.
        self.peer_offset_ms = {peer: off - delta_ms for peer, off in self.peer_offset_ms.items()}
        self._checked_ms = {target: at + delta_ms for target, at in self._checked_ms.items()}
        self.reference.stepped(delta_ms)
        self._next_heartbeat_ms += delta_ms
        self._next_gc_ms += delta_ms
        self.started_ms += delta_ms
        self._held = {target: at + delta_ms for target, at in self._held.items()}
        self.dispatch = {
            event_id_: replace(record, deadline_ms=record.deadline_ms + delta_ms)
            for event_id_, record in self.dispatch.items()
        }

    @telling
    def delivery_observed(self, ok: bool, now_ms: int) -> Step:
        """An attempt to reach ntfy got an answer (ok) or none: no connection,
        a timeout, a 5xx. Not a 429: pacing would hold the peer back too.

        A change is told to the peers at once: a standby takes over the
        claims of a node that cannot deliver, even while it is alive."""
        if ok == self.ntfy_ok:
            return Step()
        was = self.ntfy_ok
        self.ntfy_ok = ok
        step = Step()
        if self.canaries_ok is not None:
            health = self._health(now_ms)
            entry = self._write(keys.health(self.node), health.to_value(), now_ms)
            step.written.append(entry)
            step.commands.append(Push((entry,)))
        if not ok:
            wait_s = self.settings.failover_ms // 1000
            step.commands.append(Warn("ntfy_unreachable", {"standby_takes_over_after_s": wait_s}))
        elif was is False:
            step.commands.append(Warn("ntfy_reachable_again", {}))
        return step

    def _forget_isolated_checks(self, now_ms: int) -> Step:
        """Back from isolation: what we saw while cut off says nothing of the
        targets. Forget those streaks (not the flap history) and look again."""
        step = Step()
        for target in sorted(self.targets):
            verdict = self.verdicts.get(target, Verdict())
            if verdict.last_ok is not False:
                continue
            fresh = Verdict(flap=verdict.flap, flap_since=verdict.flap_since)
            self.verdicts[target] = fresh
            entry = self._write(keys.obs(self.node, target), fresh.to_value(), now_ms)
            step.written.append(entry)
            step.commands.append(Push((entry,)))
            step.commands.append(Recheck(target, 0))
        return step

    @telling
    def entries_received(
        self,
        peer: str,
        entries: Sequence[Entry],
        now_ms: int,
        covered: Mapping[str, int] | None = None,
        complete: bool = False,
    ) -> Step:
        """Entries from a peer: pushed, or one page of a delta we asked for
        (``covered`` from the page; ``complete`` on its last page).

        Every entry is checked before any is merged: a bad batch merges nothing."""
        if peer not in self.peers:
            raise InvalidEntry(f"entries from unknown node {peer!r}")
        sized = []
        for entry in entries:
            sized.append((entry, entry.check()))
            _validate_value(entry)
            ahead_ms = entry.hlc.wall_ms - now_ms
            if ahead_ms > self.settings.max_future_ms:
                raise InvalidEntry(
                    f"entry {entry.key}: stamped {ahead_ms // 1000} s in the future "
                    f"(at most {self.settings.max_future_ms // 1000} s)"
                )
        self._refuse_past_the_cap(sized)
        self._hear(peer, now_ms)
        step = Step()
        for entry in entries:
            received = self.clock.receive(entry.hlc, now_ms)
            # Our own entries coming back (stamped before a clock step) say
            # nothing about a peer's clock.
            if received.refused_skew_ms is not None and entry.origin != self.node:
                step.commands.extend(
                    self._skew_warning(entry.origin, received.refused_skew_ms, now_ms)
                )
            if entry.key == keys.health(entry.origin):
                wall = _wall_of(entry)
                if wall is not None:
                    self.peer_offset_ms[entry.origin] = wall - now_ms
        merged = self.log.merge_all(entries)
        for entry in merged:
            self._index_view(entry)
        if covered:
            self.log.advance(covered)
        if complete:
            self._pulled.add(peer)
        step.written.extend(merged)
        step.extend(self._react(merged, now_ms))
        return step

    def _refuse_past_the_cap(self, sized: list[tuple[Entry, int]]) -> None:
        new_keys, added = self.log.growth(sized)
        if not new_keys and not added:
            return
        entries, size = len(self.log) + new_keys, self.log.bytes + added
        cap_entries, cap_bytes = self.settings.max_log_entries, self.settings.max_log_bytes
        if entries > cap_entries or size > cap_bytes:
            raise InvalidEntry(
                f"log full: {len(self.log)} entries, {self.log.bytes} bytes held; the batch "
                f"adds {new_keys} keys, {added} bytes; at most {cap_entries} entries and "
                f"{cap_bytes} bytes"
            )

    def log_usage(self) -> dict[str, int | float]:
        """How full the log is, against its cap."""
        cap_entries, cap_bytes = self.settings.max_log_entries, self.settings.max_log_bytes
        return {
            "entries": len(self.log), "bytes": self.log.bytes,
            "max_entries": cap_entries, "max_bytes": cap_bytes,
            "fraction": round(max(len(self.log) / cap_entries, self.log.bytes / cap_bytes), 4),
        }  # fmt: skip

    def _log_nearly_full(self) -> list[Warn]:
        """One warning when the log passes LOG_WARN_FRACTION of its cap, again
        only after it fell back well below."""
        fraction = float(self.log_usage()["fraction"])
        if fraction >= LOG_WARN_FRACTION and not self._log_warned:
            self._log_warned = True
            usage = self.log_usage()
            return [Warn("log_nearly_full", {
                "entries": len(self.log), "max_entries": int(usage["max_entries"]),
                "bytes": self.log.bytes, "max_bytes": int(usage["max_bytes"]),
                "then": "a peer's batches that add to it are refused; raise the cap "
                        "([storage] max_log_entries, max_log_mb) and the unit's MemoryMax",
            })]  # fmt: skip
        if fraction < LOG_WARN_FRACTION - 0.1:
            self._log_warned = False
        return []

    def delta_requested(
        self,
        peer: str,
        vector: Mapping[str, int],
        now_ms: int,
        cursor: tuple[str, int] | None = None,
        limit: int = 500,
    ) -> DeltaPage:
        """A peer asks what it lacks; its vector also tells us what it has seen."""
        if peer not in self.peers:
            raise InvalidEntry(f"delta request from unknown node {peer!r}")
        self._hear(peer, now_ms)
        known = self.peer_vectors.setdefault(peer, {})
        for origin, version in vector.items():
            known[origin] = max(known.get(origin, 0), version)
        return self.log.delta_since(vector, limit, cursor)

    @telling
    def claim_acknowledged(self, event_id_: str, now_ms: int) -> Step:
        """The peer confirmed it holds our claim: post without waiting longer."""
        record = self.dispatch.get(event_id_)
        if record is None or record.state is not DispatchState.CLAIMED:
            return Step()
        return self._post_if_still_ours(record, Move.CLAIM_ACKED, now_ms)

    @telling
    def publish_succeeded(self, event_id_: str, now_ms: int) -> Step:
        """ntfy accepted our post of this event."""
        step = Step()
        record = self.dispatch.get(event_id_)
        if record is not None:
            self.dispatch[event_id_] = record.move(Move.POSTED)
        else:
            self.dispatch[event_id_] = Dispatch(event_id_, Role.STANDBY, DispatchState.SENT, now_ms)
        entry = self._write(keys.sent(event_id_), {"node": self.node}, now_ms)
        step.written.append(entry)
        step.commands.append(Push((entry,)))
        step.commands.extend(self._release_later(event_id_))
        return step

    @telling
    def add_target(self, target: str, now_ms: int) -> Step:
        """Start watching a target at run time (from a reloaded config)."""
        self.targets.add(target)
        self._checked_ms.setdefault(target, now_ms)
        entry = self.log.get(keys.obs(self.node, target))
        if entry is not None and target not in self.verdicts:
            self.verdicts[target] = Verdict.from_value(entry.value)
        self._index_state(target)
        return self._evaluate(target, now_ms)

    def remove_target(self, target: str) -> None:
        """Stop watching a target; what the log holds of it stays as history."""
        self.targets.discard(target)
        self.verdicts.pop(target, None)
        self.intervals.pop(target, None)
        self._checked_ms.pop(target, None)
        self._partial.discard(target)
        self._down.pop(target, None)
        self._held.pop(target, None)
        self._confirm.discard(target)
        self.reference.forget(target)

    @telling
    def heartbeat_received(self, target: str, now_ms: int) -> Step:
        """A push target called its secret URL on this node. The heartbeat goes
        to the peer at once, so either node can judge the silence."""
        if target not in self.targets:
            raise InvalidEntry(f"heartbeat for unknown target {target!r}")
        entry = self._write(keys.push(target), {"at_ms": now_ms, "node": self.node}, now_ms)
        return Step(written=[entry], commands=[Push((entry,))])

    def last_heartbeat_ms(self, target: str) -> int | None:
        entry = self.log.get(keys.push(target))
        if entry is None or not isinstance(entry.value, dict):
            return None
        at = entry.value.get("at_ms")
        return at if isinstance(at, int) else None

    @telling
    def set_maintenance(self, target: str, on: bool, now_ms: int) -> Step:
        if on:
            self.maintenance.add(target)
        else:
            self.maintenance.discard(target)
        return self._evaluate(target, now_ms)

    def storage_observed(self, ok: bool) -> None:
        """Whether the node's database takes writes. While it does not, a
        notification this node would claim is left to the standby."""
        self.storage_ok = ok

    def set_silenced(self, target: str, on: bool) -> None:
        """Silence a target's notifications; its events are still recorded."""
        if on:
            self.silenced.add(target)
        else:
            self.silenced.discard(target)

    @telling
    def certificate_observed(self, target: str, not_after_ms: int, now_ms: int) -> Step:
        """A check saw the target's certificate, valid until not_after_ms.

        Once per threshold crossed (the lowest), whichever node sees it first:
        the id depends only on the target, the certificate's expiry and the
        threshold, so both nodes announce the same event."""
        if target not in self.targets or self.node not in self._voters:
            return Step()
        days_left = (not_after_ms - now_ms) / DAY_MS
        crossed = [days for days in self.settings.tls_expiry_days if days_left <= days]
        if not crossed or days_left <= 0:
            return Step()  # fine, or expired: the failing check says that
        threshold = min(crossed)
        state = self.record(target).state.value
        event_id_ = event_id(
            target, Notice.TLS_EXPIRING, "", None, Mode.QUORUM, f"{threshold}:{not_after_ms}"
        )
        if self.log.get(keys.event(event_id_)) is not None:
            return Step()
        event = Event(
            id=event_id_,
            subject=target,
            notice=Notice.TLS_EXPIRING,
            state=state,
            previous=state,
            anchor=None,
            mode=Mode.QUORUM,
            voters=tuple(sorted(self._voters)),
            suppressed=self._silent(target),
            detail={
                "threshold_days": threshold,
                "not_after_ms": not_after_ms,
                "days_left": round(days_left, 1),
            },
        )
        return self._announce(event, now_ms)

    @telling
    def admin_write(
        self, key: str, value: JsonValue, now_ms: int, audit: dict[str, JsonValue]
    ) -> Step:
        """An admin change (a target, a window, a silence, an acknowledgement),
        with its audit record, in one step that goes to the peer at once.
        A value of None removes the key (a tombstone)."""
        if not key.startswith(keys.ADMIN_PREFIXES) or key.startswith(keys.AUDIT):
            raise InvalidEntry(f"{key}: not a key the admin API writes")
        hlc = self.clock.tick(now_ms)
        entry = self._write_at(key, value, hlc, tombstone=value is None)
        _validate_value(entry)
        record = self._write_at(f"{keys.AUDIT}{self.node}/{hlc.encode()}",
                                {**audit, "key": key, "at_ms": now_ms}, hlc)  # fmt: skip
        return Step(written=[entry, record], commands=[Push((entry, record))])

    def acknowledged(self, event_id_: str) -> bool:
        entry = self.log.get(keys.ack(event_id_))
        return entry is not None and not entry.tombstone

    @telling
    def tick(self, now_ms: int) -> Step:
        """Time passed: heartbeats, peers, timed notes, dispatch deadlines."""
        step = Step()
        restarted = self.clock.restarted_ahead_ms
        if restarted is not None:
            self.clock.restarted_ahead_ms = None
            self.clock_restarted = (now_ms, restarted)
            step.commands.append(Warn("clock_restarted", {
                "was_ahead_s": restarted // 1000,
                "why": "the wall clock stepped back, or a restart after it had stepped forward",
            }))  # fmt: skip
            self._clock_jumped = {"was_ahead_ms": restarted}
        step.extend(self._clock_note(now_ms))
        if now_ms >= self._next_heartbeat_ms:
            self._next_heartbeat_ms = now_ms + self.settings.heartbeat_interval_ms
            if self.canaries_ok is not None:
                health = self._health(now_ms)
                entry = self._write(keys.health(self.node), health.to_value(), now_ms)
                step.written.append(entry)
        step.extend(self._reassess_if_voters_changed(now_ms))
        step.extend(self._stale_views(now_ms))
        for target in sorted(t for t, until in self._held.items() if until <= now_ms):
            step.extend(self._evaluate(target, now_ms))
        step.extend(self._watch_peers(now_ms))
        step.extend(self._partial_notes(now_ms))
        step.extend(self._reminders(now_ms))
        step.extend(self._dispatch_deadlines(now_ms))
        step.commands.extend(self._log_nearly_full())
        if now_ms >= self._next_gc_ms:
            self._next_gc_ms = now_ms + GC_EVERY_MS
            self.log.collect_tombstones(
                {p: self.peer_vectors.get(p, {}) for p in self.peers},
                now_ms,
                self.settings.tombstone_ttl_ms,
            )
            self.dispatch = {k: d for k, d in self.dispatch.items() if not d.finished}
        return step

    # -- agreement -----------------------------------------------------------

    def _reassess_if_voters_changed(self, now_ms: int, force: bool = False) -> Step:
        voters = self.voters(now_ms)
        if voters == self._voters and not force:
            return Step()
        self._voters = voters
        return self._evaluate_all(now_ms)

    def _evaluate_all(self, now_ms: int) -> Step:
        step = Step()
        for target in sorted(self.targets):
            step.extend(self._evaluate(target, now_ms))
        return step

    def assessment(self, target: str, now_ms: int) -> Assessment | None:
        """What the agreed state of target should be now, from the log."""
        views = {n: self.view(n, target) for n in self.nodes}
        canary_pass = {n: self.health_of(n).canary_pass for n in self.nodes}
        # A view whose checks stopped is old news: it does not vote.
        voters = self.voters(now_ms) - {n for n, view in views.items() if view.stale}
        return assess(
            self.record(target).state,
            views,
            voters,
            len(self.nodes),
            canary_pass,
            self.settings,
            target in self.maintenance,
            self._shifts(now_ms),
        )

    def _shifts(self, now_ms: int) -> dict[str, int]:
        """What to add to each node's stamps to put them in our corrected time."""
        correct_ms = self.reference.error_ms(now_ms)
        return {n: self._shift(n, correct_ms) for n in self.nodes}

    def _evaluate(self, target: str, now_ms: int) -> Step:
        step = Step()
        if not self.ready(now_ms):
            return step
        held = self._held.get(target)
        if held is not None:
            if now_ms < held:
                return step
            del self._held[target]
        record = self.record(target)
        found = self.assessment(target, now_ms)
        if found is None or found.state is record.state:
            return step
        moved, notice = advance(record, found)
        event = None
        if notice is not None:
            # An UP answers what users were told (a DOWN, or a note that one
            # side saw it down), not the PARTIAL the pair passed on the way.
            told = record.paged if notice is Notice.UP and record.paged is not None else None
            previous = (told or record.state).value
            event = self._event(target, notice, found.state, previous, found, now_ms)
            event = replace(event, previous_since_ms=record.since_ms)
            moved = with_event(moved, event.id)
        step.written.append(self._write(keys.state(target), moved.to_value(), now_ms))
        step.commands.append(AgreedMoved(target, moved.state.value, moved.mode.value, moved.event))
        step.extend(self._record_move(target, found, moved.event, now_ms))
        if event is not None:
            step.extend(self._announce(event, now_ms))
        # The views behind the decision travel with it, so the peer decides
        # from the same facts.
        views = [self.log.get(keys.obs(n, target)) for n in self.nodes]
        urgent = [e for e in step.written if _urgent(e.key)]
        step.commands.append(Push((*urgent, *(v for v in views if v is not None))))
        return step

    def _record_move(self, target: str, found: Assessment, event: str | None, now_ms: int) -> Step:
        """The move as an entry of its own, with the streak starts behind it,
        so every node derives the same history from the log."""
        # Per side, each voter's (first check that saw it, last check before).
        sides: dict[str, list[tuple[int, int]]] = {"down": [], "up": [], "flap": []}
        # Times go in as the servers' clocks tell them: ours corrected by
        # how far our targets say it is off, a peer's first put in ours by
        # the offset its heartbeats show (before we have heard one since a
        # restart, corrected by the error the peer last published).
        correct_ms = self.reference.error_ms(now_ms)
        for node in found.voters:
            view = self.view(node, target)
            shift = self._shift(node, correct_ms)
            if view.state in (VerdictState.DOWN, VerdictState.UP) and view.since is not None:
                at = view.since.wall_ms
                after = at if view.before_since_ms is None else min(view.before_since_ms, at)
                side = "down" if view.state is VerdictState.DOWN else "up"
                sides[side].append((at + shift, after + shift))
            if view.flapping and view.flap_since is not None:
                at = view.flap_since.wall_ms
                sides["flap"].append((at + shift, at + shift))
        left = [self._held_until(node, target, correct_ms, now_ms)
                for node in self.nodes if node not in found.voters]  # fmt: skip
        hlc = self.clock.tick(now_ms)
        latest = max((m.decided for m in self._moves.get(target, {}).values()), default=None)
        if latest is not None and latest >= hlc:
            # A move we have seen was stamped by a clock ahead of ours: ours
            # comes after it, so the order of moves is the order of decisions.
            hlc = Hlc(latest.wall_ms, latest.logical + 1, self.node)
        down, up, flap = (sorted(sides[k]) for k in ("down", "up", "flap"))
        move = AgreedMove(
            target,
            found.state,
            found.mode,
            hlc,
            down_ms=tuple(at for at, _ in down),
            up_ms=tuple(at for at, _ in up),
            flap_ms=tuple(at for at, _ in flap),
            event=event,
            at_ms=now_ms + correct_ms,
            down_after_ms=tuple(after for _, after in down),
            up_after_ms=tuple(after for _, after in up),
            seen=latest,
            left_ms=tuple(sorted(left)),
        )
        entry = self._write_at(keys.move(target, hlc.encode()), move.to_value(), hlc)
        self._index_move(entry)
        return Step(written=[entry], commands=[HistoryMoved(target)])

    def _held_until(self, node: str, target: str, correct_ms: int, now_ms: int) -> int:
        """Until when the view of a node that is not voting was known to
        hold, in our corrected time: its last check when its checks went
        stale, else when we last heard from it."""
        view = self.view(node, target)
        shift = self._shift(node, correct_ms)
        if view.stale and view.checked is not None:
            held = view.checked.wall_ms
            if view.last_ok is not (view.state is VerdictState.UP) and view.before_streak_ms:
                # Its last checks already disagreed with its state (a streak
                # too short to move it): the state held until the check before.
                held = view.before_streak_ms
            return held + shift
        return self.heard.get(node, now_ms) + correct_ms

    def _shift(self, node: str, correct_ms: int) -> int:
        """What to add to a node's times (ours or a peer's) to put them in
        our corrected time."""
        return correct_ms if node == self.node else self._peer_shift(node, correct_ms)

    def _peer_shift(self, peer: str, correct_ms: int) -> int:
        """What to add to a peer's times to put them in our corrected time."""
        offset = self.peer_offset_ms.get(peer)
        if offset is not None:
            return correct_ms - offset
        try:
            published = self.health_of(peer).clock_error_ms
        except InvalidEntry:
            published = None
        return correct_ms if published is None else published

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

    def _event(
        self,
        subject: str,
        notice: Notice,
        state: AgreedState,
        previous: str,
        found: Assessment,
        now_ms: int,
    ) -> Event:
        views: dict[str, dict[str, JsonValue]] = {}
        for node in self.nodes:
            # Our own latest check is in memory; the log has it only as of
            # our last verdict change.
            view = self.verdicts.get(subject) if node == self.node else None
            view = view or self.view(node, subject)
            views[node] = {
                "state": view.state.value,
                "reason": view.reason,
                "latency_ms": view.latency_ms,
                "checked_ms": None if view.checked is None else view.checked.wall_ms,
                "voter": node in found.voters,
            }
        return Event(
            id=event_id(subject, notice, state.value, found.anchor, found.mode),
            subject=subject,
            notice=notice,
            state=state.value,
            previous=previous,
            anchor=found.anchor,
            mode=found.mode,
            voters=found.voters,
            views=views,
            suppressed=self._silent(subject),
        )

    def _silent(self, subject: str) -> bool:
        return subject in self.maintenance or subject in self.silenced

    def _partial_notes(self, now_ms: int) -> Step:
        step = Step()
        if self.node not in self._voters:
            return step
        for target in sorted(self._partial):
            record = self.record(target)
            if record.state is not AgreedState.PARTIAL or record.paged is not None:
                self._partial.discard(target)
                continue
            # Counted from the move to PARTIAL, not from the streak's anchor.
            entry = self.log.get(keys.state(target))
            if entry is None:
                continue
            began = max(entry.hlc.wall_ms, self.started_ms)
            if now_ms - began < self.settings.partial_note_after_ms:
                continue
            found = Assessment(
                record.state, record.mode, record.anchor, tuple(sorted(self._voters))
            )
            event = self._event(
                target, Notice.PARTIAL_LASTING, record.state, record.state.value, found, now_ms
            )
            noted = note_partial(record, event.id)
            step.written.append(self._write(keys.state(target), noted.to_value(), now_ms))
            step.commands.append(
                AgreedMoved(target, noted.state.value, noted.mode.value, noted.event)
            )
            step.extend(self._announce(event, now_ms))
        return step

    def _reminders(self, now_ms: int) -> Step:
        """Still DOWN after every ``remind_down_every_ms``: one reminder per
        round, with an id both nodes compute alike (target, outage, round)."""
        step = Step()
        every = self.settings.remind_down_every_ms
        if not every or self.node not in self._voters:
            return step
        for target in sorted(t for t, due in self._down.items() if due <= now_ms):
            record = self.record(target)
            since = record.since_ms
            if record.state is not AgreedState.DOWN or since is None:
                continue
            if record.event is not None and self.acknowledged(record.event):
                continue  # someone is on it: no more reminders for this outage
            rounds = (now_ms - since) // every
            self._down[target] = since + (rounds + 1) * every
            if rounds < 1:
                continue
            event_id_ = event_id(
                target, Notice.STILL_DOWN, record.state.value, record.anchor, record.mode,
                str(rounds),
            )  # fmt: skip
            if self.log.get(keys.event(event_id_)) is not None:
                continue
            found = Assessment(
                record.state, record.mode, record.anchor, tuple(sorted(self._voters))
            )
            event = self._event(target, Notice.STILL_DOWN, record.state, "DOWN", found, now_ms)
            event = replace(event, id=event_id_, previous_since_ms=since,
                            detail={"reminder": rounds, "down_for_ms": rounds * every})  # fmt: skip
            step.extend(self._announce(event, now_ms))
        return step

    def _clock_note(self, now_ms: int) -> Step:
        """One note when our clock jumped, at most one an hour (a clock that
        keeps stepping is one problem, not a page each time)."""
        jumped = self._clock_jumped
        if jumped is None or not self.canaries_ok:
            return Step()  # kept until our network is known to work
        self._clock_jumped = None
        if self._clock_told_ms is not None and now_ms - self._clock_told_ms < CLOCK_NOTE_EVERY_MS:
            return Step()
        self._clock_told_ms = now_ms
        subject = keys.node_subject(self.node)
        anchor = self.clock.tick(now_ms)
        event = Event(
            id=event_id(subject, Notice.CLOCK_JUMPED, "CLOCK", anchor, Mode.QUORUM),
            subject=subject,
            notice=Notice.CLOCK_JUMPED,
            state="CLOCK",
            previous="CLOCK",
            anchor=anchor,
            mode=Mode.QUORUM,
            voters=tuple(sorted(self._voters)),
            detail=jumped,
        )
        return self._announce(event, now_ms)

    # -- peers ---------------------------------------------------------------

    def _watch_peers(self, now_ms: int) -> Step:
        step = Step()
        if not self.canaries_ok or not self.ready(now_ms):
            # An isolated node cannot tell its peers' trouble from its own.
            return step
        for peer in self.peers:
            health = self.log.get(keys.health(peer))
            anchor = None if health is None else health.hlc
            if not self.is_live(peer, now_ms):
                seen = NodeState.PEER_LOST
            elif self.health_of(peer).canaries_ok is False:
                seen = NodeState.NODE_ISOLATED
            else:
                seen = NodeState.VOTING
            before = self.peer_record(peer)
            if seen is NodeState.VOTING and before.state is NodeState.VOTING:
                continue
            after, notice = observe_peer(before, seen, anchor, now_ms, self.settings)
            if after == before:
                continue
            entry = self._write(keys.peer(peer), after.to_value(), now_ms)
            step.written.append(entry)
            if notice is None:
                continue
            voters = tuple(sorted(self._voters - {peer}))
            found = Assessment(AgreedState.UNKNOWN, Mode.QUORUM, after.anchor, voters)
            subject = keys.node_subject(peer)
            refused = self.refused_by.get(peer) if notice is Notice.PEER_LOST else None
            event = Event(
                id=event_id(subject, notice, seen.value, after.anchor, Mode.QUORUM),
                subject=subject,
                notice=notice,
                state=seen.value,
                previous=before.state.value,
                anchor=found.anchor,
                mode=Mode.QUORUM,
                voters=voters,
                detail={"refused": refused} if refused else {},
            )
            step.extend(self._announce(event, now_ms))
            step.commands.append(Push((entry,)))
        return step

    # -- dispatch ------------------------------------------------------------

    def _announce(self, event: Event, now_ms: int) -> Step:
        """Record a new event and take our part in delivering it."""
        step = Step()
        if self.log.get(keys.event(event.id)) is None:
            hlc = self._decision_stamp(event.subject, now_ms)
            entry = self._write_at(keys.event(event.id), event.to_value(), hlc)
            self._place(entry)
            step.written.append(entry)
            step.commands.append(Push((entry,)))
        if not event.suppressed and event.id not in self.dispatch:
            step.extend(self._begin_dispatch(event, now_ms, settle_ms=0))
        return step

    def _decision_stamp(self, subject: str, now_ms: int) -> Hlc:
        """When an event is decided, for its subject's order. In our corrected
        time: two nodes cut apart, one clock minutes off, each decide a move
        of the same target, and users must hear them in the order they truly
        happened. (Sync goes by version, so a stamp behind our clock is safe.)
        And after every event of the subject we know of: what we decide
        having seen it comes after it, whatever clock stamped it."""
        hlc = Hlc(now_ms + self.reference.error_ms(now_ms), 0, self.node)
        latest = self.order.latest(subject)
        if latest is not None and latest >= hlc:
            hlc = Hlc(latest.wall_ms, latest.logical + 1, self.node)
        return hlc

    def _begin_dispatch(self, event: Event, now_ms: int, settle_ms: int) -> Step:
        if self.log.get(keys.sent(event.id)) is not None:
            return Step()
        candidates = event.voters or (self.node,)
        record = start(
            event.id, self.node, candidates, now_ms, self.settings.failover_ms, event.subject
        )
        if record.role is Role.SENDER:
            record = Dispatch(record.event_id, record.role, record.state, now_ms + settle_ms)
        self.dispatch[event.id] = record
        if record.role is Role.SENDER and settle_ms == 0 and self.storage_ok:
            return self._claim(record, now_ms)
        return Step()

    def _claim(self, record: Dispatch, now_ms: int) -> Step:
        step = Step()
        entry = self._write(keys.claim(record.event_id), {"node": self.node}, now_ms)
        step.written.append(entry)
        step.commands.append(Push((entry,)))
        self.dispatch[record.event_id] = record.move(
            Move.TAKE_OVER, now_ms + self.settings.claim_ack_wait_ms
        )
        return step

    def _post_if_still_ours(self, record: Dispatch, move: Move, now_ms: int) -> Step:
        claim = self.log.get(keys.claim(record.event_id))
        if self.log.get(keys.sent(record.event_id)) is not None:
            self.dispatch[record.event_id] = record.move(Move.SENT_SEEN)
            return Step()
        if claim is not None and _node_of(claim.value) != self.node:
            self._stand_by(record, now_ms)
            return Step()
        event = self.event(record.event_id)
        if event is None:
            return Step()
        self.dispatch[record.event_id] = record.move(move)
        return Step(commands=[Publish(event)])

    def _dispatch_deadlines(self, now_ms: int) -> Step:
        step = Step()
        for record in sorted(self.dispatch.values(), key=lambda d: (d.deadline_ms, d.event_id)):
            if not record.open or record.deadline_ms > now_ms:
                continue
            if record.state is DispatchState.CLAIMED:
                step.extend(self._post_if_still_ours(record, Move.ACK_TIMEOUT, now_ms))
                continue
            sent = self.log.get(keys.sent(record.event_id)) is not None
            if sent:
                self.dispatch[record.event_id] = record.move(Move.SENT_SEEN)
                continue
            claim = self.log.get(keys.claim(record.event_id))
            claimant = None if claim is None else _node_of(claim.value)
            live = claimant is not None and (
                claimant == self.node or self.is_live(claimant, now_ms)
            )
            if record.role is Role.SENDER:
                if claimant not in (None, self.node) and live:
                    # The standby took over while we could not claim: we
                    # stand by in case it cannot deliver either.
                    self._stand_by(record, now_ms)
                elif self.storage_ok:
                    step.extend(self._claim(record, now_ms))
                else:
                    # Nothing we claim could be kept: let the standby's
                    # failover find no claim, and look again shortly.
                    self.dispatch[record.event_id] = Dispatch(
                        record.event_id, record.role, record.state,
                        now_ms + self.settings.claim_ack_wait_ms,
                    )  # fmt: skip
                continue
            delivering = claimant is None or self.health_of(claimant).ntfy_ok is not False
            takes_over = standby_should_take_over(claimant, live, sent, self.node, delivering)
            if takes_over and self.canaries_ok and self.storage_ok and self.ntfy_ok is not False:
                step.extend(self._claim(record, now_ms))
            else:
                # Past the failover time, a live claimant's lease is looked
                # at again shortly: the moment it says it cannot deliver.
                wait = LEASE_LOOK_AGAIN_MS if claimant not in (None, self.node) else None
                deadline = now_ms + (wait or self.settings.failover_ms)
                self.dispatch[record.event_id] = Dispatch(
                    record.event_id, record.role, record.state, deadline
                )
        return step

    def _restore_dispatch(self, now_ms: int) -> None:
        """After a restart: every unsent event gets its sender or standby again,
        after a short settle so the first sync can show what the peer did."""
        for entry in self.log.items(keys.EVENT):
            event = Event.from_value(entry.key[len(keys.EVENT) :], entry.value)
            if event.suppressed or self.log.get(keys.sent(event.id)) is not None:
                continue
            claim = self.log.get(keys.claim(event.id))
            if claim is not None and _node_of(claim.value) == self.node:
                self.dispatch[event.id] = Dispatch(
                    event.id, Role.SENDER, DispatchState.CLAIMED, now_ms + RESTART_SETTLE_MS
                )
            else:
                self._begin_dispatch(event, now_ms, settle_ms=RESTART_SETTLE_MS)

    # -- reacting to merged entries -----------------------------------------

    def _react(self, merged: list[Entry], now_ms: int) -> Step:
        step = Step()
        touched: set[str] = set()
        for entry in merged:
            split = keys.split_obs(entry.key)
            if split is not None:
                node, target = split
                if target not in self.targets or node == self.node:
                    continue
                touched.add(target)
                view = Verdict.from_value(entry.value)
                if view.last_ok is False and view.fails == 1:
                    # A peer's first failure: look from here at once.
                    self._confirm.add(target)
                    step.commands.append(Recheck(target, 0))
                continue
            moved = self._index_move(entry) if entry.key.startswith(keys.MOVE) else None
            if moved is not None:
                step.commands.append(HistoryMoved(moved))
                continue
            target_of_state = keys.suffix(entry.key, keys.STATE)
            if target_of_state is not None and target_of_state in self.targets:
                touched.add(target_of_state)
                self._index_state(target_of_state)
                # A peer just decided: if we see it otherwise, our view may be
                # the stale one. Look again in a moment rather than answer at
                # once, so two nodes never overwrite each other in a loop.
                self._held[target_of_state] = now_ms + STATE_SETTLE_MS
                continue
            step.extend(self._react_dispatch(entry, now_ms))
        voters_step = self._reassess_if_voters_changed(now_ms)
        if not voters_step.written and not voters_step.commands:
            for target in sorted(touched):
                step.extend(self._evaluate(target, now_ms))
        step.extend(voters_step)
        return step

    def _react_dispatch(self, entry: Entry, now_ms: int) -> Step:
        event_key = keys.suffix(entry.key, keys.EVENT)
        if event_key is not None:
            event = Event.from_value(event_key, entry.value)
            self._place(entry)
            if not event.suppressed and event.id not in self.dispatch:
                return self._begin_dispatch(event, now_ms, settle_ms=0)
            return Step()
        sent_key = keys.suffix(entry.key, keys.SENT)
        if sent_key is not None:
            record = self.dispatch.get(sent_key)
            if record is not None and _node_of(entry.value) != self.node:
                self.dispatch[sent_key] = record.move(Move.SENT_SEEN)
            return Step(commands=list(self._release_later(sent_key)))
        claim_key = keys.suffix(entry.key, keys.CLAIM)
        if claim_key is not None:
            record = self.dispatch.get(claim_key)
            claimant = _node_of(entry.value)
            if (
                record is not None
                and record.state in (DispatchState.CLAIMED, DispatchState.POSTING)
                and claimant != self.node
            ):
                # Taken over: a post already in flight still completes, but
                # no further attempt is ours unless the taker fails too.
                self._stand_by(record, now_ms)
        return Step()

    def _stand_by(self, record: Dispatch, now_ms: int) -> None:
        lost = record.move(Move.CLAIM_LOST) if record.state is not DispatchState.WAITING else record
        self.dispatch[record.event_id] = Dispatch(
            lost.event_id, Role.STANDBY, lost.state, now_ms + self.settings.failover_ms
        )

    # -- helpers -------------------------------------------------------------

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

    def _hear(self, peer: str, now_ms: int) -> None:
        if not self.is_live(peer, now_ms):
            # Back from silence: what we hold of it is stale until a full pull.
            self._pulled.discard(peer)
        self.heard[peer] = now_ms

    @telling
    def peer_clock_observed(self, peer: str, wall_ms: int, now_ms: int) -> Step:
        """A verified answer from peer carried its wall clock: the offset is
        kept (the API shows it) and, past max_skew_ms, said. The one place a
        skew is told, whether seen here or in an entry stamped ahead."""
        offset_ms = wall_ms - now_ms
        self.peer_offset_ms[peer] = offset_ms
        step = Step()
        if abs(offset_ms) > self.settings.max_skew_ms:
            step.commands.extend(self._skew_warning(peer, offset_ms, now_ms))
        return step

    def _skew_warning(self, peer: str, offset_ms: int, now_ms: int) -> list[Warn]:
        """Every ten minutes at most per peer: a clock off stays off a while."""
        last = self._skew_warned.get(peer)
        if last is not None and now_ms - last < SKEW_WARN_EVERY_MS:
            return []
        self._skew_warned[peer] = now_ms
        detail: dict[str, str | int] = {
            "peer": peer, "offset_ms": offset_ms, "max_skew_ms": self.settings.max_skew_ms,
            "fix": "check NTP on both nodes",
        }  # fmt: skip
        return [Warn("clock_skew", detail)]


def admin_targets(log: LwwMap) -> dict[str, JsonValue]:
    """Targets written through the admin API into a log, by id: what a
    node reads before its core is built, and its core after."""
    return {e.key[len(keys.TARGET) :]: e.value for e in log.items(keys.TARGET)}


def _settled(verdict: Verdict) -> bool:
    """Whether the last check agrees with the verdict."""
    return (verdict.last_ok is True and verdict.state is VerdictState.UP) or (
        verdict.last_ok is False and verdict.state is VerdictState.DOWN
    )


def _wall_of(health: Entry) -> int | None:
    """The writer's wall clock when it wrote its health (older nodes: the
    entry's hlc, true unless it stands after a stamp from a clock step)."""
    try:
        wall = Health.from_value(health.value).wall_ms
    except InvalidEntry:
        return None
    return health.hlc.wall_ms if wall is None else wall


def _node_of(value: JsonValue) -> str | None:
    if isinstance(value, dict):
        node = value.get("node")
        return node if isinstance(node, str) else None
    return None


def _urgent(key: str) -> bool:
    return key.startswith(keys.URGENT_PREFIXES)


def _confirmed(verdict: Verdict) -> Verdict:
    return replace(verdict, confirmed=verdict.checked)


def _validate_value(entry: Entry) -> None:
    """Refuse a value that the core would fail to read later, a key no
    node writes, and a node's own facts written in another's name."""
    key = entry.key
    if not key.startswith(keys.KNOWN_PREFIXES):
        raise InvalidEntry(f"entry {key[:80]}: not a key the nodes write")
    owner = keys.owner(key)
    if owner is not None and owner != entry.origin:
        raise InvalidEntry(f"entry {key}: only {owner} writes it, not {entry.origin}")
    if entry.tombstone:
        return
    if keys.split_obs(key) is not None:
        Verdict.from_value(entry.value)
    elif key.startswith(keys.STATE):
        AgreedRecord.from_value(entry.value)
    elif key.startswith(keys.MOVE):
        split = keys.split_move(key)
        if split is None or split[1] != entry.hlc.encode():
            raise InvalidEntry(f"entry {key}: expected move/<target>/<its own hlc>")
        AgreedMove.from_value(split[0], entry.hlc, entry.value)
    elif key.startswith(keys.HEALTH):
        Health.from_value(entry.value)
    elif key.startswith(keys.PEER):
        PeerRecord.from_value(entry.value)
    elif key.startswith(keys.EVENT):
        Event.from_value(key[len(keys.EVENT) :], entry.value)
    elif key.startswith(keys.PUSH) and not (
        isinstance(entry.value, dict) and isinstance(entry.value.get("at_ms"), int)
    ):
        raise InvalidEntry(f"entry {key}: expected an object with at_ms")
    elif key.startswith((keys.CLAIM, keys.SENT)) and _node_of(entry.value) is None:
        raise InvalidEntry(f"entry {key}: expected an object with a node name")
    elif key.startswith(keys.ADMIN_PREFIXES) and not isinstance(entry.value, dict):
        # The shell validates the fields (a target's kind, a window's times).
        raise InvalidEntry(f"entry {key}: expected an object")
