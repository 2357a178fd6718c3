"""A small ntfy-compatible server: the tests' ntfy and the demo's inbox.

It follows ntfy's publish protocol (2.13, with 2.16's sequence ids) closely
enough that a request it accepts is one the real ntfy.sh or a self-hosted
ntfy accepts, and it refuses what they refuse: both publish forms, topic
rules, header aliases and JSON field types, Bearer/Basic auth with 401/403,
the one-line error JSON, the 4 KB message limit, 429 after a burst, the
success JSON in ntfy's field order, and ``GET /<topic>/json?poll=1``. A test
can tell it to fail on cue (5xx, 429 with Retry-After, slow answers, an
answer lost after the message was stored), per request if it likes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import secrets
import string
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from notify import ntfy_actions
from notify.topics import RESERVED, TOPIC

MAX_JSON_BYTES = 8192
MAX_MESSAGE_BYTES = 4095
BURST = 60
REFILL_S = 5.0
EXPIRES_S = 12 * 3600
PRIORITIES = {
    "1": 1,
    "min": 1,
    "2": 2,
    "low": 2,
    "3": 3,
    "default": 3,
    "4": 4,
    "high": 4,
    "5": 5,
    "max": 5,
    "urgent": 5,
}
# Header aliases, first listed wins (ntfy's readParam order).
HEADERS = {
    "title": ("x-title", "title", "t"),
    "priority": ("x-priority", "priority", "prio", "p"),
    "tags": ("x-tags", "tags", "tag", "ta"),
    "click": ("x-click", "click"),
    "markdown": ("x-markdown", "markdown", "md"),
    "icon": ("x-icon", "icon"),
    "sequence_id": ("x-sequence-id", "sequence-id", "sid"),
    "actions": ("x-actions", "actions", "action"),
}
LINK = "https://ntfy.sh/docs/publish/"
DURATION = re.compile(r"^(\d+)([smhd])$")


class Refused(Exception):
    def __init__(self, http: int, code: int, error: str, link: str | None = LINK) -> None:
        super().__init__(error)
        self.http, self.code, self.error, self.link = http, code, error, link


@dataclass
class Inbox:
    """The server's state: messages per topic, credentials, faults on cue."""

    token: str | None = None  # when set, only this Bearer token may publish
    basic: tuple[str, str] | None = None
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_status: int | None = None  # 5xx on cue
    retry_after_s: int | None = None  # 429 on cue
    delay_s: float = 0.0
    # Store the message, then answer this late: the client may give up and
    # never learn that it arrived.
    answer_delay_s: float = 0.0
    # Called before each publish request: a test sets faults per request.
    before_request: Callable[[Inbox], None] | None = None
    # Publish requests being handled now, answered or abandoned by the client.
    in_flight: int = 0
    clock: Callable[[], float] = time.time
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    on_message: Callable[[dict[str, Any]], None] | None = None
    # Who published each stored message (its address): tests tell the
    # nodes' copies apart by it; never part of what ntfy answers.
    on_published: Callable[[dict[str, Any], str], None] | None = None

    def all(self) -> list[dict[str, Any]]:
        return sorted((m for ms in self.messages.values() for m in ms), key=lambda m: m["time"])


def app_for(inbox: Inbox) -> Starlette:
    async def publish_json(request: Request) -> Response:
        return await _guarded(inbox, request, read_json_publish)

    async def publish_topic(request: Request) -> Response:
        topic = request.path_params["topic"]
        sequence = request.path_params.get("sequence_id")
        return await _guarded(
            inbox, request, lambda body: _from_headers(topic, sequence, request, body)
        )

    async def poll(request: Request) -> Response:
        topic = request.path_params["topic"]
        try:
            _authenticate(inbox, request)
            cached = _since(inbox, inbox.messages.get(topic, []), request.query_params)
        except Refused as exc:
            return _error(exc, None)
        lines = [json.dumps(m, separators=(",", ":")) for m in cached]
        return Response("".join(line + "\n" for line in lines), media_type="application/x-ndjson")

    return Starlette(
        routes=[
            Route("/", publish_json, methods=["POST", "PUT"]),
            Route("/{topic}/json", poll, methods=["GET"]),
            Route("/{topic}", publish_topic, methods=["POST", "PUT"]),
            Route("/{topic}/{sequence_id}", publish_topic, methods=["POST", "PUT"]),
        ]
    )


async def _guarded(
    inbox: Inbox, request: Request, parse: Callable[[bytes], dict[str, Any]]
) -> Response:
    body = await request.body()
    if inbox.before_request is not None:
        inbox.before_request(inbox)
    inbox.requests.append(
        {"headers": dict(request.headers), "body": body, "path": request.url.path}
    )
    inbox.in_flight += 1
    try:
        return await _handle(inbox, request, body, parse)
    finally:
        inbox.in_flight -= 1


async def _handle(
    inbox: Inbox, request: Request, body: bytes, parse: Callable[[bytes], dict[str, Any]]
) -> Response:
    if inbox.delay_s:
        await asyncio.sleep(inbox.delay_s)
    try:
        if inbox.fail_status is not None:
            raise Refused(inbox.fail_status, inbox.fail_status * 100, "internal server error")
        _authenticate(inbox, request)
        client = request.client.host if request.client else "?"
        _rate_limit(inbox, client)
        message = _store(inbox, parse(body))
        if inbox.on_published is not None:
            inbox.on_published(message, client)
    except Refused as exc:
        return _error(exc, inbox.retry_after_s if exc.http == 429 else None)
    if inbox.answer_delay_s:
        await asyncio.sleep(inbox.answer_delay_s)
    return Response(
        json.dumps(message, separators=(",", ":")) + "\n", media_type="application/json"
    )


def _authenticate(inbox: Inbox, request: Request) -> None:
    header = request.headers.get("authorization")
    if header is None and "auth" in request.query_params:
        raw = request.query_params["auth"]
        header = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode(errors="replace")
    if inbox.token is None and inbox.basic is None:
        if header is not None:
            raise Refused(
                401, 40101, "unauthorized", "https://ntfy.sh/docs/publish/#authentication"
            )
        return
    if header is None:
        raise Refused(403, 40301, "forbidden", "https://ntfy.sh/docs/publish/#authentication")
    ok = False
    if header.startswith("Bearer ") and inbox.token is not None:
        ok = secrets.compare_digest(header[7:], inbox.token)
    elif header.startswith("Basic ") and inbox.basic is not None:
        want = base64.b64encode(":".join(inbox.basic).encode()).decode()
        ok = secrets.compare_digest(header[6:], want)
    if not ok:
        raise Refused(401, 40101, "unauthorized", "https://ntfy.sh/docs/publish/#authentication")


def _since(
    inbox: Inbox, cached: list[dict[str, Any]], params: Mapping[str, str]
) -> list[dict[str, Any]]:
    """ntfy's since=: all, latest, none, a message id, a unix time or a duration."""
    since = params.get("since", "all")
    if since == "all":
        return cached
    if since == "none":
        return []
    if since == "latest":
        return cached[-1:]
    ids = [m["id"] for m in cached]
    if since in ids:
        return cached[ids.index(since) + 1 :]
    if since.isdigit():
        return [m for m in cached if m["time"] >= int(since)]
    duration = DURATION.match(since)
    if duration:
        seconds = int(duration[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86_400}[duration[2]]
        return [m for m in cached if m["time"] >= inbox.clock() - seconds]
    raise Refused(400, 40008, "invalid request: since parameter invalid")


def _rate_limit(inbox: Inbox, visitor: str) -> None:
    if inbox.retry_after_s is not None:
        raise Refused(
            429,
            42901,
            "limit reached: too many requests",
            "https://ntfy.sh/docs/publish/#limitations",
        )
    now = inbox.clock()
    tokens, last = inbox._buckets.get(visitor, (float(BURST), now))
    tokens = min(float(BURST), tokens + (now - last) / REFILL_S)
    if tokens < 1:
        inbox._buckets[visitor] = (tokens, now)
        raise Refused(
            429,
            42901,
            "limit reached: too many requests",
            "https://ntfy.sh/docs/publish/#limitations",
        )
    inbox._buckets[visitor] = (tokens - 1, now)


def _topic(name: object) -> str:
    if not isinstance(name, str) or not TOPIC.match(name) or name in RESERVED:
        raise Refused(400, 40010, "invalid request: topic invalid")
    return name


def _priority(value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.lower() in PRIORITIES:
        return PRIORITIES[value.lower()]
    raise Refused(400, 40007, "invalid priority")


def read_json_publish(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_JSON_BYTES:
        raise Refused(413, 41303, "request entity too large", None)
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise Refused(400, 40017, "invalid request: request body must be message JSON") from exc
    if not isinstance(data, dict):
        raise Refused(400, 40017, "invalid request: request body must be message JSON")
    priority = data.get("priority")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        raise Refused(400, 40024, "invalid request: JSON body could not be parsed")
    if priority is not None and not 1 <= priority <= 5:
        raise Refused(400, 40007, "invalid priority")
    for name in ("cache", "firebase"):
        if name in data and not isinstance(data[name], str):
            raise Refused(400, 40024, "invalid request: JSON body could not be parsed")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise Refused(400, 40024, "invalid request: JSON body could not be parsed")
    actions = _actions(lambda: ntfy_actions.from_json(data["actions"]) if "actions" in data else [])
    markdown = data.get("markdown", False)
    if not isinstance(markdown, bool):
        raise Refused(400, 40024, "invalid request: JSON body could not be parsed")
    message = data.get("message", "")
    if not isinstance(message, str):
        raise Refused(400, 40024, "invalid request: JSON body could not be parsed")
    return {
        "topic": _topic(data.get("topic")),
        "title": str(data.get("title", "")),
        "message": message,
        "priority": priority,
        # Joined on commas and split again, as ntfy does.
        "tags": [t.strip() for t in ",".join(tags).split(",") if t.strip()],
        "click": str(data.get("click", "")),
        "icon": str(data.get("icon", "")),
        "markdown": markdown,
        "sequence_id": str(data.get("sequence_id", "")),
        "actions": actions,
    }


def _from_headers(
    topic: str, sequence: str | None, request: Request, body: bytes
) -> dict[str, Any]:
    def param(name: str) -> str:
        for alias in HEADERS[name]:
            if alias in request.headers:
                return request.headers[alias]
        return request.query_params.get(name, "")

    try:
        message = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(400, 40014, "invalid request: message too large or not UTF-8") from exc
    markdown = param("markdown").lower() in ("1", "yes", "true") or (
        request.headers.get("content-type", "").startswith("text/markdown")
    )
    return {
        "topic": _topic(topic),
        "title": param("title"),
        "message": message,
        "priority": _priority(param("priority")),
        "tags": [t.strip() for t in param("tags").split(",") if t.strip()],
        "click": param("click"),
        "icon": param("icon"),
        "markdown": markdown,
        "sequence_id": sequence or param("sequence_id"),
        "actions": _actions(lambda: ntfy_actions.from_header(param("actions")))
        if param("actions")
        else [],
    }


def _actions(read: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    try:
        return read()
    except ntfy_actions.ActionsUnparsable as exc:
        raise Refused(400, 40024, "invalid request: JSON body could not be parsed") from exc
    except ntfy_actions.ActionsInvalid as exc:
        # The error line as ntfy-protocol.md gives it; the reason stays in the log.
        raise Refused(400, 40018, "invalid request: actions invalid") from exc


def _store(inbox: Inbox, fields: dict[str, Any]) -> dict[str, Any]:
    if len(fields["message"].encode()) > MAX_MESSAGE_BYTES:
        raise_too_large()
    now = int(inbox.clock())
    message: dict[str, Any] = {
        "id": "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(12)),
        "time": now,
        "expires": now + EXPIRES_S,
        "event": "message",
        "topic": fields["topic"],
    }
    for name in ("title", "message", "priority", "tags", "click", "icon", "actions"):
        if fields.get(name):
            message[name] = fields[name]
    if fields["markdown"]:
        message["content_type"] = "text/markdown"
    if fields["sequence_id"]:
        message["sequence_id"] = fields["sequence_id"]
    inbox.messages.setdefault(fields["topic"], []).append(message)
    if inbox.on_message is not None:
        inbox.on_message(message)
    return message


def raise_too_large() -> None:
    raise Refused(400, 40014, "invalid request: message too large and attachments are off")


def _error(exc: Refused, retry_after_s: int | None) -> Response:
    body: dict[str, Any] = {"code": exc.code, "http": exc.http, "error": exc.error}
    if exc.link:
        body["link"] = exc.link
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    return Response(
        json.dumps(body, separators=(",", ":")) + "\n",
        status_code=exc.http,
        media_type="application/json",
        headers=headers,
    )


@asynccontextmanager
async def serving(inbox: Inbox, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve the inbox on host (port from the kernel by default); yields its base URL."""
    config = uvicorn.Config(
        app_for(inbox), host=host, port=port, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task


@contextmanager
def serve_in_thread(inbox: Inbox) -> Iterator[str]:
    """Serve the inbox from a thread with its own event loop; yields its base URL."""
    ready = threading.Event()
    url: list[str] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        async with serving(inbox) as base:
            url.append(base)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the inbox did not start")
    try:
        yield url[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
