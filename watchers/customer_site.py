"""`/s/<slug>`: one customer's page, its targets' pages and badges, and
nothing of any other target.

A page with a token of its own opens to that token, sent as
``Authorization: Bearer`` or as ``?token=`` (a link a customer can
bookmark; the page's links carry it on), and to the node's read and admin
tokens as a Bearer header. A page without one is as open as the status page:
behind the node's read token when one is set.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from watchers.admin import bearer, token_owner
from watchers.customer_pages import PageSection
from watchers.page import Scope, render_missing, render_status, render_target
from watchers.runtime import Node
from watchers.shed import PAGE_TTL_S, RenderCache
from watchers.site import BadgeWindow, Theme, latency_svg, status_svg, uptime_svg

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ravens page"'}


def customer_router(node: Node) -> APIRouter:
    app = APIRouter(prefix="/s/{slug}", tags=["customer pages"])
    by_slug = {page.slug: page for page in node.config.pages}
    pages: RenderCache[str] = RenderCache(stale_s=PAGE_TTL_S)

    def scope_for(slug: str, request: Request) -> tuple[PageSection, Scope]:
        """The page and what its visitor may see, or a 404 or 401."""
        page = by_slug.get(slug)
        if page is None:
            raise HTTPException(404, f"no page {slug!r} here")
        own = node.api.pages.get(slug)
        header = bearer(request)
        in_link = request.query_params.get("token")
        node_readers = {**({node.api.read: "reader"} if node.api.read else {}), **node.api.admins}
        if own is None and node.api.read is None:
            allowed = True
        else:
            allowed = token_owner(header, node_readers) is not None
            if own is not None:
                allowed = allowed or any(_same(own, t) for t in (header, in_link))
        if not allowed:
            raise HTTPException(401, f"page {slug!r} needs its token", CHALLENGE)
        carried = in_link if own is not None and in_link and _same(own, in_link) else None
        shown = frozenset(page.selection(node.targets))
        return page, Scope(f"/s/{slug}", page.title, carried, node_links=False, shown=shown)

    def shown_target(scope: Scope, target_id: str) -> bool:
        return scope.shown is not None and target_id in scope.shown

    @app.get("", response_class=HTMLResponse, summary="One customer's status page")
    async def customer_page(slug: str, request: Request, theme: Theme = "neon") -> HTMLResponse:
        _, scope = scope_for(slug, request)
        key = (slug, theme, scope.token is not None)
        return HTMLResponse(
            await pages.get(key, lambda: render_status(node, theme, scope), node.stream.told)
        )

    @app.get("/t/{target_id}", response_class=HTMLResponse, summary="A target of the page")
    async def customer_target(
        slug: str, target_id: str, request: Request, theme: Theme = "neon"
    ) -> HTMLResponse:
        _, scope = scope_for(slug, request)
        if not shown_target(scope, target_id):
            return HTMLResponse(render_missing(node, target_id, theme, scope), status_code=404)
        key = (slug, target_id, theme, scope.token is not None)
        page = await pages.get(
            key, lambda: render_target(node, target_id, theme, scope), node.stream.told
        )
        return HTMLResponse(page)

    @app.get("/badge/{target_id}/status.svg", summary="A page's target: agreed state badge")
    async def status_badge(slug: str, target_id: str, request: Request) -> Response:
        _, scope = scope_for(slug, request)
        return status_svg(node, target_id if shown_target(scope, target_id) else "")

    @app.get("/badge/{target_id}/uptime.svg", summary="A page's target: uptime badge")
    async def uptime_badge(
        slug: str, target_id: str, request: Request, window: BadgeWindow = "30d"
    ) -> Response:
        _, scope = scope_for(slug, request)
        return await uptime_svg(node, target_id if shown_target(scope, target_id) else "", window)

    @app.get("/badge/{target_id}/latency.svg", summary="A page's target: latency badge")
    async def latency_badge(slug: str, target_id: str, request: Request) -> Response:
        _, scope = scope_for(slug, request)
        return latency_svg(node, target_id if shown_target(scope, target_id) else "")

    return app


def _same(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())
