"""Groups by tag: when many targets that share a tag (a rack, a provider,
one customer's stack) go down within a short window, one page says so,
not one each; and one more when they are back.

Notes of trouble seen from one side only group alike.

A group is formed by the one node about to claim the page of its leader:
of the unsent, unclaimed DOWNs of one tag (each waits a window first, so
they are the ones decided lately), the earliest decided, then the
smallest id: every node holding the same log names the same one. If there are at least
``group_min_targets``, the leader's claimant marks each other member sent,
covered by the leader (``covered_by`` with the ``tag``), in the same step
as its claim. The log carries the group: the leader's page goes out
through the usual claim, post and failover, and names the members the log
shows covered by it, whichever node posts it. A member that is not the
leader waits for its cover, until the leader is told without it, or at
most MAX_WINDOWS windows and a failover; then it goes alone (a second
copy, never a loss).

Recoveries group the same way: the unsent UPs of members of one told
group go as one message from the earliest, which also lists the members
still down.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from consensus import keys
from consensus.agreement import AgreedState, Notice
from consensus.events import Event
from consensus.family import LOOK_AGAIN_MS, MAX_WINDOWS, Families, Wait
from consensus.lww import JsonValue

# What groups form by: a trouble and the agreed state it is told in, and
# the recovery that ends either.
TROUBLE = {Notice.DOWN: AgreedState.DOWN, Notice.PARTIAL_LASTING: AgreedState.PARTIAL}
GROUP_NOTICES = (*TROUBLE, Notice.UP)


@dataclass(frozen=True, slots=True)
class Lead:
    """This event's page tells of a group: the other members are covered by it."""

    tag: str
    members: tuple[str, ...]


class _Wait:
    """Look again shortly."""


WAIT = _Wait()


class TagGroups(Families):
    """Which targets share which tags, and the pages they share."""

    def set_tags(self, target: str, tags: tuple[str, ...]) -> None:
        """The shell says target's tags (the ones groups form by)."""
        if tags:
            self.tags[target] = tuple(sorted(set(tags)))
        else:
            self.tags.pop(target, None)

    def tagged(self, tag: str) -> list[str]:
        return sorted(t for t, tags in self.tags.items() if tag in tags and t in self.targets)

    def group_leader(self, event_id_: str) -> tuple[str, str] | None:
        """(leader event, tag) of the group an event's page was told in:
        its own, if it led one."""
        sent = self.log.get(keys.sent(event_id_))
        value = None if sent is None else sent.value
        if isinstance(value, dict) and isinstance(value.get("tag"), str):
            by = value.get("covered_by")
            if isinstance(by, str):
                return by, str(value["tag"])
        for entry in self.log.items(keys.SENT):
            found = entry.value
            if isinstance(found, dict) and found.get("covered_by") == event_id_:
                tag = found.get("tag")
                if isinstance(tag, str):
                    return event_id_, tag
        return None

    def group_members(self, leader: str) -> list[str]:
        """The events a leader's page told of, its own first."""
        covered = sorted(
            entry.key[len(keys.SENT) :]
            for entry in self.log.items(keys.SENT)
            if isinstance(entry.value, dict)
            and entry.value.get("covered_by") == leader
            and "tag" in entry.value
        )
        return [leader, *covered]

    def _group_window_ms(self, tag: str) -> int:
        # Long enough for every member to be checked once more.
        return max(
            self.settings.group_window_ms, *(self.intervals.get(t, 0) for t in self.tagged(tag))
        )

    def _tag_says(self, event: Event, now_ms: int) -> Wait | Lead | None:
        """Whether the page of event waits for its tag's group, leads one
        (its claimant covers the rest), or goes alone (None)."""
        if event.notice not in GROUP_NOTICES or event.subject not in self.tags:
            return None
        if self.log.get(keys.claim(event.id)) is not None:
            return None  # already claimed, alone or as a leader: as it was
        if event.notice in TROUBLE:
            groups = [
                (tag, self._troubles(tag, event.notice)) for tag in self._groupable(event.subject)
            ]
            least = self.settings.group_min_targets
        else:
            told = self._told_group(event)
            if told is None:
                return None
            groups = [(told[1], self._ups(told[0]))]
            least = 2
        if not groups:
            return None
        began = self._family_since.setdefault(event.id, now_ms)
        for tag, candidates in groups:
            window = self._group_window_ms(tag)
            if now_ms < began + window:
                return Wait(began + window)
            says = self._in_group(event, tag, candidates, least, window, began, now_ms)
            if says is WAIT:
                return Wait(now_ms + LOOK_AGAIN_MS)
            if isinstance(says, Lead):
                return says
        return None

    def _in_group(
        self,
        event: Event,
        tag: str,
        candidates: list[Event],
        least: int,
        window: int,
        began_ms: int,
        now_ms: int,
    ) -> Lead | _Wait | None:
        if not candidates:
            return None
        if (
            event.notice is Notice.PARTIAL_LASTING
            and now_ms < began_ms + MAX_WINDOWS * window
            and self._seen_up_again(event.subject)
        ):
            # Seen up again from every side: its UP is a check or two away,
            # and overtakes a note nobody needs any more.
            return WAIT
        # Every one still unclaimed: none has waited longer than a few
        # windows. (Not by decision time: two nodes' stamps of one rack's
        # trouble can be minutes apart when a clock is off.)
        leader, members = candidates[0], candidates
        if event.id not in {m.id for m in members}:
            return None
        undecided = [t for t in self._relatives(tag, event) if self._undecided(t, event.notice)]
        limit = began_ms + MAX_WINDOWS * window
        if event.notice is Notice.PARTIAL_LASTING:
            # A relative seen down from one side has its own note in time
            # (a while after its trouble began): the group waits for it.
            limit = max([limit, *(self._note_due_ms(t) + window for t in undecided)])
        deciding = now_ms < limit
        if len(members) < least:
            # Fewer than a group: wait only while the rest could still make one.
            if deciding and len(members) + len(undecided) >= least:
                return WAIT
            return None
        if event.id == leader.id:
            if deciding and undecided:
                return WAIT
            return Lead(tag, tuple(m.id for m in members[1:]))
        if self._claimed_elsewhere(leader.id):
            return None  # claimed without us: we go alone
        # The leader's claimant covers us as it claims: we wait for it as
        # long as the leader itself may wait (for notes still to come, too),
        # and a failover more, should its sender fail.
        cap = began_ms + MAX_WINDOWS * window + self.settings.failover_ms
        if event.notice is Notice.PARTIAL_LASTING:
            cap += self.settings.partial_note_after_ms
        return WAIT if now_ms < cap else None

    def _relatives(self, tag: str, event: Event) -> list[str]:
        if event.notice in TROUBLE:
            return [t for t in self.tagged(tag) if t != event.subject]
        told = self._told_group(event)
        if told is None:
            return []
        return [t for t in self._group_targets(told[0]) if t != event.subject]

    def _groupable(self, target: str) -> list[str]:
        least = self.settings.group_min_targets
        return [tag for tag in self.tags.get(target, ()) if len(self.tagged(tag)) >= least]

    def _pending(self, target: str, notice: Notice) -> Event | None:
        """The target's newest event, if it is of notice and not yet told.
        (Not only its agreed record's: a recovery decided by one node alone
        stays to be told when the pair then agrees on something else.)"""
        # Of the moves groups form by: a reminder after a DOWN is no move.
        incident = self.order.newest(target, GROUP_NOTICES)
        if incident is None or self.log.get(keys.sent(incident)) is not None:
            return None
        event = self.event(incident)
        if event is None or event.notice is not notice or event.suppressed:
            return None
        return event

    def _troubles(self, tag: str, notice: Notice) -> list[Event]:
        """The tag's unsent DOWNs (or notes of trouble seen from one side),
        earliest decided first: each its target's newest move, whatever
        the pair agreed since (a DOWN one node decided alone is told even
        when its peer, back, makes it PARTIAL)."""
        found = []
        for target in self.tagged(tag):
            event = self._pending(target, notice)
            if event is not None and not self._claimed_elsewhere(event.id):
                found.append(event)
        return sorted(found, key=lambda e: (e.at_ms or 0, e.id))

    def _ups(self, leader: str) -> list[Event]:
        """The unsent UPs of the members of a told group, earliest first."""
        found = []
        for target in self._group_targets(leader):
            event = self._pending(target, Notice.UP)
            if event is None or self._claimed_elsewhere(event.id):
                continue
            told = self._told_group(event)
            if told is not None and told[0] == leader:
                found.append(event)
        return sorted(found, key=lambda e: (e.at_ms or 0, e.id))

    def _claimed_elsewhere(self, event_id_: str) -> bool:
        return self.log.get(keys.claim(event_id_)) is not None

    def _told_group(self, up: Event) -> tuple[str, str] | None:
        """The DOWN group whose page told users of the trouble this UP ends."""
        told = self._latest_told(up)
        if told is None:
            return None
        group = self.group_leader(told)
        if group is None:
            return None
        leader = self.event(group[0])
        return group if leader is not None and leader.notice in TROUBLE else None

    def _group_targets(self, leader: str) -> list[str]:
        found = (self.event(e) for e in self.group_members(leader))
        return [e.subject for e in found if e is not None]

    def _with_group(self, event: Event) -> Event:
        """A leader's page names the group the log shows it told of."""
        if event.subject not in self.tags:
            return event
        group = self.group_leader(event.id)
        if group is None or group[0] != event.id:
            return event
        tag = group[1]
        members = [e for e in map(self.event, self.group_members(event.id)) if e is not None]
        # The worst first: down the longest, then by name.
        members.sort(key=lambda e: (e.at_ms or 0, e.subject))
        names: list[JsonValue] = [e.subject for e in members]
        detail: dict[str, JsonValue] = {**event.detail, "group": tag, "group_members": names}
        if event.notice in TROUBLE:
            detail["group_size"] = len(self.tagged(tag))
        else:
            told = self._told_group(event)
            down_group = [] if told is None else self._group_targets(told[0])
            detail["group_size"] = len(down_group)
            detail["group_still_down"] = [
                t for t in down_group if self.record(t).state in TROUBLE.values()
            ]
        return replace(event, detail=detail)
