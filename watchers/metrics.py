"""Prometheus metrics, read from the node's state at scrape time (nothing is
counted twice or kept in step by hand)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from consensus.agreement import AgreedState
from watchers.api import live_view
from watchers.runtime import Node

# Targets whose samples are made between turns for the loop: a turn of
# 25 is a few milliseconds, and /healthz and checks wait at most that long
# (at 100 a turn, under a crowd, /healthz p99 was 138 ms; at 25, 43 ms).
TARGETS_PER_TURN = 25


class NodeCollector(Collector):
    def __init__(
        self,
        node: Node,
        outbox_depth: int,
        by_reason: Sequence[tuple[str, str, int]] = (),
        hooks: Mapping[str, Any] | None = None,
    ) -> None:
        self.node = node
        self.outbox_depth = outbox_depth
        self.by_reason = by_reason
        # The webhooks' outbox as /api/v1/nodes shows it (Webhooks.outbox).
        self.hooks = hooks or {"waiting": {}, "refused": []}

    def collect(self) -> Iterator[Metric]:
        yield from per_target(self.node, sorted(self.node.targets))
        yield from self.per_node()

    def per_hook(self) -> Iterator[Metric]:
        names = sorted(self.node.webhooks.couriers)
        waiting = GaugeMetricFamily(
            "ravens_webhook_waiting", "Deliveries waiting for the webhook", labels=["hook"]
        )
        refused = GaugeMetricFamily(
            "ravens_webhook_refused", "Deliveries the webhook's receiver refused", labels=["hook"]
        )
        answers = GaugeMetricFamily(
            "ravens_webhook_ok",
            "1 if the receiver answered the node's last attempt (absent before one)",
            labels=["hook"],
        )
        for name in names:
            waiting.add_metric([name], float(self.hooks["waiting"].get(name, 0)))
            told = sum(1 for row in self.hooks["refused"] if row["hook"] == name)
            refused.add_metric([name], float(told))
            answering = self.node.webhooks.couriers[name].answering
            if answering is not None:
                answers.add_metric([name], float(answering))
        yield from (waiting, refused, answers)

    def per_node(self) -> Iterator[Metric]:
        yield from self.per_hook()
        node, core = self.node, self.node.core
        now = node.clock.now_ms()
        voters = core.voters(now)
        voter = GaugeMetricFamily("ravens_node_voter", "1 if the node votes", labels=["node"])
        for name in core.nodes:
            voter.add_metric([name], float(name in voters))
        yield voter
        yield GaugeMetricFamily(
            "ravens_canaries_ok",
            "1 if this node's canaries answer",
            value=float(bool(core.canaries_ok)),
        )
        reach = GaugeMetricFamily(
            "ravens_ntfy_ok",
            "1 if ntfy answered the node's last attempt (absent before one)",
            labels=["node"],
        )
        for name in core.nodes:
            ok = core.ntfy_ok if name == core.node else core.health_of(name).ntfy_ok
            if ok is not None:
                reach.add_metric([name], float(ok))
        yield reach
        yield GaugeMetricFamily(
            "ravens_outbox_depth", "Notifications waiting for ntfy", value=float(self.outbox_depth)
        )
        posts = GaugeMetricFamily(
            "ravens_outbox_posts",
            "Notifications waiting for ntfy, or refused by it, by what it (or the network) said",
            labels=["status", "reason"],
        )
        for status, reason, count in self.by_reason:
            posts.add_metric([status, reason or "-"], float(count))
        yield posts
        refused = GaugeMetricFamily(
            "ravens_node_outbox_refused",
            "Notifications ntfy refused, per node (a peer's from its last heartbeat)",
            labels=["node"],
        )
        for name in core.nodes:
            told = (
                core.outbox_counts[1] if name == node.name else core.health_of(name).outbox_refused
            )
            if told is not None:
                refused.add_metric([name], float(told))
        yield refused
        late = node.lateness.summary()
        lateness = GaugeMetricFamily(
            "ravens_check_lateness_seconds",
            "How late the last 10,000 checks started against their due time",
            labels=["quantile"],
        )
        for quantile, key in (("0.5", "p50_ms"), ("0.99", "p99_ms"), ("1", "max_ms")):
            if late[key] is not None:
                lateness.add_metric([quantile], late[key] / 1000)
        yield lateness
        storage = node.writes.status()
        yield GaugeMetricFamily(
            "ravens_storage_ok", "1 while the database takes writes", value=float(storage["ok"])
        )
        yield GaugeMetricFamily(
            "ravens_unsaved_steps",
            "Steps kept in memory because the database refused them",
            value=float(storage["unsaved_steps"]),
        )
        yield GaugeMetricFamily(
            "ravens_log_entries", "Entries in the log", value=float(len(core.log))
        )
        yield CounterMetricFamily(
            "ravens_requests_shed",
            "Open requests turned away with 503 because too many were served at once",
            value=float(node.shedding.shed),
        )
        yield GaugeMetricFamily(
            "ravens_log_bytes", "The log's keys and values as JSON", value=float(core.log.bytes)
        )
        yield GaugeMetricFamily(
            "ravens_log_full_ratio",
            "The log against its cap (entries or bytes, the fuller); at 1 a peer's additions "
            "are refused",
            value=float(core.log_usage()["fraction"]),
        )
        lag = GaugeMetricFamily(
            "ravens_sync_lag_seconds", "Since the last full pull", labels=["peer"]
        )
        for peer in node.sync.last_sync_mono:
            lag.add_metric([peer], (node.sync.lag_ms(peer) or 0) / 1000)
        yield lag
        left = CounterMetricFamily(
            "ravens_sync_entries_left_to_pull",
            "Entries not pushed to the peer (backlog past its bound, or the peer did not "
            "answer): its next pull carries them",
            labels=["peer"],
        )
        for peer, pushes in node.sync.pushes.items():
            left.add_metric([peer], float(pushes.left_to_pull))
        yield left


def per_target(node: Node, targets: list[str]) -> list[Metric]:
    """The families with a sample per target, for these targets."""
    core = node.core
    state = GaugeMetricFamily(
        "ravens_target_state", "1 for the target's agreed state", labels=["target", "state"]
    )
    up = GaugeMetricFamily("ravens_target_up", "1 unless agreed DOWN", labels=["target"])
    latency = GaugeMetricFamily(
        "ravens_check_latency_seconds", "Latency of the last check", labels=["target", "node"]
    )
    for target in targets:
        agreed = core.record(target).state
        for candidate in AgreedState:
            state.add_metric([target, candidate.value], float(candidate is agreed))
        up.add_metric([target], float(agreed is not AgreedState.DOWN))
        for name in core.nodes:
            seen = live_view(node, name, target)["latency_ms"]
            if seen is not None:
                latency.add_metric([target, name], seen / 1000)
    return [state, up, latency]


def exposition(*families: Metric) -> bytes:
    """prometheus_client's text for these families (HELP and TYPE included)."""

    class Given(Collector):
        def collect(self) -> Iterator[Metric]:
            return iter(families)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Given())
    return generate_latest(registry)


async def metrics_text(
    node: Node,
    outbox_depth: int,
    by_reason: Sequence[tuple[str, str, int]] = (),
    hooks: Mapping[str, Any] | None = None,
) -> bytes:
    """The exposition (its content type is CONTENT_TYPE_LATEST), made a slice
    of targets at a time with a turn for the loop between slices: a thousand
    targets are some 8,000 samples, too long to hold checks and /healthz.
    The same bytes as NodeCollector's in one go."""
    targets = sorted(node.targets)
    slices: list[list[bytes]] = [[], [], []]
    for first in range(0, max(len(targets), 1), TARGETS_PER_TURN):
        families = per_target(node, targets[first : first + TARGETS_PER_TURN])
        for kept, family in zip(slices, families, strict=True):
            text = exposition(family)
            # A family's HELP and TYPE lines once, before its first slice.
            kept.append(text if not kept else text.split(b"\n", 2)[2])
        await asyncio.sleep(0)
    rest = exposition(*NodeCollector(node, outbox_depth, by_reason, hooks).per_node())
    return b"".join(b"".join(kept) for kept in slices) + rest
