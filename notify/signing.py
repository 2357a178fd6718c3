"""Webhook signatures by the Standard Webhooks convention
(https://www.standardwebhooks.com): HMAC-SHA256 over
``<webhook-id>.<webhook-timestamp>.<body>``, sent base64-encoded as
``webhook-signature: v1,<signature>``. A secret written ``whsec_<base64>``
is that key; any other secret is its UTF-8 bytes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

PREFIX = "whsec_"
VERSION = "v1"
# A receiver refuses a timestamp further than this from its own clock, so a
# captured delivery cannot be replayed later.
TOLERANCE_S = 300


class BadSecret(ValueError):
    pass


def secret_key(secret: str) -> bytes:
    """The HMAC key a secret stands for."""
    if not secret.startswith(PREFIX):
        return secret.encode()
    try:
        return base64.b64decode(secret[len(PREFIX) :], validate=True)
    except binascii.Error as exc:
        raise BadSecret(f"a {PREFIX} secret must be base64 after the prefix: {exc}") from None


def signature(key: bytes, webhook_id: str, timestamp_s: int, body: bytes) -> str:
    """The webhook-signature header's value."""
    signed = f"{webhook_id}.{timestamp_s}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"{VERSION},{base64.b64encode(digest).decode()}"


def verify(
    key: bytes,
    webhook_id: str,
    timestamp: str,
    signatures: str,
    body: bytes,
    now_s: float,
    tolerance_s: int = TOLERANCE_S,
) -> bool:
    """Whether one of the space-separated signatures is ours for this
    delivery, sent within tolerance_s of now_s (as a receiver checks)."""
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    if abs(now_s - int(timestamp)) > tolerance_s:
        return False
    expected = signature(key, webhook_id, int(timestamp), body)
    return any(hmac.compare_digest(expected, given) for given in signatures.split())
