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


class _Truth:
    """Matches what the pair announced against what really happened."""

    def __init__(self, scenario: Scenario, record: Record) -> None:
        self.scenario = scenario
        self.record = record
        self.outages = list(scenario.outages)
        self.blockers: list[tuple[str | None, Window]] = []
        self.blockers += [(p.target, p) for p in scenario.paths]
        self.blockers += [(None, i) for i in scenario.isolations]
        self.blockers += [(None, c) for c in scenario.crashes]

    def visible(self, index: int) -> bool:
        """Both nodes could see the outage: nothing in the way of either."""
        outage = self.outages[index]
        lead_ms = 2 * 60_000
        return not any(
            (target is None or target == outage.target)
            and window.overlaps(outage.start_ms - lead_ms, outage.end_ms)
            for target, window in self.blockers
        )

    def decided_at(self, event: Event, fallback_ms: int) -> int:
        return self.record.decided.get(event.id, (fallback_ms, event))[0]

    def outage_of(self, event: Event, at_ms: int, ends: bool) -> int | None:
        """The outage a DOWN (or, with ends, an UP) decided at at_ms belongs to."""
        slack_ms = UP_SLACK_MS if ends else DOWN_SLACK_MS
        for i, outage in enumerate(self.outages):
            if outage.target != event.subject:
                continue
            lo = outage.end_ms if ends else outage.start_ms
            if lo <= at_ms <= outage.end_ms + slack_ms:
                return i
        return None

    def in_flap(self, event: Event, at_ms: int) -> bool:
        return any(
            f.target == event.subject and f.start_ms <= at_ms <= f.end_ms + DOWN_SLACK_MS
            for f in self.scenario.flaps
        )

    def detections(self) -> tuple[dict[int, int], int, int]:
        """First DOWN decision per outage; false alarms, quorum and single vantage."""
        detected: dict[int, int] = {}
        false_alarms = single_false = 0
        for at_ms, event in self.record.decided.values():
            if not _is_down(event):
                continue
            index = self.outage_of(event, at_ms, ends=False)
            if index is not None:
                detected[index] = min(detected.get(index, at_ms), at_ms)
            elif self.in_flap(event, at_ms):
                continue
            elif event.mode is Mode.SINGLE_VANTAGE:
                single_false += 1
            else:
                false_alarms += 1
        return detected, false_alarms, single_false

    def deliveries(self) -> dict[int, int]:
        """First DOWN post ntfy accepted per outage."""
        delivered: dict[int, int] = {}
        for post in self.record.posts:
            if _is_down(post.event):
                at_ms = self.decided_at(post.event, post.at_ms)
                index = self.outage_of(post.event, at_ms, ends=False)
                if index is not None:
                    delivered[index] = min(delivered.get(index, post.at_ms), post.at_ms)
        return delivered

    def copies(self) -> Counter[tuple[object, ...]]:
        """Posts per transition: per outage and direction, else per event id."""
        copies: Counter[tuple[object, ...]] = Counter()
        for post in self.record.posts:
            event = post.event
            at_ms = self.decided_at(event, post.at_ms)
            group: tuple[object, ...] = ("event", event.id)
            if _is_down(event):
                index = self.outage_of(event, at_ms, ends=False)
                if index is not None:
                    group = ("down", index)
            elif event.notice is Notice.UP:
                index = self.outage_of(event, at_ms, ends=True)
                if index is not None:
                    group = ("up", index)
            copies[group] += 1
        return copies

    def lost(self) -> int:
        """Events decided long enough before the end that nobody ever posted."""
        posted = {p.event.id for p in self.record.posts}
        return sum(
            1
            for event_id, (at_ms, event) in self.record.decided.items()
            if not event.suppressed
            and event_id not in posted
            and self.scenario.duration_ms - at_ms > 45 * 60_000
        )


def _spread(values: Sequence[float]) -> dict[str, float | None]:
    return {
        "p50": _percentile(values, 0.5),
        "p95": _percentile(values, 0.95),
        "max": _percentile(values, 1.0),
    }


def build(scenario: Scenario, record: Record, settings: Settings) -> dict[str, Any]:
    confirm = confirmation_ms(settings)
    truth = _Truth(scenario, record)
    outages = truth.outages
    detected, false_alarms, single_false = truth.detections()
    delivered = truth.deliveries()
    must = [i for i, o in enumerate(outages) if o.length_ms > confirm and truth.visible(i)]
    copies = truth.copies()
    latency = [(detected[i] - outages[i].start_ms) / 1000 for i in must if i in detected]
    delivery = [(delivered[i] - outages[i].start_ms) / 1000 for i in must if i in delivered]
    convergence = max(record.convergence_ms, default=0)
    return {
        "outages": len(outages),
        "must_detect": len(must),
        "detected": len(detected),
        "missed": sum(1 for i in must if i not in detected),
        "false_alarms": false_alarms,
        "single_vantage_false_alarms": single_false,
        "duplicates": sum(1 for c in copies.values() if c > 1),
        "max_copies": max(copies.values(), default=0),
        "detection_latency_s": _spread(latency),
        "delivery_latency_s": _spread(delivery),
        "convergence_s": round(convergence / 1000, 1),
        "heals": len(record.convergence_ms) + record.unconverged,
        "unconverged": record.unconverged,
        "lost_events": truth.lost(),
        "notifications": dict(sorted(Counter(p.event.notice.value for p in record.posts).items())),
        "flap_episodes": len(scenario.flaps),
        "warnings": dict(sorted(record.warnings.items())),
        "sync_bytes": dict(sorted(record.sync_bytes.items())),
        "confirmation_s": confirm / 1000,
        "checks": record.checks,
        "sim_seconds": scenario.duration_ms // 1000,
    }
