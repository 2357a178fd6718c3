"""The node's HTTP face: the signed sync endpoints and a first read API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consensus.verdict import Verdict
from watchers import wire
from watchers.runtime import Node, now_ms

Handler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


def app_for(node: Node) -> Starlette:
    def signed(path: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            declared = request.headers.get("content-length", "0")
            if declared.isdigit() and int(declared) > wire.MAX_BODY_BYTES:
                return _error(413, f"body of {declared} bytes is over {wire.MAX_BODY_BYTES}")
            body = await request.body()
            try:
                peer = wire.verify(node.secret, list(node.peers), request.headers, "POST", path,
                                   body, now_ms())  # fmt: skip
                answer = await handler(peer, wire.parse_body(body))
            except wire.WireError as exc:
                return _error(exc.status, str(exc))
            content = wire.json_bytes(answer)
            headers = wire.signed_headers(node.secret, node.name, now_ms(), "ANSWER", path,
                                          content)  # fmt: skip
            return Response(content, headers=headers)

        return endpoint

    async def targets(_request: Request) -> Response:
        return JSONResponse(
            {"node": node.name, "targets": [_target(node, t) for t in node.targets]}
        )

    async def push(request: Request) -> Response:
        target = await node.heartbeat(request.path_params["token"])
        if target is None:
            return _error(404, "no push target has this URL")
        return JSONResponse({"target": target, "received": True})

    async def nodes(_request: Request) -> Response:
        core = node.core
        now = now_ms()
        voters = core.voters(now)
        peers = []
        for peer in core.peers:
            health = core.health_of(peer)
            last = node.last_sync_ms.get(peer)
            peers.append({
                "name": peer,
                "voter": peer in voters,
                "canaries_ok": health.canaries_ok,
                "last_heard_ms": core.heard.get(peer),
                "sync_lag_ms": None if last is None else now - last,
                "clock_offset_ms": core.peer_offset_ms.get(peer),
                "state": core.peer_record(peer).state.value,
            })  # fmt: skip
        return JSONResponse({
            "node": node.name,
            "version": _version(),
            "voter": node.name in voters,
            "canaries_ok": core.canaries_ok,
            "ready": core.ready(now),
            "clock": core.clock.last.encode(),
            "log_entries": len(core.log),
            "outbox_depth": await node.store.outbox_depth(),
            # What ntfy refused (a configuration error), with ntfy's words.
            "outbox_refused": [
                {"event": event_id, "error": error}
                for event_id, error in await node.store.outbox_refused()
            ],
            "peers": peers,
        })  # fmt: skip

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"node": node.name, "ok": True})

    return Starlette(
        routes=[
            Route("/sync/pull", signed("/sync/pull", node.answer_pull), methods=["POST"]),
            Route("/sync/push", signed("/sync/push", node.answer_push), methods=["POST"]),
            Route("/api/v1/targets", targets, methods=["GET"]),
            Route("/api/v1/nodes", nodes, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/api/v1/push/{token}", push, methods=["GET", "POST"]),
        ]
    )


def _target(node: Node, target_id: str) -> dict[str, Any]:
    core = node.core
    record = core.record(target_id)
    views = {}
    for name in core.nodes:
        view: Verdict = core.view(name, target_id)
        views[name] = {
            "verdict": view.state.value,
            "reason": view.reason,
            "latency_ms": view.latency_ms,
            "checked_ms": None if view.checked is None else view.checked.wall_ms,
            "flapping": view.flapping,
        }
    return {
        "id": target_id,
        "kind": node.targets[target_id].kind,
        "state": record.state.value,
        "mode": record.mode.value,
        "since_ms": record.since_ms,
        "event": record.event,
        "views": views,
    }


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message, "status": status}, status_code=status)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ravens")
    except PackageNotFoundError:
        return "unknown"
