"""The sync protocol on the wire: entries as JSON, and signed requests.

Every sync request and answer carries ``X-Ravens-Node``, ``X-Ravens-Time``
(unix ms) and ``X-Ravens-Signature``: hex HMAC-SHA256 under the shared secret
of ``time, node, method and path, body``. A wrong or missing signature, a
time outside the window, or a malformed body is refused before anything is
merged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from consensus.errors import InvalidEntry
from consensus.hlc import Hlc
from consensus.lww import DeltaPage, Entry
from watchers.digits import plain_digits

MAX_BODY_BYTES = 8 * 1024 * 1024
# Wide enough for nodes whose clocks are minutes apart; replays inside it
# change nothing, since merging is idempotent.
WINDOW_MS = 15 * 60_000


class WireError(Exception):
    """A request or answer that breaks the protocol; ``status`` is the HTTP code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def sign(secret: str, node: str, time_ms: int, method: str, path: str, body: bytes) -> str:
    head = f"{time_ms}\n{node}\n{method.upper()} {path}\n".encode()
    return hmac.new(secret.encode(), head + body, hashlib.sha256).hexdigest()


def signed_headers(secret: str, node: str, time_ms: int, method: str, path: str,
                   body: bytes) -> dict[str, str]:  # fmt: skip
    return {
        "X-Ravens-Node": node,
        "X-Ravens-Time": str(time_ms),
        "X-Ravens-Signature": sign(secret, node, time_ms, method, path, body),
        "Content-Type": "application/json",
    }


def verify(
    secret: str,
    known: Sequence[str],
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    now_ms: int,
) -> str:
    """The authenticated sender's name, or WireError(401/403)."""
    node = headers.get("x-ravens-node", "")
    stamp = headers.get("x-ravens-time", "")
    signature = headers.get("x-ravens-signature", "")
    if not node or not stamp or not signature:
        raise WireError(401, "missing X-Ravens-Node, X-Ravens-Time or X-Ravens-Signature")
    if not plain_digits(stamp, 16):
        raise WireError(401, "X-Ravens-Time: expected unix milliseconds")
    expected = sign(secret, node, int(stamp), method, path, body)
    if not hmac.compare_digest(expected, signature):
        raise WireError(401, "bad signature")
    if abs(now_ms - int(stamp)) > WINDOW_MS:
        raise WireError(401, f"X-Ravens-Time is {abs(now_ms - int(stamp)) // 1000} s off")
    if node not in known:
        raise WireError(403, f"node {node!r} is not a configured peer")
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
