"""The human face of a node: the status page, per-target pages, badges."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from watchers import badges
from watchers.api import live_view
from watchers.page import THEMES, render_missing, render_status, render_target
from watchers.runtime import Node
from watchers.shed import PAGE_TTL_S, RenderCache
from watchers.uptime import WINDOWS_MS, uptime

Theme = Annotated[Literal["neon", "plain"], Query(description="the look: neon or plain")]
SVG = "image/svg+xml"
# Badges are embedded in READMEs and dashboards: let caches keep them a minute.
BADGE_CACHE = {"Cache-Control": "public, max-age=60"}


def site_router(node: Node) -> APIRouter:
    assert THEMES == ("neon", "plain")
    app = APIRouter()
    # However many visitors, a page is rendered at most once per PAGE_TTL_S;
    # a visitor waits for a render only when nobody asked for a while, or
    # when the pair agreed on something since (the stream told of it: a page
    # it makes fetch itself again shows it).
    pages: RenderCache[str] = RenderCache(stale_s=PAGE_TTL_S)

    @app.get("/", response_class=HTMLResponse, summary="The status page")
    async def status_page(theme: Theme = "neon") -> HTMLResponse:
        page = await pages.get(("/", theme), lambda: render_status(node, theme), node.stream.told)
        return HTMLResponse(page)

    @app.get("/t/{target_id}", response_class=HTMLResponse, summary="One target's page")
    async def target_page(target_id: str, theme: Theme = "neon") -> HTMLResponse:
        if target_id not in node.targets:
            return HTMLResponse(render_missing(node, target_id, theme), status_code=404)
        page = await pages.get(
            (target_id, theme), lambda: render_target(node, target_id, theme), node.stream.told
        )
        return HTMLResponse(page)

    @app.get("/badge/{target_id}/status.svg", summary="Agreed state badge")
    async def status_badge(target_id: str) -> Response:
        return status_svg(node, target_id)

    @app.get("/badge/{target_id}/uptime.svg", summary="Uptime badge")
    async def uptime_badge(target_id: str, window: BadgeWindow = "30d") -> Response:
        return await uptime_svg(node, target_id, window)

    @app.get("/badge/{target_id}/latency.svg", summary="Latency badge (mean of the nodes)")
    async def latency_badge(target_id: str) -> Response:
        return latency_svg(node, target_id)

    return app


BadgeWindow = Literal["24h", "7d", "30d", "90d", "365d"]


def _svg(body: str, found: bool = True) -> Response:
    return Response(body, media_type=SVG, headers=BADGE_CACHE, status_code=200 if found else 404)


def _unknown() -> Response:
    return _svg(badges.badge("ravens", "unknown target", "#9f9f9f"), found=False)


def status_svg(node: Node, target_id: str) -> Response:
    target = node.targets.get(target_id)
    if target is None:
        return _unknown()
    return _svg(badges.status_badge(target.label, node.core.record(target_id).state.value))


async def uptime_svg(node: Node, target_id: str, window: BadgeWindow) -> Response:
    if target_id not in node.targets:
        return _unknown()
    now = node.clock.now_ms()
    found = uptime(await node.intervals(target_id), now - WINDOWS_MS[window], now, now)
    return _svg(badges.uptime_badge(window, found.percent))


def latency_svg(node: Node, target_id: str) -> Response:
    if target_id not in node.targets:
        return _unknown()
    seen = [live_view(node, n, target_id)["latency_ms"] for n in node.core.nodes]
    values = [v for v in seen if v is not None]
    return _svg(badges.latency_badge(sum(values) / len(values) if values else None))
