"""The sync protocol on the wire: entries as JSON, and signed requests.

Every sync request carries ``X-Ravens-Node``, ``X-Ravens-Time`` (unix ms, in
the receiver's time as the sender last saw it), ``X-Ravens-Nonce`` (random,
once per request) and ``X-Ravens-Signature``: hex HMAC-SHA256 under the
shared secret of time, node, nonce, method and path, and body. The receiver
refuses a wrong or missing signature, a time more than ``WINDOW_MS`` from its
own clock, and a nonce it has seen within the window (a replay), before
anything is merged. Its answer is signed over the request's nonce, so an
answer fits only the request it answers; it carries the answerer's own time,
which is how each node learns the other's clock. A refusal for the time
carries the receiver's time too, so a sender whose idea of it was wrong
(a first contact, a step) corrects it and tries once more at once.

The window is seconds, not the skew the nodes tolerate: skew is handled by
the hlc and by stamping requests in the receiver's time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from consensus.errors import InvalidEntry
from consensus.hlc import Hlc
from consensus.lww import DeltaPage, Entry
from watchers.digits import plain_digits

MAX_BODY_BYTES = 8 * 1024 * 1024
WINDOW_MS = 30_000
NONCE_CHARS = 32
# Nonces remembered at most: far above what two nodes send in a window.
MAX_NONCES = 100_000


class WireError(Exception):
    """A request or answer that breaks the protocol; ``status`` is the HTTP code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def sign(
    secret: str, node: str, time_ms: int, nonce: str, method: str, path: str, body: bytes
) -> str:
    head = f"{time_ms}\n{node}\n{nonce}\n{method.upper()} {path}\n".encode()
    return hmac.new(secret.encode(), head + body, hashlib.sha256).hexdigest()


def new_nonce() -> str:
    return secrets.token_hex(NONCE_CHARS // 2)


def signed_headers(
    secret: str,
    node: str,
    time_ms: int,
    method: str,
    path: str,
    body: bytes,
    nonce: str | None = None,
) -> dict[str, str]:
    """Headers for a request (a fresh nonce) or an answer (the request's)."""
    nonce = nonce or new_nonce()
    return {
        "X-Ravens-Node": node,
        "X-Ravens-Time": str(time_ms),
        "X-Ravens-Nonce": nonce,
        "X-Ravens-Signature": sign(secret, node, time_ms, nonce, method, path, body),
        "Content-Type": "application/json",
    }


class Nonces:
    """The nonces of requests accepted within the window: a second request
    with one of them is a replay."""

    def __init__(self, window_ms: int = WINDOW_MS, most: int = MAX_NONCES) -> None:
        self.window_ms = window_ms
        self.most = most
        self._until: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._until)

    def admit(self, nonce: str, now_ms: int) -> None:
        """Remember nonce, or WireError(401) when it was seen (or 503 when
        too many requests came within the window to remember them all)."""
        while self._until and next(iter(self._until.values())) < now_ms:
            self._until.popitem(last=False)
        if nonce in self._until:
            raise WireError(401, "X-Ravens-Nonce was used before: a replayed request")
        if len(self._until) >= self.most:
            raise WireError(503, "too many sync requests within the window")
        # Kept twice the window: a request stamped at its far edge is still
        # refused when replayed at the other.
        self._until[nonce] = now_ms + 2 * self.window_ms


def verify(
    secret: str,
    known: Sequence[str],
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    now_ms: int,
    nonces: Nonces | None = None,
    answers: str | None = None,
) -> str:
    """The authenticated sender's name, or WireError(401/403).

    A request (nonces given) must be fresh and new; an answer (answers: the
    nonce of our request) must be signed over that nonce, whatever its time."""
    node = headers.get("x-ravens-node", "")
    stamp = headers.get("x-ravens-time", "")
    nonce = headers.get("x-ravens-nonce", "")
    signature = headers.get("x-ravens-signature", "")
    if not node or not stamp or not nonce or not signature:
        raise WireError(
            401, "missing X-Ravens-Node, X-Ravens-Time, X-Ravens-Nonce or X-Ravens-Signature"
        )
    if not plain_digits(stamp, 16):
        raise WireError(401, "X-Ravens-Time: expected unix milliseconds")
    if len(nonce) > 2 * NONCE_CHARS or not nonce.isascii():
        raise WireError(401, f"X-Ravens-Nonce: expected at most {2 * NONCE_CHARS} characters")
    expected = sign(secret, node, int(stamp), nonce, method, path, body)
    if not hmac.compare_digest(expected, signature):
        raise WireError(401, "bad signature")
    if answers is not None and not hmac.compare_digest(nonce, answers):
        raise WireError(401, "an answer to another request")
    if answers is None and abs(now_ms - int(stamp)) > WINDOW_MS:
        raise WireError(
            401,
            f"X-Ravens-Time is {abs(now_ms - int(stamp)) // 1000} s off "
            f"(the window is {WINDOW_MS // 1000} s)",
        )
    if node not in known:
        raise WireError(403, f"node {node!r} is not a configured peer")
    if nonces is not None:
        nonces.admit(nonce, now_ms)
    return node


def entry_to_json(entry: Entry) -> dict[str, Any]:
    return {
        "key": entry.key,
        "value": entry.value,
        "hlc": entry.hlc.encode(),
        "origin": entry.origin,
        "version": entry.version,
        "tombstone": entry.tombstone,
    }


def entry_from_json(raw: object, where: str) -> Entry:
    if not isinstance(raw, dict):
        raise WireError(400, f"{where}: expected an object")
    try:
        entry = Entry(
            key=_str(raw, "key", where),
            value=raw.get("value"),
            hlc=Hlc.decode(_str(raw, "hlc", where)),
            origin=_str(raw, "origin", where),
            version=_int(raw, "version", where),
            tombstone=bool(raw.get("tombstone", False)),
        )
        entry.check()
    except InvalidEntry as exc:
        raise WireError(422, f"{where}: {exc}") from exc
    return entry


def parse_body(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY_BYTES:
        raise WireError(413, f"body of {len(body)} bytes is over {MAX_BODY_BYTES}")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError(400, f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise WireError(400, "body: expected a JSON object")
    return data


def entries_from(data: Mapping[str, Any]) -> list[Entry]:
    raw = data.get("entries")
    if not isinstance(raw, list):
        raise WireError(400, "entries: expected a list")
    return [entry_from_json(item, f"entries[{i}]") for i, item in enumerate(raw)]


def vector_from(data: Mapping[str, Any]) -> dict[str, int]:
    raw = data.get("vector")
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in raw.items()
    ):
        raise WireError(400, "vector: expected an object of node names to versions")
    return dict(raw)


def cursor_from(data: Mapping[str, Any]) -> tuple[str, int] | None:
    raw = data.get("cursor")
    if raw is None:
        return None
    if (
        isinstance(raw, list)
        and len(raw) == 2
        and isinstance(raw[0], str)
        and isinstance(raw[1], int)
    ):
        return (raw[0], raw[1])
    raise WireError(400, "cursor: expected [origin, version] or null")


def page_to_json(page: DeltaPage) -> dict[str, Any]:
    return {
        "entries": [entry_to_json(e) for e in page.entries],
        "covered": dict(page.covered),
        "next_cursor": list(page.next_cursor) if page.next_cursor else None,
    }


def _str(raw: Mapping[str, Any], name: str, where: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str):
        raise WireError(400, f"{where}.{name}: expected text")
    return value


def _int(raw: Mapping[str, Any], name: str, where: str) -> int:
    value = raw.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise WireError(400, f"{where}.{name}: expected a whole number")
    return value


def json_text(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def json_bytes(value: object) -> bytes:
    return json_text(value).encode()
