"""Delivering each event once: the designated sender claims and posts, a
standby takes over when the sender cannot, and every node learns from the
log who posted. The state machine of one event is in dispatch.py; this
layer drives it with the core's log and clocks.
"""

from __future__ import annotations

from dataclasses import replace

from consensus import keys
from consensus.commands import (
    Publish,
    Push,
    Step,
    Warn,
    telling,
)
from consensus.core_state import (
    LEASE_LOOK_AGAIN_MS,
    RESTART_SETTLE_MS,
)
from consensus.dispatch import (
    Dispatch,
    DispatchState,
    Move,
    Role,
    standby_should_take_over,
    start,
)
from consensus.entries import node_of
from consensus.events import Event
from consensus.family import Covered, Wait
from consensus.hlc import Hlc
from consensus.lww import Entry, JsonValue
from consensus.tag_groups import Lead, TagGroups


class Delivering(TagGroups):
    """The event-delivery driver of a node's core."""

    def _resume(self, now_ms: int) -> None:
        self._restore_dispatch(now_ms)

    def should_post(self, event_id_: str) -> bool:
        """Asked by the notifier before each attempt: is this still ours to post?"""
        record = self.dispatch.get(event_id_)
        sent = self.log.get(keys.sent(event_id_))
        if sent is not None and node_of(sent.value) != self.node:
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
                released.append(Publish(self._as_told(event)))
        return released

    def took_over(self, event_id_: str) -> bool:
        """Whether we post this event as the standby, in place of the sender."""
        record = self.dispatch.get(event_id_)
        return record is not None and record.role is Role.STANDBY

    def sent_elsewhere(self, event_id_: str) -> bool:
        """Another node recorded that it posted this event."""
        sent = self.log.get(keys.sent(event_id_))
        return sent is not None and node_of(sent.value) != self.node

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
        step.to_commit.append(entry)
        step.commands.append(Push((entry,)))
        step.commands.extend(self._release_later(event_id_))
        return step

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
            step.to_commit.append(entry)
            step.commands.append(Push((entry,)))
        if not ok:
            wait_s = self.settings.failover_ms // 1000
            step.commands.append(Warn("ntfy_unreachable", {"standby_takes_over_after_s": wait_s}))
        elif was is False:
            step.commands.append(Warn("ntfy_reachable_again", {}))
        return step

    def _announce(self, event: Event, now_ms: int) -> Step:
        """Record a new event and take our part in delivering it."""
        step = Step()
        if self.log.get(keys.event(event.id)) is None:
            hlc = self._decision_stamp(event.subject, now_ms)
            entry = self._write_at(keys.event(event.id), event.to_value(), hlc)
            self._place(entry)
            step.to_commit.append(entry)
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
            return self._claim_or_wait(record, now_ms)
        return Step()

    def _claim_or_wait(self, record: Dispatch, now_ms: int) -> Step:
        """Claim the post, unless its family says it waits or is told by
        its parent's page (family.py): decided here, by the one node about
        to claim, and the log carries the decision."""
        event = self.event(record.event_id)
        says: Wait | Covered | Lead | None = None
        if event is not None:
            says = self._family_says(event, now_ms) or self._tag_says(event, now_ms)
        if isinstance(says, Wait):
            self.dispatch[record.event_id] = replace(record, deadline_ms=says.until_ms)
            return Step()
        self._family_since.pop(record.event_id, None)
        if isinstance(says, Covered):
            return self._cover(record, says.by, now_ms)
        step = self._claim(record, now_ms)
        if isinstance(says, Lead):
            # The group is decided here, with the leader's claim: the log
            # carries it to whichever node posts the leader's page.
            for member in says.members:
                self._family_since.pop(member, None)
                found = self.dispatch.get(member) or Dispatch(
                    member, Role.STANDBY, DispatchState.WAITING, now_ms
                )
                step.extend(self._cover(found, record.event_id, now_ms, says.tag))
        return step

    def _cover(self, record: Dispatch, covering: str, now_ms: int, tag: str | None = None) -> Step:
        """Marked sent, as told by the page of covering (a parent's, or its
        tag group's leader): the standby stands down as it would for a
        post, and later events of the target go on."""
        step = Step()
        self.dispatch[record.event_id] = record.move(Move.POSTED)
        value: dict[str, JsonValue] = {"node": self.node, "covered_by": covering}
        if tag is not None:
            value["tag"] = tag
        entry = self._write(keys.sent(record.event_id), value, now_ms)
        step.to_commit.append(entry)
        step.commands.append(Push((entry,)))
        step.commands.extend(self._release_later(record.event_id))
        return step

    def _claim(self, record: Dispatch, now_ms: int) -> Step:
        step = Step()
        entry = self._write(keys.claim(record.event_id), {"node": self.node}, now_ms)
        step.to_commit.append(entry)
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
        if claim is not None and node_of(claim.value) != self.node:
            self._stand_by(record, now_ms)
            return Step()
        event = self.event(record.event_id)
        if event is None:
            return Step()
        self.dispatch[record.event_id] = record.move(move)
        return Step(commands=[Publish(self._as_told(event))])

    def _as_told(self, event: Event) -> Event:
        """The event as its page tells it: with its family or group."""
        return self._with_group(self._with_family(event))

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
            claimant = None if claim is None else node_of(claim.value)
            live = claimant is not None and (
                claimant == self.node or self.is_live(claimant, now_ms)
            )
            if record.role is Role.SENDER:
                if claimant not in (None, self.node) and live:
                    # The standby took over while we could not claim: we
                    # stand by in case it cannot deliver either.
                    self._stand_by(record, now_ms)
                elif self.storage_ok:
                    step.extend(self._claim_or_wait(record, now_ms))
                else:
                    # Nothing we claim could be kept: let the standby's
                    # failover find no claim, and look again shortly.
                    self.dispatch[record.event_id] = Dispatch(
                        record.event_id,
                        record.role,
                        record.state,
                        now_ms + self.settings.claim_ack_wait_ms,
                    )
                continue
            delivering = claimant is None or self.health_of(claimant).ntfy_ok is not False
            takes_over = standby_should_take_over(claimant, live, sent, self.node, delivering)
            if takes_over and self.canaries_ok and self.storage_ok and self.ntfy_ok is not False:
                step.extend(self._claim_or_wait(record, now_ms))
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
            if claim is not None and node_of(claim.value) == self.node:
                self.dispatch[event.id] = Dispatch(
                    event.id, Role.SENDER, DispatchState.CLAIMED, now_ms + RESTART_SETTLE_MS
                )
            else:
                self._begin_dispatch(event, now_ms, settle_ms=RESTART_SETTLE_MS)

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
            if record is not None and node_of(entry.value) != self.node:
                self.dispatch[sent_key] = record.move(Move.SENT_SEEN)
            return Step(commands=list(self._release_later(sent_key)))
        claim_key = keys.suffix(entry.key, keys.CLAIM)
        if claim_key is not None:
            record = self.dispatch.get(claim_key)
            claimant = node_of(entry.value)
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
