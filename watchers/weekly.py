"""The weekly report: one message per topic, from the agreed history.

Pure arithmetic over what both nodes hold alike (each target's agreed
stretches, the node events in the log), so whichever node posts it says
the same. ``when`` parses the config's ``weekly_report = "mon 08:00"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from consensus import keys
from consensus.agreement import Notice
from consensus.events import Event
from consensus.lww import JsonValue
from consensus.settings import DAY_MS
from watchers.uptime import Stretch, uptime

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# How many of the worst targets a report names.
WORST = 5
# A node's trouble begins with one of these and ends with PEER_BACK.
NODE_TROUBLE = (Notice.NODE_ISOLATED, Notice.PEER_LOST)


def when(text: str) -> int:
    """'mon 08:00' (UTC) -> ms after Monday 00:00; ValueError saying what is wrong."""
    day, _, clock = text.strip().lower().partition(" ")
    hours, _, minutes = clock.partition(":")
    if day[:3] not in DAYS or not hours.isdigit() or not minutes.isdigit():
        raise ValueError(f"expected a day and a UTC time such as 'mon 08:00', got {text!r}")
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError(f"expected a time from 00:00 to 23:59, got {clock!r}")
    return DAYS.index(day[:3]) * DAY_MS + (int(hours) * 60 + int(minutes)) * 60_000


@dataclass(frozen=True, slots=True)
class Watched:
    """One target as the report sees it."""

    id: str
    tags: tuple[str, ...]
    stretches: Sequence[Stretch]


def report(
    targets: Sequence[Watched], node_events: Sequence[Event], start_ms: int, end_ms: int
) -> dict[str, JsonValue]:
    """What the week [start_ms, end_ms) was: uptime per tag, the worst
    targets, the outages and their total time, and the pair's own health."""
    kept = []
    down_s = 0.0
    outages = 0
    for target in targets:
        found = uptime(target.stretches, start_ms, end_ms, end_ms)
        down_s += found.down_s
        outages += found.incidents
        kept.append((target, found.percent, found.down_s))
    by_tag: dict[str, list[float]] = {}
    for target, percent, _ in kept:
        for tag in target.tags or ("(no tag)",):
            if percent is not None:
                by_tag.setdefault(tag, []).append(percent)
    judged = [p for _, p, _ in kept if p is not None]
    worst = sorted(
        ((t.id, p, d) for t, p, d in kept if p is not None and d > 0),
        key=lambda w: (w[1], w[0]),
    )[:WORST]
    return {
        "week_start_ms": start_ms,
        "week_end_ms": end_ms,
        "targets": len(targets),
        "uptime_pct": _mean(judged),
        "by_tag": [
            {"tag": tag, "targets": len(found), "uptime_pct": _mean(found)}
            for tag, found in sorted(by_tag.items())
        ],
        "worst": [
            {"target": id_, "uptime_pct": round(p, 3), "down_s": round(d)} for id_, p, d in worst
        ],
        "outages": outages,
        "down_s": round(down_s),
        "pair": _pair_health(node_events, start_ms, end_ms),
    }


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def _pair_health(events: Sequence[Event], start_ms: int, end_ms: int) -> JsonValue:
    """Per node, how long it was cut off (isolated, or lost by its peer)
    within the week and how many times, from the node events in the log."""
    health: dict[str, JsonValue] = {}
    by_node: dict[str, list[Event]] = {}
    for event in events:
        node = keys.subject_node(event.subject)
        if event.at_ms is not None and node is not None:
            by_node.setdefault(node, []).append(event)
    for node, found in sorted(by_node.items()):
        began: int | None = None
        spells = 0
        cut_ms = 0
        for event in sorted(found, key=lambda e: (e.at_ms or 0, e.id)):
            at = event.at_ms or 0
            if event.notice in NODE_TROUBLE and began is None:
                began = at
            elif event.notice is Notice.PEER_BACK and began is not None:
                lo, hi = max(began, start_ms), min(at, end_ms)
                if hi > lo:
                    spells += 1
                    cut_ms += hi - lo
                began = None
        if began is not None and began < end_ms:
            spells += 1
            cut_ms += end_ms - max(began, start_ms)
        health[node] = {"cut_off_s": cut_ms // 1000, "times": spells}
    return health


def topics_of(
    targets: Mapping[str, tuple[str | None, tuple[str, ...]]],
    tag_topics: Mapping[str, str],
    default: str,
) -> dict[str, list[str]]:
    """Which targets each topic's report covers: the topic each target's
    notifications go to (its own, its first routed tag's, or the default)."""
    found: dict[str, list[str]] = {}
    for id_, (own, tags) in sorted(targets.items()):
        topic = own or next((tag_topics[t] for t in tags if t in tag_topics), None) or default
        found.setdefault(topic, []).append(id_)
    return found
