"""The status page and per-target pages: server-rendered HTML, inline SVG,
no external assets; Jinja2 escapes every name."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from watchers.api import incidents_between, incidents_json, target_summary
from watchers.bars import BAR_DAYS, Segment, segments
from watchers.clockwatch import now_ms
from watchers.runtime import Node
from watchers.uptime import DAY_MS, WINDOWS_MS, uptime

THEMES = ("neon", "plain")
TEMPLATES = Environment(
    loader=PackageLoader("watchers", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def stamp(ms: int | None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(ms: int | None, now: int) -> str:
    if ms is None:
        return "never"
    seconds = max(0, (now - ms) // 1000)
    for size, unit in ((86_400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


TEMPLATES.filters["stamp"] = stamp


@dataclass
class Row:
    summary: dict[str, Any]
    bar: list[Segment]
    uptime_pct: float | None
    windows: dict[str, float | None] = field(default_factory=dict)


async def rows(node: Node, target_ids: list[str], now: int, with_windows: bool) -> list[Row]:
    stretches = await node.intervals_since(now - 365 * DAY_MS)
    out = []
    for target_id in target_ids:
        mine = stretches.get(target_id, [])
        whole = uptime(mine, now - BAR_DAYS * DAY_MS, now, now)
        windows = {}
        if with_windows:
            windows = {n: uptime(mine, now - w, now, now).percent for n, w in WINDOWS_MS.items()}
        out.append(Row(target_summary(node, target_id), segments(mine, now), whole.percent,
                       windows))  # fmt: skip
    return out


def nodes_health(node: Node, now: int) -> list[dict[str, Any]]:
    core = node.core
    voters = core.voters(now)
    out = [
        {
            "name": node.name,
            "voter": node.name in voters,
            "canaries_ok": core.canaries_ok,
            "heard": "this node",
            "state": "VOTING" if node.name in voters else "ABSTAINING",
        }
    ]
    for peer in core.peers:
        out.append({
            "name": peer, "voter": peer in voters, "canaries_ok": core.health_of(peer).canaries_ok,
            "heard": ago(core.heard.get(peer), now), "state": core.peer_record(peer).state.value,
        })  # fmt: skip
    return out


async def render_status(node: Node, theme: str) -> str:
    now = now_ms()
    found = await rows(node, sorted(node.targets), now, with_windows=False)
    recent = await incidents_between(node, now - BAR_DAYS * DAY_MS, now + 1)
    incidents = incidents_json(node, recent[-20:])[::-1]
    counts: dict[str, int] = {}
    for row in found:
        counts[row.summary["state"]] = counts.get(row.summary["state"], 0) + 1
    return TEMPLATES.get_template("status.html").render(
        node=node.name, theme=theme, rows=found, incidents=incidents, counts=counts,
        nodes=nodes_health(node, now), now=stamp(now), days=BAR_DAYS, labels=_labels(node),
    )  # fmt: skip


async def render_target(node: Node, target_id: str, theme: str) -> str:
    now = now_ms()
    (row,) = await rows(node, [target_id], now, with_windows=True)
    recent = await incidents_between(node, now - 365 * DAY_MS, now + 1, target_id)
    incidents = incidents_json(node, recent[-50:])[::-1]
    return TEMPLATES.get_template("target.html").render(
        node=node.name, theme=theme, row=row, incidents=incidents, now=stamp(now),
        days=BAR_DAYS, nodes=nodes_health(node, now), labels=_labels(node),
    )  # fmt: skip


def render_missing(node: Node, target_id: str, theme: str) -> str:
    return TEMPLATES.get_template("missing.html").render(
        node=node.name, theme=theme, target_id=target_id, now=stamp(now_ms())
    )


def _labels(node: Node) -> dict[str, str]:
    return {t: target.label for t, target in node.targets.items()}
