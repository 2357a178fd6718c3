"""Agreeing on each target's state: who votes (peers heard from, clocks
judged), what the votes say, the moves and events that follow, and the
timed notes and reminders.
"""

from __future__ import annotations

from dataclasses import replace

from consensus import keys
from consensus.agreement import (
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
    HistoryMoved,
    Push,
    Step,
    Warn,
    telling,
)
from consensus.core_state import (
    CLOCK_NOTE_EVERY_MS,
    SKEW_WARN_EVERY_MS,
    is_urgent,
)
from consensus.errors import InvalidEntry
from consensus.events import Event, event_id
from consensus.history import AgreedMove
from consensus.hlc import Hlc
from consensus.hook_delivery import HookDelivering
from consensus.lww import JsonValue
from consensus.peers import NodeState, observe_peer
from consensus.verdict import VerdictState


class Agreeing(HookDelivering):
    """Agreement over the votes of the live nodes."""

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
        step.to_commit.append(self._write(keys.state(target), moved.to_value(), now_ms))
        step.commands.append(AgreedMoved(target, moved.state.value, moved.mode.value, moved.event))
        step.extend(self._record_move(target, found, moved.event, now_ms))
        if event is not None:
            step.extend(self._announce(event, now_ms))
        # The views behind the decision travel with it, so the peer decides
        # from the same facts.
        views = [self.log.get(keys.obs(n, target)) for n in self.nodes]
        urgent = [e for e in step.to_commit if is_urgent(e.key)]
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
        left = [
            self._held_until(node, target, correct_ms, now_ms)
            for node in self.nodes
            if node not in found.voters
        ]
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
        return Step(to_commit=[entry], commands=[HistoryMoved(target)])

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
            step.to_commit.append(self._write(keys.state(target), noted.to_value(), now_ms))
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
            rounds = (now_ms - since) // every
            # Due again next round in any case: looked at once per round.
            self._down[target] = since + (rounds + 1) * every
            if rounds < 1 or (record.event is not None and self._on_it(record.event)):
                continue  # someone is on it, or another page's reminders speak for it
            detail: dict[str, JsonValue] = {
                "reminder": rounds,
                "down_for_ms": rounds * every,
                "incident": record.event,
            }
            step.extend(self._outage_note(target, Notice.STILL_DOWN, str(rounds), detail, now_ms))
        return step

    def _escalations(self, now_ms: int) -> Step:
        """A DOWN nobody acknowledged within ``escalate_after_ms``: posted
        once more, to the escalation topic, with an id both nodes compute
        alike (target, outage), so one node posts it once."""
        step = Step()
        after = self.settings.escalate_after_ms
        if not after or self.node not in self._voters:
            return step
        for target in sorted(t for t, due in self._escalate.items() if due <= now_ms):
            del self._escalate[target]
            record = self.record(target)
            incident, since = record.event, record.since_ms
            if record.state is not AgreedState.DOWN or incident is None or since is None:
                continue
            if self._on_it(incident) or self._silent(target):
                continue  # someone is on it, or nobody was to be paged
            detail: dict[str, JsonValue] = {"incident": incident, "down_for_ms": now_ms - since}
            step.extend(self._outage_note(target, Notice.ESCALATED, "", detail, now_ms))
        return step

    def _on_it(self, incident: str) -> bool:
        """Acknowledged, or told in another target's page (its parent's,
        its group's leader's) whose acknowledgement counts for it and whose
        reminders and escalation speak for it while that target is down."""
        if self.acknowledged(incident):
            return True
        by = self.covered_by(incident)
        cover = None if by is None else self.event(by)
        if cover is None:
            return False
        return self.acknowledged(cover.id) or self.record(cover.subject).state is AgreedState.DOWN

    def _outage_note(
        self, target: str, notice: Notice, extra: str, detail: dict[str, JsonValue], now_ms: int
    ) -> Step:
        """A timed notice about an outage that goes on (a reminder, an
        escalation), once: its id is the outage's and ``extra``'s."""
        record = self.record(target)
        id_ = event_id(target, notice, record.state.value, record.anchor, record.mode, extra)
        if self.log.get(keys.event(id_)) is not None:
            return Step()
        found = Assessment(record.state, record.mode, record.anchor, tuple(sorted(self._voters)))
        event = self._event(target, notice, record.state, "DOWN", found, now_ms)
        event = replace(event, id=id_, previous_since_ms=record.since_ms, detail=detail)
        return self._announce(event, now_ms)

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
            step.to_commit.append(entry)
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
            "peer": peer,
            "offset_ms": offset_ms,
            "max_skew_ms": self.settings.max_skew_ms,
            "fix": "check NTP on both nodes",
        }
        return [Warn("clock_skew", detail)]
