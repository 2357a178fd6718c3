"""The status page and per-target pages: server-rendered HTML, inline SVG,
no external assets; Jinja2 escapes every name."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape

from notify.messages import said_once
from watchers import latency_chart
from watchers.api import (
    YIELD_EVERY,
    incidents_between,
    incidents_json,
    merged_history,
    target_summaries,
)
from watchers.bars import BAR_DAYS, Segment, segments
from watchers.probes.phases import words
from watchers.runtime import Node
from watchers.storage import Interval as Stretch
from watchers.uptime import DAY_MS, WINDOWS_MS, uptime

THEMES = ("neon", "plain")
# Template pieces (a few per row) rendered between turns for the loop: a
# turn of 100 is a millisecond or two (see metrics.TARGETS_PER_TURN).
RENDER_PARTS_PER_TURN = 100
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


def phase_words(phases: dict[str, Any] | None) -> str:
    """'DNS 1 ms, connect 0 ms, first byte 40 ms, total 42 ms (failed in TLS)'."""
    if not phases:
        return "—"
    failed = phases.get("failed_phase")
    tail = f" (failed: {str(failed).replace('_', ' ')})" if failed else ""
    return (words(phases) or "—") + tail


def why_words(why: dict[str, str]) -> str:
    """Each node's reason at the decision, a repeated one said as "same"."""
    names = list(why)
    return "; ".join(f"{n}: {r}" for n, r in zip(names, said_once(list(why.values())), strict=True))


TEMPLATES.filters["stamp"] = stamp
TEMPLATES.filters["phases"] = phase_words
TEMPLATES.filters["why"] = why_words


@dataclass(frozen=True)
class Scope:
    """What a page covers and where its links lead: the whole status page,
    or one customer's (`/s/<slug>`), which links only within itself."""

    home: str = "/"
    title: str = "RAVENS//STATUS"
    # The customer page's own token, when its visitor came with ?token=: the
    # page's links carry it on (never any other token: pages are cached).
    token: str | None = None
    # The footer's links to the API, its docs and metrics (the whole node's).
    node_links: bool = True
    # Target ids the page may show; None: every target.
    shown: frozenset[str] | None = None

    def query(self, theme: str) -> str:
        """The query string every link of the page carries (theme, token)."""
        pairs = {"theme": theme} if theme == "plain" else {}
        if self.token is not None:
            pairs["token"] = self.token
        return "?" + urlencode(pairs) if pairs else ""

    def target_link(self, target_id: str, theme: str) -> str:
        base = "" if self.home == "/" else self.home
        return f"{base}/t/{quote(target_id, safe='')}{self.query(theme)}"

    def home_link(self, theme: str) -> str:
        return self.home + self.query(theme)

    def other_theme(self, theme: str) -> str:
        other = "neon" if theme == "plain" else "plain"
        pairs = {"theme": other, **({"token": self.token} if self.token else {})}
        return "?" + urlencode(pairs)

    def targets(self, node: Node) -> list[str]:
        return sorted(t for t in node.targets if self.shown is None or t in self.shown)


WHOLE = Scope()


@dataclass
class Row:
    summary: dict[str, Any]
    bar: list[Segment]
    uptime_pct: float | None
    windows: dict[str, float | None] = field(default_factory=dict)


async def rows(node: Node, target_ids: list[str], now: int, with_windows: bool) -> list[Row]:
    """Each target's row, yielding to the loop every YIELD_EVERY targets.
    (Computing the bars in a thread was tried: under load the loop then
    waits on the GIL at every turn, and /healthz got slower, not faster.)"""
    if len(target_ids) == 1:
        # One target's page reads one target's history, not everyone's year.
        mine = [await node.intervals(target_ids[0])]
    else:
        stretches = await node.intervals_since(now - 365 * DAY_MS)
        mine = [stretches.get(t, []) for t in target_ids]
    summaries = await target_summaries(node, target_ids)
    return await _rows(summaries, mine, now, with_windows)


async def _rows(
    summaries: list[dict[str, Any]], histories: list[list[Stretch]], now: int, with_windows: bool
) -> list[Row]:
    out = []
    # Every target without history has the same bar and figures: once.
    no_history: tuple[list[Segment], float | None, dict[str, float | None]] | None = None
    for i, (summary, mine) in enumerate(zip(summaries, histories, strict=True)):
        if i % YIELD_EVERY == YIELD_EVERY - 1:
            await asyncio.sleep(0)
        if not mine and no_history is not None:
            bar, percent, windows = no_history
            out.append(Row(summary, list(bar), percent, dict(windows)))
            continue
        whole = uptime(mine, now - BAR_DAYS * DAY_MS, now, now)
        windows = {}
        if with_windows:
            windows = {n: uptime(mine, now - w, now, now).percent for n, w in WINDOWS_MS.items()}
        bar = segments(mine, now)
        if not mine:
            no_history = (bar, whole.percent, windows)
        out.append(Row(summary, bar, whole.percent, windows))
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
            "ntfy": "not set up"
            if node.config.ntfy is None
            else ntfy_words(core.ntfy_ok, *core.outbox_counts),
        }
    ]
    for peer in core.peers:
        health = core.health_of(peer)
        out.append(
            {
                "name": peer,
                "voter": peer in voters,
                "canaries_ok": health.canaries_ok,
                "heard": ago(core.heard.get(peer), now),
                "state": core.peer_record(peer).state.value,
                "ntfy": ntfy_words(health.ntfy_ok, health.outbox_waiting, health.outbox_refused),
            }
        )
    return out


def ntfy_words(ok: bool | None, waiting: int | None, refused: int | None) -> str:
    """A node's notifications in a few words: refusals first (a config to
    fix), then whether ntfy answers, then what waits."""
    if refused:
        return f"{refused} refused"
    if ok is False:
        return "unreachable"
    if waiting:
        return f"{waiting} waiting"
    return "ok" if ok else "unknown"


async def render_status(node: Node, theme: str, scope: Scope = WHOLE) -> str:
    now = node.clock.now_ms()
    shown = scope.targets(node)
    found = await rows(node, shown, now, with_windows=False)
    recent = await incidents_between(node, now - BAR_DAYS * DAY_MS, now + 1)
    if scope.shown is not None:
        recent = [i for i in recent if i.target in scope.shown]
    incidents = incidents_json(node, recent[-20:])[::-1]
    counts: dict[str, int] = {}
    for row in found:
        counts[row.summary["state"]] = counts.get(row.summary["state"], 0) + 1
    return await _render(
        "status.html",
        node=node.name,
        theme=theme,
        scope=scope,
        rows=found,
        incidents=incidents,
        counts=counts,
        nodes=nodes_health(node, now),
        now=stamp(now),
        days=BAR_DAYS,
        labels=_labels(node, shown),
    )


async def _render(name: str, **context: Any) -> str:
    """The template rendered a piece at a time, with a turn for the loop
    between pieces: a page of a thousand rows would otherwise hold checks,
    sync and /healthz for its whole render."""
    parts = []
    for i, part in enumerate(TEMPLATES.get_template(name).generate(**context)):
        parts.append(part)
        if i % RENDER_PARTS_PER_TURN == RENDER_PARTS_PER_TURN - 1:
            await asyncio.sleep(0)
    return "".join(parts)


async def render_target(node: Node, target_id: str, theme: str, scope: Scope = WHOLE) -> str:
    now = node.clock.now_ms()
    (row,) = await rows(node, [target_id], now, with_windows=True)
    recent = await incidents_between(node, now - 365 * DAY_MS, now + 1, target_id)
    incidents = incidents_json(node, recent[-50:])[::-1]
    # Both nodes' hours of the longest chart (the peer's asked over sync).
    longest = max(latency_chart.WINDOWS.values()) + latency_chart.HOUR_MS
    query = {
        "target": target_id,
        "from_ms": now - longest,
        "to_ms": now + 1,
        "resolution": "hour",
        "limit": longest // latency_chart.HOUR_MS + 1,
    }
    hours = (await merged_history(node, query))["points"]
    history = await node.intervals(target_id)
    charts = latency_chart.charts(now, hours, list(node.core.nodes), history)
    return TEMPLATES.get_template("target.html").render(
        charts=charts,
        node=node.name,
        theme=theme,
        scope=scope,
        row=row,
        incidents=incidents,
        now=stamp(now),
        days=BAR_DAYS,
        nodes=nodes_health(node, now),
        labels=_labels(node, [target_id]),
    )


def render_missing(node: Node, target_id: str, theme: str, scope: Scope = WHOLE) -> str:
    return TEMPLATES.get_template("missing.html").render(
        node=node.name,
        theme=theme,
        scope=scope,
        target_id=target_id,
        now=stamp(node.clock.now_ms()),
    )


def _labels(node: Node, shown: list[str]) -> dict[str, str]:
    return {t: node.targets[t].label for t in shown if t in node.targets}
