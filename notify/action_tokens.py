"""Tokens for the buttons of a notification: pure, no I/O, no clock.

An ntfy ``http`` action is a URL the phone requests when the button is
pressed, and anyone who can read the topic can read that URL. So the URL
carries its own proof: the action, the incident it acts on and when it
expires, signed with a key both nodes derive from their shared sync secret
(either node accepts what the other issued). The key is derived under its
own label, so a token proves nothing to the sync endpoints and a sync
signature proves nothing here. Single use comes from what the action writes
(one ``ack/<incident>`` key, one silence id per token), not from the token.

A token reads ``<action>.<incident>.<expires>.<mac>``: letters, digits and
dots only, safe in a URL path as it is.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
from dataclasses import dataclass

KEY_LABEL = b"ravens ntfy action tokens v1"
MAC_BYTES = 16  # 128 bits: forging one is guessing them
# An incident is an event id: lower-case hex (consensus.events.ID_HEX_CHARS).
TOKEN = re.compile(r"^(ack|silence1h)\.([0-9a-f]{8,64})\.(\d{1,12})\.([A-Za-z0-9_-]{22})$")
MAX_TOKEN_CHARS = 128


class Action(enum.Enum):
    ACKNOWLEDGE = "ack"
    SILENCE_HOUR = "silence1h"


@dataclass(frozen=True, slots=True)
class Granted:
    """What a valid token allows: one action on one incident."""

    action: Action
    incident: str
    expires_s: int

    @property
    def id(self) -> str:
        """Names this grant alone (the silence a token makes is written
        under it, so a second press finds it)."""
        text = f"{self.action.value}.{self.incident}.{self.expires_s}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class TokenRefused(Exception):
    """A token that does not prove anything: its reason says why, for the
    answer's body; never what the right MAC would have been."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


def derive_key(sync_secret: str) -> bytes:
    return hmac.new(sync_secret.encode(), KEY_LABEL, hashlib.sha256).digest()


def issue(key: bytes, action: Action, incident: str, expires_s: int) -> str:
    payload = f"{action.value}.{incident}.{expires_s}"
    return f"{payload}.{_mac(key, payload)}"


def verify(key: bytes, token: str, now_s: int) -> Granted:
    """The grant a token carries, or TokenRefused: 400 for what is not a
    token at all, 403 for a forged or expired one."""
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenRefused(f"token: longer than {MAX_TOKEN_CHARS} characters", 400)
    found = TOKEN.match(token)
    if found is None:
        raise TokenRefused("token: expected <action>.<incident>.<expires>.<mac>", 400)
    action, incident, expires, mac = found.groups()
    payload = f"{action}.{incident}.{expires}"
    if not hmac.compare_digest(_mac(key, payload).encode(), mac.encode()):
        raise TokenRefused("token: not issued by this pair (signature does not match)", 403)
    if int(expires) <= now_s:
        raise TokenRefused("token: expired; act through the admin API instead", 403)
    return Granted(Action(action), incident, int(expires))


def _mac(key: bytes, payload: str) -> str:
    digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()[:MAC_BYTES]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
