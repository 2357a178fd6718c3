"""The buttons of a page, answered: ``POST /api/v1/actions/{token}``, the
request a phone sends when Acknowledge or Silence 1 h is pressed.

The token is the whole proof (notify/action_tokens.py): no Bearer token, as
ntfy's buttons carry none. What a press does is an admin change like any
other (a log entry with its audit record, replicated), written under a key
the token decides, so the same button pressed twice, on either node, finds
its own mark and answers 409.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException

from consensus import keys
from consensus.lww import JsonValue
from notify.action_tokens import Action, Granted, TokenRefused, verify
from notify.buttons import ACTIONS_PATH
from watchers.runtime import Node

SILENCE = timedelta(hours=1)
WHO = "ntfy button"


def actions_router(node: Node) -> APIRouter:
    api = APIRouter(tags=["actions"])

    @api.post(ACTIONS_PATH + "{token}", summary="A page's button, pressed on a phone")
    async def press(token: str) -> dict[str, Any]:
        now_ms = node.clock.now_ms()
        try:
            granted = verify(node.action_key, token, now_ms // 1000)
        except TokenRefused as exc:
            raise HTTPException(exc.status, str(exc)) from None
        if granted.action is Action.ACKNOWLEDGE:
            return await _acknowledge(node, granted, now_ms)
        return await _silence(node, granted, now_ms)

    return api


async def _acknowledge(node: Node, granted: Granted, now_ms: int) -> dict[str, Any]:
    incident = granted.incident
    if node.core.acknowledged(incident):
        said = f"incident {incident} is already acknowledged {_by(node, incident)}"
        raise HTTPException(409, said)
    value: dict[str, JsonValue] = {"by": WHO, "note": "", "at_ms": now_ms, "node": node.name}
    audit: dict[str, JsonValue] = {"who": WHO, "action": "acknowledge", "subject": incident}
    await node.apply(node.core.admin_write(keys.ack(incident), value, now_ms, audit))
    return {"incident": incident, "acknowledged": value}


async def _silence(node: Node, granted: Granted, now_ms: int) -> dict[str, Any]:
    incident = granted.incident
    event = node.core.event(incident)
    if event is None:
        raise HTTPException(404, f"incident {incident} is not known to this node yet; try again")
    key = f"{keys.SILENCE}button-{granted.id}"
    if node.core.log.raw(key) is not None:  # even if an admin ended it since
        raise HTTPException(409, f"this button already silenced {event.subject}")
    start = datetime.fromtimestamp(now_ms / 1000, UTC)
    window: dict[str, JsonValue] = {
        "targets": [event.subject],
        "start": start.isoformat(),
        "end": (start + SILENCE).isoformat(),
        "reason": f"silenced for 1 h from a page (incident {incident})",
    }
    audit: dict[str, JsonValue] = {"who": WHO, "action": "add silences", "subject": event.subject}
    await node.apply(node.core.admin_write(key, {"window": window}, now_ms, audit))
    return {"incident": incident, "silenced": window}


def _by(node: Node, incident: str) -> str:
    found = node.core.acknowledgement(incident)
    if not isinstance(found, dict):
        return "by someone"
    at = found.get("at_ms")
    when = (
        datetime.fromtimestamp(at / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if isinstance(at, int)
        else "earlier"
    )
    return f"by {found.get('by', 'someone')} at {when}"
