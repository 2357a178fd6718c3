"""The outbox as the delivery loop sees it: rows and marks from the store,
who posts what from the core, and what a notification says of a target."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from consensus import keys
from consensus.agreement import Notice
from consensus.commands import Publish, Step
from consensus.events import Event
from notify.buttons import Buttons
from notify.courier import Routing
from notify.messages import Subject
from watchers import weekly, wire
from watchers.config import NtfyLogin
from watchers.hook_outbox_table import HookInsert
from watchers.storage import OutboxRow
from watchers.writes import OutboxInsert

if TYPE_CHECKING:
    from watchers.runtime import Node

log = logging.getLogger("ravens")


class OutboxHost:
    def __init__(self, node: Node) -> None:
        self.node = node

    def routing(self, login: NtfyLogin) -> Routing:
        """Where and how the node posts, with the buttons of a page."""
        node = self.node
        routing = node.config.routing(login, self.subject, node.clock.now_ms)
        public_url, ntfy = node.config.node.public_url, node.config.ntfy
        if public_url is not None and ntfy is not None:
            # The phone sends a button's request to the URL it carries: only
            # a node that says where it is reached can offer buttons.
            expire_s = round(ntfy.buttons_expire_after_s)
            buttons = Buttons(str(public_url), node.action_key, expire_s, node.clock.now_ms)
            routing.buttons = buttons.for_event
        return routing

    async def outbox_rows(self, statuses: tuple[str, ...]) -> Sequence[OutboxRow]:
        return await self.node.store.outbox_rows(statuses)

    async def mark(
        self,
        event_id: str,
        status: str,
        error: str | None = None,
        message_id: str | None = None,
        attempt: bool = False,
        sequence_id: str | None = None,
    ) -> None:
        now = self.node.clock.now_ms()
        await self.node.store.mark(event_id, status, now, error, message_id, attempt, sequence_id)

    def took_over(self, event_id: str) -> bool:
        return self.node.core.took_over(event_id)

    def should_post(self, event_id: str) -> bool:
        return self.node.core.should_post(event_id)

    def superseded(self, event_id: str) -> bool:
        return self.node.core.superseded(event_id)

    def sent_elsewhere(self, event_id: str) -> bool:
        return self.node.core.sent_elsewhere(event_id)

    async def delivered(self, event_id: str) -> None:
        node = self.node
        await node.apply(node.core.publish_succeeded(event_id, node.clock.now_ms()))

    async def reachable(self, ok: bool) -> None:
        node = self.node
        await node.apply(node.core.delivery_observed(ok, node.clock.now_ms()))

    def subject(self, event: Event) -> Subject:
        """What a notification calls its subject, where it links, and which
        topic it goes to."""
        node = keys.subject_node(event.subject)
        if node is not None:
            return Subject(node)
        report_topic = keys.subject_report(event.subject)
        if report_topic is not None:
            return Subject("weekly report", None, report_topic)
        config = self.node.config
        target = self.node.targets.get(event.subject)
        label = target.label if target is not None else event.subject
        page = None
        if config.node.public_url is not None:
            page = f"{str(config.node.public_url).rstrip('/')}/t/{event.subject}"
        topic = None
        if target is not None and config.ntfy is not None:
            routes = config.ntfy.tag_topics
            topic = target.topic or next((routes[t] for t in target.tags if t in routes), None)
        if event.notice is Notice.ESCALATED and config.ntfy is not None:
            topic = config.ntfy.escalation_topic or topic
        return Subject(label, page, topic)

    # -- the weekly report ---------------------------------------------------

    def report_topics(self) -> list[str]:
        """The topics that get a weekly report: every topic a target's
        notifications go to, when the report is on."""
        ntfy = self.node.config.ntfy
        if ntfy is None or ntfy.weekly_report is None:
            return []
        return sorted(self._by_topic())

    def _by_topic(self) -> dict[str, list[str]]:
        ntfy = self.node.config.ntfy
        assert ntfy is not None
        targets = {t.id: (t.topic, t.tags) for t in self.node.targets.values()}
        return weekly.topics_of(targets, ntfy.tag_topics, ntfy.topic)

    async def queued(self, step: Step) -> list[tuple[Event, str | None]]:
        """The events a step hands to the outbox (ntfy's, or a webhook's:
        its name), as they go in."""
        return [
            (await self.with_report(c.event), c.hook)
            for c in step.commands
            if isinstance(c, Publish)
        ]

    def handed_over(self, publish: Publish) -> None:
        """Its row is written: its courier looks at once."""
        node = self.node
        if publish.hook is not None:
            node.webhooks.kick(publish.hook)
        elif node.courier is not None:
            node.courier.kick.set()
        event = publish.event
        log.info(
            "event node=%s id=%s subject=%s notice=%s state=%s mode=%s queued for %s",
            node.name,
            event.id,
            event.subject,
            event.notice.value,
            event.state,
            event.mode.value,
            "ntfy" if publish.hook is None else f"webhook {publish.hook}",
        )

    async def rows_for(
        self, step: Step, now_ms: int
    ) -> tuple[list[OutboxInsert], list[HookInsert]]:
        """The outbox rows a step writes: ntfy's, and each webhook's."""
        queued = await self.queued(step)
        outbox = [
            (e.id, e.subject, e.notice.value, wire.json_text(e.to_value()), now_ms)
            for e, hook in queued
            if hook is None
        ]
        hooks = [
            (hook, e.id, e.subject, wire.json_text(e.to_value()), now_ms)
            for e, hook in queued
            if hook is not None
        ]
        return outbox, hooks

    async def with_report(self, event: Event) -> Event:
        """A weekly report's event as it goes into the outbox: what its week
        was for its topic's targets, from the agreed history."""
        topic = keys.subject_report(event.subject)
        start, end = event.detail.get("week_start_ms"), event.detail.get("week_end_ms")
        if topic is None or not isinstance(start, int) or not isinstance(end, int):
            return event
        node = self.node
        ids = self._by_topic().get(topic, []) if node.config.ntfy is not None else []
        history = await node.intervals_since(start)
        watched = [weekly.Watched(i, node.targets[i].tags, history.get(i, [])) for i in ids]
        found = weekly.report(watched, node.core.node_events(), start, end)
        return replace(event, detail={**event.detail, **found})
