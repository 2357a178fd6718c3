"""Posting one message to ntfy (JSON publishing) and reading its answer.

Every answer becomes one of three outcomes, never an exception: delivered
(with ntfy's message id), retry later (network errors, 5xx, 429 with its
Retry-After), or refused (any other 4xx: a configuration error, with
ntfy's own error text, kept until the configuration changes). A retry is
"in doubt" when the request may have arrived and only the answer was lost
(a read timeout, a dropped connection): the message is then looked up on
ntfy by its sequence id before it is posted again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

from notify.messages import MAX_BODY_BYTES

TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Delivered:
    message_id: str


@dataclass(frozen=True, slots=True)
class RetryLater:
    reason: str
    # From a 429's Retry-After: the whole server is to be left alone this long.
    after_s: float | None = None
    in_doubt: bool = False
    # A 429: ntfy answered and asked us to slow down. Not a sign that this
    # node cannot reach it (the peer would be paced the same way).
    paced: bool = False


@dataclass(frozen=True, slots=True)
class Refused:
    status: int
    error: str


Outcome = Delivered | RetryLater | Refused


@dataclass(frozen=True, slots=True)
class Server:
    """Where and how to publish: any base URL (ntfy.sh or self-hosted under a
    path), with a Bearer token or Basic credentials."""

    base_url: str
    token: str | None = None
    basic: tuple[str, str] | None = None
    timeout_s: float = TIMEOUT_S

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        elif self.basic:
            auth = httpx.BasicAuth(*self.basic)
            request = httpx.Request("POST", self.base_url)
            headers["Authorization"] = next(auth.auth_flow(request)).headers["Authorization"]
        return headers


async def publish(client: httpx.AsyncClient, server: Server, message: dict[str, object]) -> Outcome:
    body = json.dumps(message, separators=(",", ":")).encode()
    if len(body) > 8192 or len(str(message.get("message", "")).encode()) > MAX_BODY_BYTES + 8:
        return Refused(413, f"message of {len(body)} bytes is too large to publish")
    url = server.base_url.rstrip("/") + "/"
    try:
        response = await client.post(
            url, content=body, headers=server.headers(), timeout=server.timeout_s
        )
    except (httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ConnectError) as exc:
        return RetryLater(f"ntfy unreachable: {str(exc)[:160] or type(exc).__name__}")
    except httpx.TimeoutException:
        return RetryLater(f"no answer from ntfy after {server.timeout_s:g} s", in_doubt=True)
    except httpx.HTTPError as exc:
        # Sent, perhaps, and the answer lost on the way back.
        reason = f"ntfy connection failed: {str(exc)[:160] or type(exc).__name__}"
        return RetryLater(reason, in_doubt=True)
    if response.status_code == 200:
        try:
            return Delivered(str(response.json()["id"]))
        except (ValueError, KeyError, TypeError):
            return RetryLater("ntfy answered 200 without a message id")
    error = _error_text(response)
    if response.status_code == 429:
        return RetryLater(f"rate limited: {error}", _retry_after(response), paced=True)
    if response.status_code >= 500:
        return RetryLater(f"ntfy error {response.status_code}: {error}")
    return Refused(response.status_code, error)


async def answers(client: httpx.AsyncClient, server: Server, topic: str) -> bool:
    """Whether ntfy answers at all (below 500): a cheap poll that reads
    nothing, to learn that a server we could not reach is back."""
    try:
        response = await poll(client, server, topic, since="none")
    except httpx.HTTPError:
        return False
    return response.status_code < 500


async def poll(client: httpx.AsyncClient, server: Server, topic: str, since: str) -> httpx.Response:
    """ntfy's cached messages of a topic since a time ("all", "none", or
    epoch seconds), without waiting for new ones."""
    url = f"{server.base_url.rstrip('/')}/{topic}/json"
    headers = {k: v for k, v in server.headers().items() if k != "Content-Type"}
    return await client.get(
        url, params={"poll": "1", "since": since}, headers=headers, timeout=server.timeout_s
    )


def _error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
        return f"{data['error']} ({data['code']})"
    except (ValueError, KeyError, TypeError):
        return response.text.strip()[:200] or response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
