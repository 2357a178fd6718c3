"""The read API under /api/v1: what the rest of the platform reads.

Either node answers the same once synced: agreed states, intervals and
events are replicated; raw checks and rollups are per node, so history asks
the peer for its points over the signed channel and says when it could not.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response

from consensus.events import Event
from consensus.history import Incident, group_incidents
from consensus.verdict import Verdict
from watchers.digits import plain_digits
from watchers.runtime import Node
from watchers.shed import LIVE_TTL_S, RenderCache
from watchers.uptime import INCIDENT_STATES, WINDOWS_MS, parse_windows, uptime

MAX_PAGE = 10_000
# Targets summed up between turns for the loop (see metrics.TARGETS_PER_TURN).
YIELD_EVERY = 25
# Epoch milliseconds have 13 digits until the year 2286.
MAX_TIME_DIGITS = 16
FROM = Query(alias="from", description="epoch ms or ISO 8601 with an offset")
TO = Query(description="epoch ms or ISO 8601 with an offset; default now")
ALL_WINDOWS = ",".join(WINDOWS_MS)
StateName = Literal["UP", "DOWN", "PARTIAL", "FLAPPING", "MAINTENANCE", "UNKNOWN"]


def when_ms(value: str | None, name: str, default: int) -> int:
    """Epoch milliseconds, or an ISO 8601 time with an offset."""
    if value is None or value == "":
        return default
    if plain_digits(value.removeprefix("-"), MAX_TIME_DIGITS):
        return int(value)
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        message = f"{name}: expected epoch milliseconds or an ISO 8601 time such as "
        raise HTTPException(400, f"{message}2026-11-29T12:00:00Z, got {value!r}") from None
    if stamp.tzinfo is None:
        raise HTTPException(400, f"{name}: expected a time with an offset (Z or +01:00)")
    return int(stamp.timestamp() * 1000)


def router_for(node: Node) -> APIRouter:
    api = APIRouter(prefix="/api/v1")
    lists: RenderCache[str] = RenderCache(ttl_s=LIVE_TTL_S, max_keys=256)

    def known(target_id: str) -> None:
        if target_id not in node.targets:
            raise HTTPException(404, f"no target with id {target_id!r}")

    @api.get(
        "/targets",
        summary="Every target with its agreed state and each node's view",
        response_model=dict[str, Any],
    )
    async def targets(
        tag: Annotated[str | None, Query(description="only targets with this tag")] = None,
        state: Annotated[StateName | None, Query(description="only this agreed state")] = None,
    ) -> Response:
        async def render() -> str:
            chosen = [
                t for t, target in sorted(node.targets.items()) if tag is None or tag in target.tags
            ]
            items = await target_summaries(node, chosen)
            if state is not None:
                items = [i for i in items if i["state"] == state]
            return compact_json({"node": node.name, "targets": items})

        body = await lists.get((tag, state, node.revision()), render)
        return Response(body, media_type="application/json")

    @api.get("/targets/{target_id}", summary="One target, with its current incident if any")
    async def target(target_id: str) -> dict[str, Any]:
        known(target_id)
        item = target_summary(node, target_id)
        item["incident"] = None
        if item["state"] in INCIDENT_STATES:
            now = node.clock.now_ms()
            current = await incidents_between(node, now, now + 1, target_id)
            if current:
                item["incident"] = incidents_json(node, current[-1:])[0]
        return item

    @api.get(
        "/targets/{target_id}/history",
        summary="Checks or rollups from both nodes",
        response_model=dict[str, Any],
    )
    async def history(
        target_id: str,
        from_: Annotated[str | None, FROM] = None,
        to: Annotated[str | None, TO] = None,
        resolution: Literal["raw", "hour", "day"] = "raw",
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="points per node")] = 1000,
    ) -> Response:
        known(target_id)
        end = when_ms(to, "to", node.clock.now_ms())
        start = when_ms(from_, "from", end - 86_400_000)
        if start >= end:
            raise HTTPException(400, "from: expected a time before to")
        query = {
            "target": target_id,
            "from_ms": start,
            "to_ms": end,
            "resolution": resolution,
            "limit": limit,
        }
        return plain_json(await merged_history(node, query))

    @api.get("/targets/{target_id}/uptime", summary="Uptime from agreed-state intervals")
    async def uptime_of(
        target_id: str,
        windows: Annotated[str, Query(description="comma-separated windows")] = ALL_WINDOWS,
        at: Annotated[
            str | None, Query(description="windows end here (epoch ms or ISO 8601); default now")
        ] = None,
    ) -> dict[str, Any]:
        known(target_id)
        try:
            names = parse_windows(windows)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        stretches = await node.intervals(target_id)
        now = when_ms(at, "at", node.clock.now_ms())
        out = {}
        for name in names:
            start = now - WINDOWS_MS[name]
            found = uptime(stretches, start, now, now)
            outages = [
                i
                for i in group_incidents(stretches, now)
                if i.state == "DOWN" and i.start_ms < now and (i.end_ms is None or i.end_ms > start)
            ]
            out[name] = {
                "uptime_pct": found.percent,
                "down_s": found.down_s,
                "incidents": len(outages),
                "seconds_by_state": found.seconds,
                "maintenance_excluded_s": found.seconds.get("MAINTENANCE", 0.0),
                "unknown_excluded_s": found.seconds.get("UNKNOWN", 0.0),
            }
        return {
            "target": target_id,
            "at_ms": now,
            "windows": out,
            "method": "exact seconds of agreed state; MAINTENANCE and UNKNOWN time are left "
            "out; PARTIAL and FLAPPING count as up",
        }

    @api.get(
        "/incidents",
        summary="Outages: runs of agreed DOWN, FLAPPING and lasting PARTIAL",
        response_model=dict[str, Any],
    )
    async def incidents(
        from_: Annotated[str | None, FROM] = None,
        to: Annotated[str | None, TO] = None,
        target: Annotated[str | None, Query(description="only this target")] = None,
    ) -> Response:
        if target is not None:
            known(target)
        end = when_ms(to, "to", node.clock.now_ms() + 1)
        start = when_ms(from_, "from", end - 30 * 86_400_000)
        if start >= end:
            raise HTTPException(400, "from: expected a time before to")
        # Every target's history for 37 days is read for the default window:
        # a crowd of pollers shares one reading a second.
        body = await lists.get(
            ("incidents", from_, to, target, node.revision()),
            lambda: incidents_body(node, start, end, target),
        )
        return Response(body, media_type="application/json")

    return api


def plain_json(payload: dict[str, Any]) -> Response:
    """Our payloads are plain JSON already: FastAPI's generic encoder would
    walk them again first, which took 45 ms of 65 for a thousand targets."""
    return Response(compact_json(payload), media_type="application/json")


def compact_json(payload: dict[str, Any]) -> str:
    """Keys in the order written (wire.json_text sorts them, for signing)."""
    return json.dumps(payload, separators=(",", ":"))


def live_view(node: Node, name: str, target_id: str) -> dict[str, Any]:
    """One node's view of a target: its verdict from the log, and its latest
    check (reason, latency, when) from the live figures when those are newer."""
    view: Verdict = node.core.view(name, target_id)
    if name == node.name:
        # Our own streak as it stands, not as last replicated.
        view = node.core.verdicts.get(target_id, view)
    checked_ms = None if view.checked is None else view.checked.wall_ms
    found: dict[str, Any] = {
        "verdict": view.state.value,
        # The streak of checks that disagree with the verdict so far: a
        # verdict moves only once one reaches its threshold.
        "fails": view.fails,
        "oks": view.oks,
        "reason": view.reason,
        "latency_ms": view.latency_ms,
        "checked_ms": checked_ms,
        "last_ok": view.last_ok,
        "flapping": view.flapping,
        # Its checks of the target stopped: the view does not vote.
        "stale": view.stale,
        # An HTTP check's phase timings and the phase it failed in.
        "phases": None,
    }
    latest = node.live.latest(name, target_id)
    if latest is not None and (checked_ms is None or latest.at_ms >= checked_ms):
        found.update(
            reason=latest.reason,
            latency_ms=latest.latency_ms,
            checked_ms=latest.at_ms,
            last_ok=latest.ok,
            phases=None if latest.phases is None else dict(latest.phases),
        )
    return found


async def merged_history(node: Node, query: dict[str, Any]) -> dict[str, Any]:
    """Both nodes' points in time order; a page ends where the first node's
    full page ends, and next_from_ms continues from there."""
    answers = {node.name: await node.sync.answer_history(node.name, query)}
    reached = {node.name: "ok"}
    for peer in node.sync.urls:
        answer = await node.sync.peer_history(peer, query)
        reached[peer] = "ok" if answer is not None else "unreachable"
        if answer is not None:
            answers[peer] = answer
    points = sorted(
        (p for a in answers.values() for p in a["points"]), key=lambda p: (p["at_ms"], p["node"])
    )
    limit = query["limit"]
    full = [a["points"][-1]["at_ms"] for a in answers.values() if len(a["points"]) >= limit]
    next_from = None
    if full:
        cut = min(full)
        points = [p for p in points if p["at_ms"] <= cut]
        next_from = cut + 1
    return {
        "target": query["target"],
        "resolution": query["resolution"],
        "from_ms": query["from_ms"],
        "to_ms": query["to_ms"],
        "nodes": reached,
        "points": points,
        "next_from_ms": next_from,
        "raw_retention_days": node.config.storage.raw_retention_days,
    }


def target_summary(node: Node, target_id: str) -> dict[str, Any]:
    core = node.core
    record = core.record(target_id)
    target = node.targets[target_id]
    views = {}
    for name in core.nodes:
        views[name] = live_view(node, name, target_id)
    return {
        "id": target_id,
        "name": target.label,
        "kind": target.kind,
        "tags": list(target.tags),
        "state": record.state.value,
        "mode": record.mode.value,
        "since_ms": record.since_ms,
        "event": record.event,
        "silenced": target_id in core.silenced,
        "in_maintenance": target_id in core.maintenance,
        "source": node.source_of(target_id),
        "views": views,
        # The registration of the domain it stands on, as this node last
        # looked it up ([domains] watch); None when not watched.
        "domain": _registration(node, target_id),
        # Checks in a row that move a node's verdict down, and back up.
        "thresholds": {
            "fail": core.settings.fail_threshold,
            "success": core.settings.success_threshold,
        },
    }


def _registration(node: Node, target_id: str) -> dict[str, Any] | None:
    found = node.domains.of_target(target_id) if node.config.domains.watch else None
    if found is None:
        return None
    return {
        "name": found.domain,
        "expires_ms": found.expires_ms,
        "checked_ms": found.checked_ms,
        "error": found.error,
    }


async def target_summaries(node: Node, target_ids: list[str]) -> list[dict[str, Any]]:
    """Each target's summary, with a turn for the loop every YIELD_EVERY:
    a thousand of them would otherwise hold checks, sync and /healthz."""
    out = []
    for i, target_id in enumerate(target_ids):
        out.append(target_summary(node, target_id))
        if i % YIELD_EVERY == YIELD_EVERY - 1:
            await asyncio.sleep(0)
    return out


async def incidents_body(node: Node, start_ms: int, end_ms: int, target: str | None) -> str:
    found = await incidents_between(node, start_ms, end_ms, target)
    return compact_json(
        {"from_ms": start_ms, "to_ms": end_ms, "incidents": incidents_json(node, found)}
    )


# Incidents are grouped from stretches this far before the asked window, so
# one that began earlier keeps its true start.
INCIDENT_LOOKBACK_MS = 7 * 86_400_000


async def incidents_between(
    node: Node, start_ms: int, end_ms: int, target: str | None = None
) -> list[Incident]:
    """Incidents overlapping [start_ms, end_ms), oldest first, from the
    derived history (the same on both nodes once synced)."""
    if target is not None:
        by_target = {target: await node.intervals(target)}
    else:
        by_target = await node.intervals_since(start_ms - INCIDENT_LOOKBACK_MS)
    found = [
        incident
        for stretches in by_target.values()
        for incident in group_incidents([s for s in stretches if s.start_ms < end_ms], end_ms)
        if incident.start_ms < end_ms and (incident.end_ms is None or incident.end_ms > start_ms)
    ]
    return sorted(found, key=lambda i: (i.start_ms, i.target))


def _why(event: Event | None) -> dict[str, str]:
    if event is None:
        return {}
    return {
        name: str(view.get("reason") or "")[:200]
        for name, view in sorted(event.views.items())
        if view.get("state") not in (None, "UP")
    }


def incidents_json(node: Node, found: list[Incident]) -> list[dict[str, Any]]:
    """Only what the log holds, so either node answers byte for byte the same."""
    out = []
    for incident in found:
        event = node.core.event(incident.event) if incident.event else None
        sent_by = node.core.sent_by(incident.event) if incident.event else None
        notified: dict[str, Any] = {"status": "none"}
        covering = node.core.covered_by(incident.event) if incident.event else None
        if event is not None and event.suppressed:
            notified = {"status": "suppressed"}
        elif covering is not None:
            # Told by its parent's page, not on its own.
            notified = {"status": "covered", "by": covering}
        elif sent_by is not None:
            notified = {"status": "sent", "by": sent_by}
        elif event is not None:
            notified = {"status": "pending"}
        out.append(
            {
                "target": incident.target,
                "state": incident.state,
                "mode": incident.mode,
                "start_ms": incident.start_ms,
                "end_ms": incident.end_ms,
                "ongoing": incident.ongoing,
                "event": incident.event,
                "acknowledged": node.core.acknowledgement(incident.event)
                if incident.event
                else None,
                # Whose failing check anchored the decision.
                "noticed_first": None
                if event is None or event.anchor is None
                else event.anchor.node,
                "notification": notified,
                # Where each node's checks failed as the pair decided: its reason
                # then (phase first for HTTP: "TLS handshake failed: ...").
                "why": _why(event),
                "stretches": [
                    {"state": s.state, "start_ms": s.start_ms, "end_ms": s.end_ms}
                    for s in incident.stretches
                ],
            }
        )
    return out
