"""The outbox as the delivery loop sees it: rows and marks from the store,
who posts what from the core, and what a notification says of a target."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from consensus import keys
from consensus.agreement import Notice
from consensus.events import Event
from notify.buttons import Buttons
from notify.courier import Routing
from notify.messages import Subject
from watchers.config import NtfyLogin
from watchers.storage import OutboxRow

if TYPE_CHECKING:
    from watchers.runtime import Node


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
