"""One node's core: facts in, entries to commit and commands out.

Like h11's Connection, it never touches a socket, a database or a clock. The
shell hands it check results, canary results, peers' entries and the time;
it answers with a ``Step``: the entries to commit in one transaction, then
what to do (push to peers, re-check, post a notification, warn).

The core is built in layers, each a module of one topic: ``core_state``
(the log, its indexes and readers), ``delivering`` (each event posted once),
``agreeing`` (votes, moves, events, notes), and here the facts the shell
hands in and the tick.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from consensus import keys
from consensus.commands import (
    CheckCanaries,
    HistoryMoved,
    Push,
    Recheck,
    Step,
    Warn,
    telling,
)
from consensus.core_state import (
    GC_EVERY_MS,
    STALE_INTERVALS,
    STALE_SLACK_MS,
    STATE_SETTLE_MS,
    admin_targets,
    confirmed,
    settled,
    wall_of,
)
from consensus.entries import validate_value
from consensus.errors import InvalidEntry
from consensus.expiry import Expiring
from consensus.hlc import Hlc
from consensus.lww import DeltaPage, Entry, JsonValue
from consensus.peers import NodeState, grace_ms
from consensus.reports import next_due_ms, report_events
from consensus.settings import DAY_MS, LOG_WARN_FRACTION
from consensus.verdict import Verdict


class NodeCore(Expiring):
    """The pure state of one watcher node: facts in, steps out."""

    def next_tick_ms(self) -> int:
        """When ``tick`` next has work: the shell sleeps until then (or until
        a fact arrives, after which it asks again)."""
        due = [self._next_heartbeat_ms, self._next_gc_ms]
        timeout = self.settings.peer_timeout_ms
        # When a peer we still count as live would fall silent.
        due += [self.heard[p] + timeout + 1 for p in self.peers if p in self._voters]
        due += [d.deadline_ms for d in self.dispatch.values() if d.open]
        due += self.hook_deadlines()
        due += self._held.values()
        # Timed notes are due only where tick would act on them.
        if self.node in self._voters:
            for target in self._partial:
                entry = self.log.get(keys.state(target))
                if entry is not None:
                    began = max(entry.hlc.wall_ms, self.started_ms)
                    due.append(began + self.settings.partial_note_after_ms)
            due += self._down.values()
            due += self._escalate.values()
            if self._next_report_ms is not None and self.report_topics:
                due.append(self._next_report_ms)
        if self.canaries_ok:
            for peer in self.peers:
                record = self.peer_record(peer)
                if record.state is not NodeState.VOTING and not record.noted:
                    due.append(record.since_ms + grace_ms(record.state, self.settings))
        return min(due)

    @telling
    def check_observed(
        self, target: str, ok: bool, reason: str, latency_ms: float | None, now_ms: int
    ) -> Step:
        """One check of one target by this node finished."""
        if target not in self.targets:
            raise InvalidEntry(f"check of unknown target {target!r}")
        step = Step()
        self._checked_ms[target] = now_ms
        interval = self.intervals.get(target)
        if interval is not None:
            deadline = now_ms + STALE_INTERVALS * interval + STALE_SLACK_MS
            self._stale_from_ms = min(self._stale_from_ms, deadline)
        before = self.verdicts.get(target, Verdict())
        if target in self._resumed:
            self._resumed.discard(target)
            before = replace(before, checked=None)
        after = before.observe(ok, self.clock.tick(now_ms), reason, latency_ms, self.settings)
        if target in self._confirm:
            self._confirm.discard(target)
            after = confirmed(after)
        if before.stale and not settled(after):
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
            step.to_commit.append(entry)
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
        self._stale_from_ms = 0

    def _stale_views(self, now_ms: int) -> Step:
        """Our views whose checks stopped: marked stale in the log, so
        neither node counts them until we check again."""
        step = Step()
        if now_ms <= self._stale_from_ms:
            return step  # the common tick: no view's checks are that late yet
        soonest = 1 << 62
        for target, interval in self.intervals.items():
            verdict = self.verdicts.get(target)
            checked = self._checked_ms.get(target)
            if verdict is None or verdict.stale or checked is None or target not in self.targets:
                continue
            deadline = checked + STALE_INTERVALS * interval + STALE_SLACK_MS
            if now_ms <= deadline:
                soonest = min(soonest, deadline)
                continue
            stale = replace(verdict, stale=True)
            self.verdicts[target] = stale
            if self.canaries_ok is False:
                continue  # our checks do not vote anyway; the log shows the last good view
            entry = self._write(keys.obs(self.node, target), stale.to_value(), now_ms)
            step.to_commit.append(entry)
            step.commands.append(Push((entry,)))
            step.commands.append(
                Warn(
                    "stale_checks",
                    {
                        "target": target,
                        "last_check_s_ago": (now_ms - checked) // 1000,
                        "interval_s": interval // 1000,
                        "why": "this node's checks of the target stopped; its view does not vote "
                        "until it checks again",
                    },
                )
            )
            step.extend(self._evaluate(target, now_ms))
        self._stale_from_ms = soonest
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
        step.to_commit.append(entry)
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
        self._stale_from_ms = 0
        self.reference.stepped(delta_ms)
        self._next_heartbeat_ms += delta_ms
        self._next_gc_ms += delta_ms
        self.started_ms += delta_ms
        self._held = {target: at + delta_ms for target, at in self._held.items()}
        self.dispatch = {
            event_id_: replace(record, deadline_ms=record.deadline_ms + delta_ms)
            for event_id_, record in self.dispatch.items()
        }

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
            self._stale_from_ms = 0
            entry = self._write(keys.obs(self.node, target), fresh.to_value(), now_ms)
            step.to_commit.append(entry)
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
            validate_value(entry)
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
                wall = wall_of(entry)
                if wall is not None:
                    self.peer_offset_ms[entry.origin] = wall - now_ms
        # Checked above: merge reuses each size rather than check again.
        merged = [entry for entry, size in sized if self.log.merge(entry, size)]
        for entry in merged:
            self._index_view(entry)
        if covered:
            self.log.advance(covered)
        if complete:
            self._pulled.add(peer)
        step.to_commit.extend(merged)
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
            "entries": len(self.log),
            "bytes": self.log.bytes,
            "max_entries": cap_entries,
            "max_bytes": cap_bytes,
            "fraction": round(max(len(self.log) / cap_entries, self.log.bytes / cap_bytes), 4),
        }

    def _log_nearly_full(self) -> list[Warn]:
        """One warning when the log passes LOG_WARN_FRACTION of its cap, again
        only after it fell back well below."""
        fraction = float(self.log_usage()["fraction"])
        if fraction >= LOG_WARN_FRACTION and not self._log_warned:
            self._log_warned = True
            usage = self.log_usage()
            return [
                Warn(
                    "log_nearly_full",
                    {
                        "entries": len(self.log),
                        "max_entries": int(usage["max_entries"]),
                        "bytes": self.log.bytes,
                        "max_bytes": int(usage["max_bytes"]),
                        "then": "a peer's batches that add to it are refused; raise the cap "
                        "([storage] max_log_entries, max_log_mb) and the unit's MemoryMax",
                    },
                )
            ]
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
    def add_target(self, target: str, now_ms: int) -> Step:
        """Start watching a target at run time (from a reloaded config)."""
        self.targets.add(target)
        self._checked_ms.setdefault(target, now_ms)
        self._stale_from_ms = 0
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
        self._escalate.pop(target, None)
        self.parents.pop(target, None)
        self.tags.pop(target, None)
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
        return Step(to_commit=[entry], commands=[Push((entry,))])

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
    def admin_write(
        self, key: str, value: JsonValue, now_ms: int, audit: dict[str, JsonValue]
    ) -> Step:
        """An admin change (a target, a window, a silence, an acknowledgement),
        with its audit record, in one step that goes to the peer at once.
        A value of None removes the key (a tombstone)."""
        return self.admin_writes([(key, value, audit)], now_ms)

    @telling
    def admin_writes(
        self, changes: Sequence[tuple[str, JsonValue, dict[str, JsonValue]]], now_ms: int
    ) -> Step:
        """Admin changes that stand or fall together (``ravens targets
        apply``): every one is checked before any is written, then all go in
        one step, each with its audit record."""
        for key, _, _ in changes:
            if not key.startswith(keys.ADMIN_PREFIXES) or key.startswith(keys.AUDIT):
                raise InvalidEntry(f"{key}: not a key the admin API writes")
        # The checks a write makes, on candidates, before any write: the
        # changes stand or fall together.
        probe = Hlc(max(now_ms, 0), 0, self.node)
        for key, value, _ in changes:
            candidate = Entry(key, value, probe, self.node, 1, tombstone=value is None)
            candidate.check()
            validate_value(candidate)
        step = Step()
        for key, value, audit in changes:
            hlc = self.clock.tick(now_ms)
            entry = self._write_at(key, value, hlc, tombstone=value is None)
            record = self._write_at(
                f"{keys.AUDIT}{self.node}/{hlc.encode()}",
                {**audit, "key": key, "at_ms": now_ms},
                hlc,
            )
            step.to_commit += [entry, record]
        if step.to_commit:
            step.commands.append(Push(tuple(step.to_commit)))
        return step

    def set_report_topics(self, topics: Iterable[str]) -> None:
        """The shell says which topics get a weekly report."""
        self.report_topics = tuple(sorted(set(topics)))

    def _weekly_reports(self, now_ms: int) -> Step:
        """The week's reports, once each, when due; a voter decides them."""
        at = self.settings.weekly_report_at_ms
        due = self._next_report_ms
        if at is None or due is None or not self.report_topics or now_ms < due:
            return Step()
        if self.node not in self._voters:
            return Step()  # the other node reports, or we do once we vote again
        self._next_report_ms = next_due_ms(now_ms, at)
        step = Step()
        if now_ms - due > DAY_MS:
            return step  # stopped over it: a report a day late tells little
        for event in report_events(self.report_topics, due, tuple(sorted(self._voters))):
            if self.log.get(keys.event(event.id)) is None:
                step.extend(self._announce(event, now_ms))
        return step

    @telling
    def tick(self, now_ms: int) -> Step:
        """Time passed: heartbeats, peers, timed notes, dispatch deadlines."""
        step = Step()
        restarted = self.clock.restarted_ahead_ms
        if restarted is not None:
            self.clock.restarted_ahead_ms = None
            self.clock_restarted = (now_ms, restarted)
            why = "the wall clock stepped back, or a restart after it had stepped forward"
            detail: dict[str, str | int] = {"was_ahead_s": restarted // 1000, "why": why}
            step.commands.append(Warn("clock_restarted", detail))
            self._clock_jumped = {"was_ahead_ms": restarted}
        step.extend(self._clock_note(now_ms))
        if now_ms >= self._next_heartbeat_ms:
            self._next_heartbeat_ms = now_ms + self.settings.heartbeat_interval_ms
            if self.canaries_ok is not None:
                health = self._health(now_ms)
                entry = self._write(keys.health(self.node), health.to_value(), now_ms)
                step.to_commit.append(entry)
        step.extend(self._reassess_if_voters_changed(now_ms))
        step.extend(self._stale_views(now_ms))
        for target in sorted(t for t, until in self._held.items() if until <= now_ms):
            step.extend(self._evaluate(target, now_ms))
        step.extend(self._watch_peers(now_ms))
        step.extend(self._partial_notes(now_ms))
        step.extend(self._reminders(now_ms))
        step.extend(self._escalations(now_ms))
        step.extend(self._weekly_reports(now_ms))
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
            self._forget_finished_hooks()
        return step

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
        if not voters_step.to_commit and not voters_step.commands:
            for target in sorted(touched):
                step.extend(self._evaluate(target, now_ms))
        step.extend(voters_step)
        return step


__all__ = ["STALE_INTERVALS", "STALE_SLACK_MS", "NodeCore", "admin_targets"]
