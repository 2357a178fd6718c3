"""The buttons on a page: Acknowledge and Silence 1 h, as ntfy ``http``
actions the phone sends to the node that posted (either node accepts them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from consensus.agreement import Notice
from consensus.events import Event
from notify.action_tokens import Action, issue

ACTIONS_PATH = "/api/v1/actions/"
LABELS = {Action.ACKNOWLEDGE: "Acknowledge", Action.SILENCE_HOUR: "Silence 1 h"}


def incident_of(event: Event) -> str | None:
    """The incident a page is about (its DOWN event's id), or None for
    notices that page nobody."""
    if event.notice is Notice.DOWN or (
        event.notice is Notice.FLAPPING_SETTLED and event.state == "DOWN"
    ):
        return event.id
    if event.notice in (Notice.STILL_DOWN, Notice.ESCALATED):
        incident = event.detail.get("incident")
        return incident if isinstance(incident, str) else None
    return None


@dataclass(frozen=True, slots=True)
class Buttons:
    base_url: str  # this node's public URL
    key: bytes
    ttl_s: int
    now_ms: Callable[[], int]

    def for_event(self, event: Event) -> list[dict[str, object]]:
        incident = incident_of(event)
        if incident is None:
            return []
        expires_s = self.now_ms() // 1000 + self.ttl_s
        base = self.base_url.rstrip("/") + ACTIONS_PATH
        return [
            {
                "action": "http",
                "label": label,
                "url": base + issue(self.key, action, incident, expires_s),
                "method": "POST",
                "clear": action is Action.ACKNOWLEDGE,
            }
            for action, label in LABELS.items()
        ]
