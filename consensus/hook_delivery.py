"""Delivering each event to each webhook once, by the rules ntfy's posts
follow (delivering.py): one designated sender per target, a claim the peer
acknowledges, a standby that takes over from a node that is gone or cannot
reach the webhook, a ``hooksent`` mark that stops every other attempt, and
a target's events in the order they were decided.

What differs is what a webhook is for: a program, not a person. Each event
goes by itself (no family or tag-group pages, no summaries), and the
webhooks an event goes to are named in the event when it is decided, so a
webhook added later never gets old events and both nodes deliver the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from consensus import keys
from consensus.commands import Publish, Push, Step, Warn, telling
from consensus.core_state import LEASE_LOOK_AGAIN_MS, RESTART_SETTLE_MS
from consensus.delivering import Delivering
from consensus.dispatch import Dispatch, DispatchState, Move, Role, standby_should_take_over, start
from consensus.entries import node_of
from consensus.events import Event
from consensus.lww import Entry

Delivery = tuple[str, str]  # (webhook, event id)


class HookDelivering(Delivering):
    """The webhook-delivery driver of a node's core."""

    @telling
    def set_hooks(self, hooks: Mapping[str, frozenset[str] | None], now_ms: int) -> Step:
        """The webhooks the config names (name -> the notices each wants;
        None: every one). Deliveries still owed to them resume after a short
        settle, so the first sync can show what the peer did meanwhile."""
        self.hooks = dict(hooks)
        self.hook_dispatch = {d: r for d, r in self.hook_dispatch.items() if d[0] in self.hooks}
        self.hooks_failing &= set(self.hooks)
        for entry in self.log.items(keys.EVENT):
            event = Event.from_value(entry.key[len(keys.EVENT) :], entry.value)
            for hook in self._owed(event):
                if (hook, event.id) in self.hook_dispatch:
                    continue
                claim = self.log.get(keys.hook_claim(hook, event.id))
                if claim is not None and node_of(claim.value) == self.node:
                    self.hook_dispatch[(hook, event.id)] = Dispatch(
                        event.id, Role.SENDER, DispatchState.CLAIMED, now_ms + RESTART_SETTLE_MS
                    )
                else:
                    self._begin_hook(hook, event, now_ms, RESTART_SETTLE_MS)
        return Step()

    def _owed(self, event: Event) -> list[str]:
        """The configured webhooks the event names and nobody delivered it to."""
        if event.suppressed:
            return []
        return [
            hook
            for hook in event.hooks
            if hook in self.hooks and self.log.get(keys.hook_sent(hook, event.id)) is None
        ]

    def _hooks_for(self, event: Event) -> tuple[str, ...]:
        if event.suppressed:
            return ()
        return tuple(
            hook
            for hook, notices in sorted(self.hooks.items())
            if notices is None or event.notice.value in notices
        )

    # -- what the webhook's courier asks --------------------------------------

    def should_deliver(self, hook: str, event_id_: str) -> bool:
        """Asked before each attempt: is this delivery still ours to make?"""
        if self.hook_sent_elsewhere(hook, event_id_):
            return False
        record = self.hook_dispatch.get((hook, event_id_))
        if record is None or record.state is not DispatchState.POSTING:
            return False
        return (
            not self.hook_superseded(hook, event_id_)
            and self._hook_held_back(hook, event_id_) is None
        )

    def hook_sent_elsewhere(self, hook: str, event_id_: str) -> bool:
        sent = self.log.get(keys.hook_sent(hook, event_id_))
        return sent is not None and node_of(sent.value) != self.node

    def hook_superseded(self, hook: str, event_id_: str) -> bool:
        """Never delivered, as never posted to ntfy: a moot note, the second
        of two twins, or an event a later one of its target already told
        this webhook (delivered now, it would say a state that is over)."""
        if self.order.superseded(event_id_):
            return True
        if any(
            self.log.get(keys.hook_sent(hook, later)) is not None
            for later in self.order.later(event_id_)
        ):
            return True
        before = self.order.twin_before(event_id_)
        return before is not None and self._tells_users(before)

    def _hook_held_back(self, hook: str, event_id_: str) -> str | None:
        """An earlier event of the same target for this webhook, still
        undelivered anywhere: it goes first."""
        for earlier in self.order.earlier(event_id_):
            if self.log.get(keys.hook_sent(hook, earlier)) is not None:
                continue
            if self.hook_superseded(hook, earlier):
                continue
            event = self.event(earlier)
            if event is not None and hook in self._owed(event):
                return earlier
        return None

    # -- facts from the courier -----------------------------------------------

    @telling
    def hook_delivered(self, hook: str, event_id_: str, now_ms: int) -> Step:
        """The webhook answered 2xx to our delivery of this event."""
        delivery = (hook, event_id_)
        record = self.hook_dispatch.get(delivery)
        if record is not None:
            self.hook_dispatch[delivery] = record.move(Move.POSTED)
        else:
            self.hook_dispatch[delivery] = Dispatch(
                event_id_, Role.STANDBY, DispatchState.SENT, now_ms
            )
        entry = self._write(keys.hook_sent(hook, event_id_), {"node": self.node}, now_ms)
        return Step([entry], [Push((entry,)), *self._release_later_for(hook, event_id_)])

    @telling
    def hook_observed(self, hook: str, ok: bool, now_ms: int) -> Step:
        """An attempt to reach the webhook got an answer (ok: any answer but
        a 5xx) or none. Told to the peers at once, as ntfy's is: a standby
        takes over the deliveries of a node that cannot make them."""
        if hook not in self.hooks or ok == (hook not in self.hooks_failing):
            return Step()
        if ok:
            self.hooks_failing.discard(hook)
        else:
            self.hooks_failing.add(hook)
        step = Step()
        if self.canaries_ok is not None:
            entry = self._write(keys.health(self.node), self._health(now_ms).to_value(), now_ms)
            step.to_commit.append(entry)
            step.commands.append(Push((entry,)))
        what = "webhook_reachable_again" if ok else "webhook_unreachable"
        step.commands.append(Warn(what, {"hook": hook}))
        return step

    def _hook_claim_acknowledged(self, hook: str, event_id_: str, now_ms: int) -> Step:
        record = self.hook_dispatch.get((hook, event_id_))
        if record is None or record.state is not DispatchState.CLAIMED:
            return Step()
        if record.role is Role.STANDBY:
            # A takeover waits out the claim's timer instead: the node it took
            # over from may have delivered just now, its mark on the way. (ntfy
            # is asked by sequence id before a takeover; a receiver cannot be.)
            return Step()
        return self._deliver_if_still_ours(hook, record, Move.CLAIM_ACKED, now_ms)

    @telling
    def claim_acknowledged(self, event_id_: str, now_ms: int) -> Step:
        """The peer confirmed it holds our claim: post without waiting longer."""
        delivery = keys.split_hook_delivery(event_id_)
        if delivery is not None:
            return self._hook_claim_acknowledged(*delivery, now_ms)
        return super().claim_acknowledged(event_id_, now_ms)

    # -- the driver -----------------------------------------------------------

    def _announce(self, event: Event, now_ms: int) -> Step:
        if self.log.get(keys.event(event.id)) is None:
            event = replace(event, hooks=self._hooks_for(event))
        step = super()._announce(event, now_ms)
        step.extend(self._begin_hooks(event.id, now_ms))
        return step

    def _begin_hooks(self, event_id_: str, now_ms: int) -> Step:
        step = Step()
        event = self.event(event_id_)
        if event is None:
            return step
        for hook in self._owed(event):
            if (hook, event.id) not in self.hook_dispatch:
                step.extend(self._begin_hook(hook, event, now_ms, settle_ms=0))
        return step

    def _begin_hook(self, hook: str, event: Event, now_ms: int, settle_ms: int) -> Step:
        # The sender is chosen by target, as for ntfy: the node whose
        # outbox keeps the target's events in order.
        record = start(
            event.id,
            self.node,
            event.voters or (self.node,),
            now_ms,
            self.settings.failover_ms,
            event.subject,
        )
        if record.role is Role.SENDER:
            record = replace(record, deadline_ms=now_ms + settle_ms)
        self.hook_dispatch[(hook, event.id)] = record
        if record.role is Role.SENDER and settle_ms == 0 and self.storage_ok:
            return self._hook_claim(hook, record, now_ms)
        return Step()

    def _hook_claim(self, hook: str, record: Dispatch, now_ms: int) -> Step:
        entry = self._write(keys.hook_claim(hook, record.event_id), {"node": self.node}, now_ms)
        self.hook_dispatch[(hook, record.event_id)] = record.move(
            Move.TAKE_OVER, now_ms + self.settings.claim_ack_wait_ms
        )
        return Step([entry], [Push((entry,))])

    def _deliver_if_still_ours(self, hook: str, record: Dispatch, move: Move, now_ms: int) -> Step:
        delivery = (hook, record.event_id)
        if self.log.get(keys.hook_sent(*delivery)) is not None:
            self.hook_dispatch[delivery] = record.move(Move.SENT_SEEN)
            return Step()
        claim = self.log.get(keys.hook_claim(*delivery))
        if claim is not None and node_of(claim.value) != self.node:
            self._hook_stand_by(hook, record, now_ms)
            return Step()
        event = self.event(record.event_id)
        if event is None:
            return Step()
        self.hook_dispatch[delivery] = record.move(move)
        return Step(commands=[Publish(event, hook)])

    def _release_later_for(self, hook: str, event_id_: str) -> list[Publish]:
        """Our deliveries of the target's later events that waited on this one."""
        released = []
        for later in self.order.later(event_id_):
            record = self.hook_dispatch.get((hook, later))
            event = self.event(later)
            if record is not None and record.state is DispatchState.POSTING and event is not None:
                released.append(Publish(event, hook))
        return released

    def _hook_stand_by(self, hook: str, record: Dispatch, now_ms: int) -> None:
        lost = record.move(Move.CLAIM_LOST) if record.state is not DispatchState.WAITING else record
        self.hook_dispatch[(hook, record.event_id)] = Dispatch(
            lost.event_id, Role.STANDBY, lost.state, now_ms + self.settings.failover_ms
        )

    def _dispatch_deadlines(self, now_ms: int) -> Step:
        step = super()._dispatch_deadlines(now_ms)
        due = sorted(
            (d for d in self.hook_dispatch.items() if d[1].open and d[1].deadline_ms <= now_ms),
            key=lambda d: (d[1].deadline_ms, d[0]),
        )
        for (hook, _), record in due:
            step.extend(self._hook_deadline(hook, record, now_ms))
        return step

    def _hook_deadline(self, hook: str, record: Dispatch, now_ms: int) -> Step:
        delivery = (hook, record.event_id)
        if record.state is DispatchState.CLAIMED:
            return self._deliver_if_still_ours(hook, record, Move.ACK_TIMEOUT, now_ms)
        sent = self.log.get(keys.hook_sent(*delivery)) is not None
        if sent:
            self.hook_dispatch[delivery] = record.move(Move.SENT_SEEN)
            return Step()
        claim = self.log.get(keys.hook_claim(*delivery))
        claimant = None if claim is None else node_of(claim.value)
        live = claimant is not None and (claimant == self.node or self.is_live(claimant, now_ms))
        if record.role is Role.SENDER:
            if claimant not in (None, self.node) and live:
                self._hook_stand_by(hook, record, now_ms)
                return Step()
            if self.storage_ok:
                return self._hook_claim(hook, record, now_ms)
            wait = now_ms + self.settings.claim_ack_wait_ms
            self.hook_dispatch[delivery] = replace(record, deadline_ms=wait)
            return Step()
        delivering = claimant is None or hook not in self.health_of(claimant).hooks_failing
        takes_over = standby_should_take_over(claimant, live, sent, self.node, delivering)
        # Our own failing mark stops a takeover only from a live claimant:
        # from a node that is gone we take over whatever we last met, or
        # nobody would deliver.
        reaches = hook not in self.hooks_failing or not live
        if takes_over and reaches and self.canaries_ok and self.storage_ok:
            return self._hook_claim(hook, record, now_ms)
        # A live claimant's lease is looked at again shortly.
        lease = claimant not in (None, self.node)
        wait = LEASE_LOOK_AGAIN_MS if lease else self.settings.failover_ms
        self.hook_dispatch[delivery] = replace(record, deadline_ms=now_ms + wait)
        return Step()

    def _react_dispatch(self, entry: Entry, now_ms: int) -> Step:
        step = super()._react_dispatch(entry, now_ms)
        event_key = keys.suffix(entry.key, keys.EVENT)
        if event_key is not None:
            step.extend(self._begin_hooks(event_key, now_ms))
            return step
        sent = keys.split_hook_delivery(keys.suffix(entry.key, keys.HOOK_SENT) or "")
        if sent is not None:
            record = self.hook_dispatch.get(sent)
            if record is not None and node_of(entry.value) != self.node:
                self.hook_dispatch[sent] = record.move(Move.SENT_SEEN)
            step.commands.extend(self._release_later_for(*sent))
            return step
        claimed = keys.split_hook_delivery(keys.suffix(entry.key, keys.HOOK_CLAIM) or "")
        if claimed is not None:
            record = self.hook_dispatch.get(claimed)
            taken = record is not None and record.state in (
                DispatchState.CLAIMED,
                DispatchState.POSTING,
            )
            if record is not None and taken and node_of(entry.value) != self.node:
                # Taken over: a delivery in flight completes, nothing more.
                self._hook_stand_by(claimed[0], record, now_ms)
        return step

    def hook_deadlines(self) -> list[int]:
        """When a webhook delivery next has work (for next_tick_ms)."""
        return [d.deadline_ms for d in self.hook_dispatch.values() if d.open]

    def _forget_finished_hooks(self) -> None:
        self.hook_dispatch = {k: d for k, d in self.hook_dispatch.items() if not d.finished}
