"""A simulated webhook receiver and each node's webhook courier.

The receiver sits where ntfy does: a node that cannot reach ntfy (cut off,
isolated, an ntfy outage window) cannot reach it either, and it answers 429
when ntfy would. Its courier keeps its rows as the node's outbox does: a
delivery whose answer a crash lost is made again after the restart (a
second copy, which the receiver drops by its webhook-id), and each answer
is told to the core (``hook_observed``, ``hook_delivered``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from consensus.events import Event
from consensus.simulation.world import Post

if TYPE_CHECKING:
    from consensus.simulation.runner import SimNode, Simulation

# The one webhook every simulated node has, wanting every notice.
SIM_HOOK = "sim"
HOOKS: dict[str, frozenset[str] | None] = {SIM_HOOK: None}
ANSWER_MS = 80
TIMEOUT_MS = 10_000
PROBE_EVERY_MS = 10_000


@dataclass(slots=True)
class HookRow:
    hook: str
    event: Event
    status: str = "queued"  # queued, inflight, sent, dropped


@dataclass
class HookOutbox:
    """A node's webhook rows, kept over its crashes as its database keeps them."""

    rows: dict[tuple[str, str], HookRow] = field(default_factory=dict)
    sending: bool = False
    retry_at_ms: int = 0
    failures: int = 0

    def crashed(self) -> None:
        self.sending = False
        for row in self.rows.values():
            if row.status == "inflight":
                row.status = "queued"


class HookCourier:
    def __init__(self, sim: Simulation) -> None:
        self.sim = sim

    def publish(self, node: SimNode, hook: str, event: Event) -> None:
        row = node.hooks.rows.get((hook, event.id))
        if row is None:
            node.hooks.rows[(hook, event.id)] = HookRow(hook, event)
        elif row.status == "dropped":
            row.status = "queued"
        self.pump(node, node.epoch)

    def pump(self, node: SimNode, epoch: int) -> None:
        sim = self.sim
        core = sim._live(node, epoch)
        if core is None or node.hooks.sending:
            return
        for row in node.hooks.rows.values():
            if row.status != "queued":
                continue
            if not core.should_deliver(row.hook, row.event.id):
                row.status = "dropped"
                continue
            if sim.now_ms < node.hooks.retry_at_ms:
                sim.at(node.hooks.retry_at_ms, lambda: self.pump(node, epoch))
                return
            self._attempt(node, epoch, row)
            return

    def _attempt(self, node: SimNode, epoch: int, row: HookRow) -> None:
        sim = self.sim
        row.status = "inflight"
        node.hooks.sending = True
        trouble = sim.world.ntfy(node.name, sim.now_ms)
        if trouble is not None:
            no_answer = trouble.retry_after_s is None
            wait_ms = TIMEOUT_MS if no_answer else ANSWER_MS
            retry = None if no_answer else (trouble.retry_after_s or 1) * 1000
            sim.at(sim.now_ms + wait_ms, lambda: self._failed(node, epoch, row, retry))
            return

        def accepted() -> None:
            sim.record.hook_posts.append(Post(sim.now_ms, node.name, row.event))

        def answered() -> None:
            core = sim._live(node, epoch)
            if core is None:
                return
            node.hooks.sending = False
            node.hooks.failures = 0
            row.status = "sent"
            sim._apply(node, core.hook_observed(row.hook, True, sim.wall(node)))
            sim._apply(node, core.hook_delivered(row.hook, row.event.id, sim.wall(node)))
            self.pump(node, epoch)

        sim.at(sim.now_ms + ANSWER_MS // 2, accepted)
        sim.at(sim.now_ms + ANSWER_MS, answered)

    def _failed(self, node: SimNode, epoch: int, row: HookRow, retry_ms: int | None) -> None:
        sim = self.sim
        core = sim._live(node, epoch)
        if core is None:
            return
        if retry_ms is None:
            sim._apply(node, core.hook_observed(row.hook, False, sim.wall(node)))
            self._probe_later(node, epoch, row.hook)
        hooks = node.hooks
        hooks.sending = False
        row.status = "queued"
        hooks.failures += 1
        backoff = min(60_000, 1_000 * 2 ** min(hooks.failures, 6)) + sim.rng.randrange(0, 1_000)
        hooks.retry_at_ms = sim.now_ms + (retry_ms or backoff)
        self.pump(node, epoch)

    def _probe_later(self, node: SimNode, epoch: int, hook: str) -> None:
        """While the receiver does not answer, a cheap request tells the
        node when it is back, whether or not anything of its own is due."""
        sim = self.sim

        def probe() -> None:
            core = sim._live(node, epoch)
            if core is None or hook not in core.hooks_failing:
                return
            if sim.world.ntfy(node.name, sim.now_ms) is None:
                sim._apply(node, core.hook_observed(hook, True, sim.wall(node)))
                self.pump(node, epoch)
            else:
                sim.at(sim.now_ms + PROBE_EVERY_MS, probe)

        sim.at(sim.now_ms + PROBE_EVERY_MS, probe)
