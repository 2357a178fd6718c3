"""The node's HTTP face: signed sync endpoints for the peer, the read API
with its OpenAPI description, metrics and health, push heartbeats."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

from watchers import wire
from watchers.actions import actions_router
from watchers.admin import admin_router, bearer, token_owner
from watchers.api import router_for
from watchers.customer_site import customer_router
from watchers.headers import SecurityHeaders
from watchers.limits import BodyLimit
from watchers.metrics import metrics_text
from watchers.runtime import Node
from watchers.shed import LIVE_TTL_S, RenderCache, Shed
from watchers.site import site_router
from watchers.stream import stream_router

Handler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


def app_for(node: Node) -> FastAPI:
    app = FastAPI(
        title="ravens",
        version=version(),
        description=f"Huginn and Muninn, uptime watchers: node {node.name}.",
        # Served below, behind the read token like the rest of the read API.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.node = node
    # A scrape older than two seconds is made anew while the scraper waits
    # (Prometheus asks every 15 s or more); a crowd is served the last one.
    scrapes: RenderCache[bytes] = RenderCache(ttl_s=LIVE_TTL_S, max_keys=1, stale_s=LIVE_TTL_S)
    app.add_middleware(BodyLimit, limit_for=body_limit)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(Shed, state=node.shedding)  # outermost: turned away before any work
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]

    _add_sync(app, node)

    async def reader(request: Request) -> None:
        """With a read token configured, reading needs it (or an admin token)."""
        if node.api.read is None:
            return
        token = bearer(request)
        allowed = {node.api.read: "reader", **node.api.admins}
        if token_owner(token, allowed) is None:
            raise HTTPException(
                401,
                "send Authorization: Bearer <read token>",
                {"WWW-Authenticate": 'Bearer realm="ravens"'},
            )

    readers = [Depends(reader)]

    _add_docs(app, readers, node.name)

    app.include_router(router_for(node), dependencies=readers)
    app.include_router(site_router(node), dependencies=readers)
    app.include_router(stream_router(node), dependencies=readers)
    # Each customer page checks its own token (or the node's read token).
    app.include_router(customer_router(node))
    app.include_router(admin_router(node))
    # A button's token is its own proof: outside the read token's reach.
    app.include_router(actions_router(node))

    @app.get(
        "/api/v1/nodes",
        summary="Each node: voter, canaries, ntfy, sync lag, skew, outbox",
        dependencies=readers,
    )
    async def nodes() -> dict[str, Any]:
        core = node.core
        now = node.clock.now_ms()
        voters = core.voters(now)
        peers = []
        for peer in core.peers:
            health = core.health_of(peer)
            lag = node.sync.lag_ms(peer)
            peers.append(
                {
                    "name": peer,
                    "voter": peer in voters,
                    "canaries_ok": health.canaries_ok,
                    "ntfy_ok": health.ntfy_ok,
                    "last_heard_ms": core.heard.get(peer),
                    "sync_lag_ms": lag,
                    "clock_offset_ms": core.peer_offset_ms.get(peer),
                    "state": core.peer_record(peer).state.value,
                    # Set when the peer answers but refuses our signature.
                    "refuses_us": core.refused_by.get(peer),
                    # Its outbox as its last heartbeat said: posts waiting
                    # for ntfy, and posts ntfy refused.
                    "outbox_waiting": health.outbox_waiting,
                    "outbox_refused": health.outbox_refused,
                }
            )
        return {
            "node": node.name,
            "version": version(),
            "voter": node.name in voters,
            "canaries_ok": core.canaries_ok,
            # Whether ntfy answered this node's last attempt (null before
            # one); while it does not, its claims go to the standby.
            "ntfy_ok": core.ntfy_ok,
            "ready": core.ready(now),
            "clock": core.clock.last.encode(),
            # The last wall-clock step seen, and the last time the hlc had to
            # start again from the wall clock (how far ahead it had been).
            "clock_step": None
            if node.last_clock_step is None
            else {"at_ms": node.last_clock_step[0], "step_s": node.last_clock_step[1]},
            "clock_restarted": None
            if core.clock_restarted is None
            else {"at_ms": core.clock_restarted[0], "was_ahead_ms": core.clock_restarted[1]},
            "log_entries": len(core.log),
            # How late the last checks started against their due time.
            "check_lateness": node.lateness.summary(),
            # Whether the database takes writes; if not, what waits in memory.
            "storage": node.writes.status(),
            "log": node.core.log_usage(),
            "outbox_depth": await node.store.outbox_depth(),
            # What ntfy refused (a configuration error), with ntfy's words.
            "outbox_refused": [
                {"event": event_id, "error": error}
                for event_id, error in await node.store.outbox_refused()
            ],
            # Each webhook's deliveries still to make, and what its receiver
            # refused, with its words.
            "webhooks": await node.webhooks.outbox(),
            "peers": peers,
        }

    @app.get("/api/v1/metrics", summary="Prometheus text exposition", dependencies=readers)
    @app.get("/metrics", include_in_schema=False, dependencies=readers)
    async def metrics() -> Response:
        async def render() -> bytes:
            store = node.store
            return await metrics_text(
                node,
                await store.outbox_depth(),
                await store.outbox_by_reason(),
                await node.webhooks.outbox(),
            )

        return Response(await scrapes.get("metrics", render), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", summary="200 while the process serves")
    async def healthz() -> dict[str, Any]:
        return {"node": node.name, "ok": True}

    @app.get("/api/v1/readyz", summary="200 once the node may decide: canaries known, peers pulled")
    async def readyz() -> Response:
        core = node.core
        ready = core.canaries_ok is not None and core.ready(node.clock.now_ms())
        body = {
            "node": node.name,
            "ready": ready,
            "canaries_ok": core.canaries_ok,
            "storage_ok": node.writes.ok,
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    _add_push(app, node)
    return app


def _add_sync(app: FastAPI, node: Node) -> None:
    """The signed routes peers call: pull, push and history."""

    def signed(path: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            body = await request.body()
            now, sync = node.clock.now_ms(), node.sync
            try:
                peers = list(sync.urls)
                peer = wire.verify(
                    node.secret, peers, request.headers, "POST", path, body, now, nonces=sync.nonces
                )
                answer = await handler(peer, wire.parse_body(body))
            except wire.WireError as exc:
                refused = error(exc.status, str(exc))
                # Our time, so a sender that stamped it wrong can correct.
                refused.headers["X-Ravens-Time"] = str(now)
                return refused
            content = wire.json_bytes(answer)
            nonce = request.headers["x-ravens-nonce"]
            stamp = node.clock.now_ms()
            headers = wire.signed_headers(
                node.secret, node.name, stamp, "ANSWER", path, content, nonce
            )
            return Response(content, headers=headers)

        return endpoint

    sync = node.sync
    for path, handler in (
        ("/sync/pull", sync.answer_pull),
        ("/sync/push", sync.answer_push),
        ("/sync/history", sync.answer_history),
    ):
        app.add_api_route(path, signed(path, handler), methods=["POST"], include_in_schema=False)


def _add_push(app: FastAPI, node: Node) -> None:
    async def push(token: str, request: Request) -> dict[str, Any]:
        address = request.client.host if request.client else "-"
        _within(node.push_limits.for_address(address))
        target = node.push_target(token)
        if target is None:
            raise HTTPException(404, "no push target has this URL")
        _within(node.push_limits.for_target(target))
        await node.heartbeat(target)
        return {"target": target, "received": True}

    # One route per method: each needs an operation id of its own in the
    # OpenAPI description (one route for both gave them the same).
    for method in ("GET", "POST"):
        app.add_api_route(
            "/api/v1/push/{token}",
            push,
            methods=[method],
            summary="A push target's heartbeat",
            operation_id=f"push_heartbeat_{method.lower()}",
        )


def _within(refused: tuple[int, str] | None) -> None:
    """A 429 with Retry-After when a rate limit was exceeded."""
    if refused is not None:
        wait_s, why = refused
        raise HTTPException(
            429, f"{why}; retry after {wait_s} s", headers={"Retry-After": str(wait_s)}
        )


# Sync pages may be large; everything else the node accepts is small.
API_MAX_BODY_BYTES = 256 * 1024


# A whole target list in one request (`ravens targets apply`).
APPLY_MAX_BODY_BYTES = 4 * 1024 * 1024


def body_limit(path: str) -> int:
    if path == "/api/v1/admin/apply":
        return APPLY_MAX_BODY_BYTES
    return wire.MAX_BODY_BYTES if path.startswith("/sync/") else API_MAX_BODY_BYTES


def _add_docs(app: FastAPI, readers: list[Any], name: str) -> None:
    """The OpenAPI schema and its page, behind the read token like the rest."""

    @app.get("/api/v1/openapi.json", include_in_schema=False, dependencies=readers)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/api/v1/docs", include_in_schema=False, dependencies=readers)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/api/v1/openapi.json", title=f"ravens {name}: API")


BODY_UNREADABLE = "There was an error parsing the body"


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 404 and exc.detail == "Not Found":
        return error(404, "no such path; the API is described at /api/v1/openapi.json")
    if exc.status_code == 400 and exc.detail == BODY_UNREADABLE:
        # FastAPI's words when parsing raised (a body nested too deep for
        # the parser, say), not a JSON syntax error it could point at.
        return error(400, "body: not JSON that can be read (nested too deep, or malformed)")
    answer = error(exc.status_code, str(exc.detail))
    answer.headers.update(exc.headers or {})
    return answer


async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's validation errors, as one message naming each bad parameter."""
    problems = []
    for item in exc.errors():
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "query")
        value = item.get("input")
        got = f", got {value!r}" if value is not None and not isinstance(value, dict) else ""
        problems.append(f"{where}: {item.get('msg', 'invalid')}{got}")
    return error(400, "; ".join(problems))


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("ravens")
    except PackageNotFoundError:
        return "unknown"
