"""A domain's registration expiry from its registry's RDAP (RFC 9083):
``GET <base>domain/<name>``, the ``expiration`` event of the answer.

The registry is a server like any other: its answer is bounded in size and
read field by field, and a lookup that fails is a reason, never an
exception (nor a page: an unknown expiry is not an outage).
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from datetime import datetime

import httpx

MAX_ANSWER_BYTES = 512 * 1024
MAX_EVENTS = 200
ACCEPT = "application/rdap+json, application/json;q=0.9"


@dataclass(frozen=True, slots=True)
class Registration:
    domain: str
    checked_ms: int
    expires_ms: int | None = None
    error: str | None = None


async def look_up(
    client: httpx.AsyncClient, base_url: str, domain: str, now_ms: int
) -> Registration:
    url = f"{base_url}domain/{domain}"
    try:
        async with client.stream("GET", url, headers={"Accept": ACCEPT}) as response:
            if response.status_code == 404:
                return Registration(domain, now_ms, error="not found at its registry (RDAP 404)")
            if response.status_code != 200:
                return Registration(domain, now_ms, error=f"RDAP answered {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    return Registration(
                        domain, now_ms, error=f"RDAP answer over {MAX_ANSWER_BYTES} bytes"
                    )
    except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
        return Registration(domain, now_ms, error=f"RDAP lookup failed: {str(exc)[:120] or exc!r}")
    return _read(domain, bytes(body), now_ms)


def _read(domain: str, body: bytes, now_ms: int) -> Registration:
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        return Registration(domain, now_ms, error="RDAP answer is not JSON")
    if not isinstance(answer, dict) or answer.get("objectClassName") != "domain":
        return Registration(domain, now_ms, error="RDAP answer is not a domain object")
    events = answer.get("events")
    if not isinstance(events, list):
        return Registration(domain, now_ms, error="RDAP answer has no events")
    for event in events[:MAX_EVENTS]:
        if not isinstance(event, dict) or event.get("eventAction") != "expiration":
            continue
        when = event.get("eventDate")
        expires = _moment_ms(when) if isinstance(when, str) and len(when) <= 40 else None
        if expires is None:
            return Registration(
                domain, now_ms, error=f"RDAP expiration date unreadable: {when!r:.60}"
            )
        return Registration(domain, now_ms, expires_ms=expires)
    return Registration(domain, now_ms, error="RDAP answer has no expiration event")


def _moment_ms(text: str) -> int | None:
    """An RFC 3339 date and time (with its offset) in epoch milliseconds."""
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    if moment.tzinfo is None or not 1970 <= moment.year <= 9999:
        return None
    return int(moment.timestamp() * 1000)
