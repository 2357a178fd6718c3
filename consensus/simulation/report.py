"""The simulator's report: what the pair noticed against what really happened.

Definitions that bind it:

- an outage shorter than the confirmation time need not be detected; one
  that both nodes can see (no path failure, isolation or crash of either
  node during it) and that lasts longer must be, or it is ``missed``;
- a DOWN announced with no real outage is a false alarm: counted in
  ``single_vantage_false_alarms`` when a node decided alone (its message says
  so), in ``false_alarms`` otherwise;
- copies are counted per transition: per real outage and direction, else
  per event id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from consensus.agreement import Mode, Notice
from consensus.events import Event
from consensus.settings import Settings
from consensus.simulation.runner import CHECK_INTERVAL_MS, Record
from consensus.simulation.scenario import Scenario, Window

# After an outage ends the pair may still announce it this late (checks in
# flight, messages on the way).
DOWN_SLACK_MS = 3 * 60_000
# A recovery is announced within this long after the outage ends.
UP_SLACK_MS = 15 * 60_000


def confirmation_ms(settings: Settings) -> int:
    """The longest a visible outage may take to be confirmed, single vantage
    included: a check interval, the peer timeout, the single-vantage streak
    of fast retries, and a margin for checks and canaries in flight."""
    return (
        CHECK_INTERVAL_MS
        + settings.peer_timeout_ms
        + settings.single_vantage_fail_threshold * settings.retry_interval_ms
        + 60_000
    )


def _is_down(event: Event) -> bool:
    return event.notice is Notice.DOWN or (
        event.notice is Notice.FLAPPING_SETTLED and event.state == "DOWN"
    )


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 1)


def build(scenario: Scenario, record: Record, settings: Settings) -> dict[str, Any]:
    confirm = confirmation_ms(settings)
    blockers: list[tuple[str | None, str | None, Window]] = []
    blockers += [(p.target, p.node, p) for p in scenario.paths]
    blockers += [(None, i.node, i) for i in scenario.isolations]
    blockers += [(None, c.node, c) for c in scenario.crashes]

    def visible(target: str, window: Window) -> bool:
        lead = 2 * 60_000
        return not any(
            (t is None or t == target) and w.overlaps(window.start_ms - lead, window.end_ms)
            for t, _, w in blockers
        )

    outages = list(scenario.outages)
    flaps = list(scenario.flaps)
    decided = record.decided
    posted_ids = {p.event.id for p in record.posts}

    def outage_of(event: Event, at_ms: int, slack_ms: int, ends: bool) -> int | None:
        for i, outage in enumerate(outages):
            if outage.target != event.subject:
                continue
            lo = outage.end_ms if ends else outage.start_ms
            hi = outage.end_ms + slack_ms
            if lo <= at_ms <= hi:
                return i
        return None

    def in_flap(event: Event, at_ms: int) -> bool:
        return any(
            f.target == event.subject and f.start_ms <= at_ms <= f.end_ms + DOWN_SLACK_MS
            for f in flaps
        )

    detected_at: dict[int, int] = {}
    delivered_at: dict[int, int] = {}
    false_alarms = 0
    single_false = 0
    for event_id, (at_ms, event) in decided.items():
        if not _is_down(event):
            continue
        index = outage_of(event, at_ms, DOWN_SLACK_MS, ends=False)
        if index is not None:
            detected_at[index] = min(detected_at.get(index, at_ms), at_ms)
        elif in_flap(event, at_ms):
            continue
        elif event.mode is Mode.SINGLE_VANTAGE:
            single_false += 1
        else:
            false_alarms += 1
    for post in record.posts:
        if _is_down(post.event):
            at_ms = decided.get(post.event.id, (post.at_ms, post.event))[0]
            index = outage_of(post.event, at_ms, DOWN_SLACK_MS, ends=False)
            if index is not None:
                delivered_at[index] = min(delivered_at.get(index, post.at_ms), post.at_ms)

    must = [i for i, o in enumerate(outages) if o.length_ms > confirm and visible(o.target, o)]
    missed = [i for i in must if i not in detected_at]

    copies: Counter[tuple[object, ...]] = Counter()
    for post in record.posts:
        event = post.event
        at_ms = decided.get(event.id, (post.at_ms, event))[0]
        group: tuple[object, ...] = ("event", event.id)
        if _is_down(event):
            index = outage_of(event, at_ms, DOWN_SLACK_MS, ends=False)
            if index is not None:
                group = ("down", index)
        elif event.notice is Notice.UP:
            index = outage_of(event, at_ms, UP_SLACK_MS, ends=True)
            if index is not None:
                group = ("up", index)
        copies[group] += 1

    lost = [
        event_id
        for event_id, (at_ms, event) in decided.items()
        if not event.suppressed
        and event_id not in posted_ids
        and scenario.duration_ms - at_ms > 45 * 60_000
    ]
    latency = [(detected_at[i] - outages[i].start_ms) / 1000 for i in must if i in detected_at]
    delivery = [(delivered_at[i] - outages[i].start_ms) / 1000 for i in must if i in delivered_at]
    notices = Counter(p.event.notice.value for p in record.posts)
    return {
        "outages": len(outages),
        "must_detect": len(must),
        "detected": len(detected_at),
        "missed": len(missed),
        "false_alarms": false_alarms,
        "single_vantage_false_alarms": single_false,
        "duplicates": sum(1 for c in copies.values() if c > 1),
        "max_copies": max(copies.values(), default=0),
        "detection_latency_s": {
            "p50": _percentile(latency, 0.5),
            "p95": _percentile(latency, 0.95),
            "max": _percentile(latency, 1.0),
        },
        "delivery_latency_s": {
            "p50": _percentile(delivery, 0.5),
            "p95": _percentile(delivery, 0.95),
            "max": _percentile(delivery, 1.0),
        },
        "convergence_s": (
            round(max(record.convergence_ms) / 1000, 1) if record.convergence_ms else 0.0
        ),
        "heals": len(record.convergence_ms) + record.unconverged,
        "unconverged": record.unconverged,
        "lost_events": len(lost),
        "notifications": dict(sorted(notices.items())),
        "flap_episodes": len(flaps),
        "warnings": dict(sorted(record.warnings.items())),
        "sync_bytes": dict(sorted(record.sync_bytes.items())),
        "confirmation_s": confirm / 1000,
        "checks": record.checks,
        "sim_seconds": scenario.duration_ms // 1000,
    }
