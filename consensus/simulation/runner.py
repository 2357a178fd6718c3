"""A deterministic discrete-event simulator of the pair (or N nodes).

Real ``NodeCore`` copies run on virtual time. Between them a simulated network
(delay, loss, partitions); around them simulated targets, canaries, an ntfy
server with down windows and 429s, and crashes that keep only what a real
node keeps on disk: its log, its clock and its outbox. Same seed, same run.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from consensus import keys
from consensus.commands import CheckCanaries, Publish, Push, Recheck, Step, Warn
from consensus.events import Event
from consensus.history import Stretch
from consensus.hlc import ZERO, Hlc
from consensus.lww import Entry, LwwMap
from consensus.node import NodeCore
from consensus.settings import Settings
from consensus.simulation.hooks import HOOKS, HookCourier, HookOutbox
from consensus.simulation.scenario import Scenario
from consensus.simulation.world import Post, World
from consensus.slots import check_slot

MAX_TICK_GAP_MS = 10_000
MIN_TICK_GAP_MS = 1_000
SYNC_INTERVAL_MS = 10_000
CANARY_INTERVAL_MS = 15_000
CHECK_INTERVAL_MS = 60_000
POST_TIMEOUT_MS = 10_000
LOSS = 0.005
CONVERGENCE_LIMIT_MS = 15 * 60_000
# A lookup on ntfy that could not be answered is tried again this much later.
LOOKUP_RETRY_MS = 30_000
# While ntfy does not answer a node, it asks this often whether it is back.
PROBE_EVERY_MS = 10_000


@dataclass(slots=True)
class OutboxRow:
    event: Event
    status: str = "queued"  # queued, inflight, doubt, sent, dropped
    # A post that got no answer may have arrived: looked up before the next.
    unanswered: bool = False


@dataclass(slots=True)
class SimNode:
    name: str
    offset_ms: int
    core: NodeCore | None = None
    epoch: int = 0
    log: LwwMap | None = None
    clock_last: Hlc = ZERO
    outbox: dict[str, OutboxRow] = field(default_factory=dict)
    due: dict[str, int] = field(default_factory=dict)
    token: dict[str, int] = field(default_factory=dict)
    canary_inflight: bool = False
    sending: bool = False
    retry_at_ms: int = 0
    failures: int = 0
    tick_at: int = 1 << 62
    hooks: HookOutbox = field(default_factory=HookOutbox)

    @property
    def alive(self) -> bool:
        return self.core is not None


@dataclass
class Record:
    """What happened, for the report."""

    decided: dict[str, tuple[int, Event]] = field(default_factory=dict)
    # The node that decided each event (wrote it first).
    decided_by: dict[str, str] = field(default_factory=dict)
    posts: list[Post] = field(default_factory=list)
    # What the webhook receiver accepted, second copies included.
    hook_posts: list[Post] = field(default_factory=list)
    checks: int = 0
    warnings: dict[str, int] = field(default_factory=dict)
    convergence_ms: list[int] = field(default_factory=list)
    unconverged: int = 0
    sync_bytes: dict[str, int] = field(default_factory=dict)
    # Each live node's derived agreed history per target, at the end.
    histories: dict[str, dict[str, list[Stretch]]] = field(default_factory=dict)
    # Lookups on ntfy after a restart that ntfy did not answer.
    lookups_failed: int = 0
    # Posts not made because a lookup found them on ntfy already.
    lookups_found: int = 0


class Simulation:
    def __init__(self, scenario: Scenario, seed: int, settings: Settings | None = None) -> None:
        self.scenario = scenario
        self.settings = settings or Settings()
        self.rng = random.Random(seed ^ 0x5EED)
        self.world = World(scenario, random.Random(seed ^ 0xC0FFEE))
        self.now_ms = 0
        self._slots: dict[tuple[str, str], int] = {}
        self._queue: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = 0
        self.nodes = {name: SimNode(name, scenario.skew_ms.get(name, 0)) for name in scenario.nodes}
        self.record = Record()
        # ntfy's own cache: the sequence ids it accepted (what a lookup reads).
        self.ntfy_cache: set[str] = set()
        self.hook_courier = HookCourier(self)

    # -- the event loop ------------------------------------------------------

    def at(self, t_ms: int, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (t_ms, self._seq, action))

    def run(self) -> Record:
        for node in self.nodes.values():
            self.at(0, partial(self._start, node))
        for crash in self.scenario.crashes:
            self.at(crash.start_ms, partial(self._crash, self.nodes[crash.node]))
            self.at(crash.end_ms, partial(self._restart, self.nodes[crash.node]))
        for step in self.scenario.clock_steps:
            node = self.nodes[step.node]
            self.at(step.start_ms, partial(self._step_clock, node, step.step_ms))
            self.at(step.end_ms, partial(self._step_clock, node, -step.step_ms))
            if step.restart_after_ms is not None:
                self.at(step.start_ms + step.restart_after_ms, partial(self._crash, node))
                self.at(step.start_ms + step.restart_after_ms + 5_000, partial(self._restart, node))
        heals = [p.end_ms for p in self.scenario.partitions]
        heals += [i.end_ms for i in self.scenario.isolations if i.uplink]
        heals += [c.end_ms + 1 for c in self.scenario.crashes]
        for heal in heals:
            self.at(heal, partial(self._measure_convergence, heal))
        end = self.scenario.duration_ms
        while self._queue:
            t_ms, _, action = heapq.heappop(self._queue)
            if t_ms > end:
                break
            self.now_ms = t_ms
            action()
        for node in self.nodes.values():
            if node.core is not None:
                core = node.core
                self.record.histories[node.name] = {
                    t: core.history(t) for t in self.scenario.targets
                }
        return self.record

    def wall(self, node: SimNode) -> int:
        """The node's own clock: virtual time plus its skew."""
        return self.now_ms + node.offset_ms

    def _live(self, node: SimNode, epoch: int) -> NodeCore | None:
        return node.core if node.core is not None and node.epoch == epoch else None

    # -- node life -----------------------------------------------------------

    def _start(self, node: SimNode) -> None:
        node.core = NodeCore(
            node.name,
            self.scenario.nodes,
            self.scenario.targets,
            self.settings,
            self.wall(node),
            log=node.log,
            clock_last=node.clock_last,
        )
        node.log = node.core.log
        node.epoch += 1
        epoch = node.epoch
        node.due.clear()
        for family in self.scenario.families:
            if family.tag is not None:
                for member in family.members:
                    node.core.set_tags(member, (family.tag,))
                continue
            for child in family.children:
                node.core.set_parent(child, family.parent)
        self._apply(node, node.core.set_hooks(HOOKS, self.wall(node)))
        for target in self.scenario.targets:
            node.core.check_every(target, CHECK_INTERVAL_MS)
            self._schedule_check(node, target, self._next_slot(node, target, self.now_ms - 1))
        self._canary(node, epoch)
        self._sync(node, epoch)
        node.tick_at = 1 << 62
        self._arm_tick(node)
        self._every(node, epoch, SYNC_INTERVAL_MS, self._sync)
        self._every(node, epoch, CANARY_INTERVAL_MS, self._canary)
        self._verify_inflight(node)
        self._pump(node, epoch)
        self.hook_courier.pump(node, epoch)

    def _crash(self, node: SimNode) -> None:
        if node.core is None:
            return
        node.clock_last = node.core.clock.last
        node.core = None
        node.epoch += 1
        node.sending = False
        node.canary_inflight = False
        node.hooks.crashed()

    def _restart(self, node: SimNode) -> None:
        if node.core is None:
            self._start(node)

    def _step_clock(self, node: SimNode, step_ms: int) -> None:
        """The node's wall clock jumps. A running node sees it within a
        second (its watch against the monotonic clock) and moves its timers
        with it; its jobs keep their pace, as they run on virtual time here."""
        node.offset_ms += step_ms
        if node.core is not None:
            node.core.time_stepped(step_ms)
            self._arm_tick(node)

    def _every(
        self, node: SimNode, epoch: int, period_ms: int, fn: Callable[[SimNode, int], None]
    ) -> None:
        def again() -> None:
            if self._live(node, epoch) is None:
                return
            fn(node, epoch)
            self.at(self.now_ms + period_ms, again)

        self.at(self.now_ms + self.rng.randrange(1, period_ms), again)

    def _arm_tick(self, node: SimNode) -> None:
        """Tick when the core says it has work, as a real node's timer does."""
        if node.core is None:
            return
        at_ms = max(self.now_ms, node.core.next_tick_ms() - node.offset_ms)
        at_ms = min(at_ms, self.now_ms + MAX_TICK_GAP_MS)
        if at_ms >= node.tick_at:
            return
        node.tick_at = at_ms
        epoch = node.epoch

        def tick() -> None:
            core = self._live(node, epoch)
            if core is None or node.tick_at != at_ms:
                return
            node.tick_at = 1 << 62
            self._carry_out(node, core.tick(self.wall(node)))
            # Never busy-loop on a deadline the core keeps in the past.
            node.tick_at = self.now_ms + MIN_TICK_GAP_MS
            self.at(node.tick_at, lambda: self._rearm(node, epoch, node.tick_at))

        self.at(at_ms, tick)

    # -- checks and canaries -------------------------------------------------

    def _schedule_check(self, node: SimNode, target: str, at_ms: int) -> None:
        if at_ms >= node.due.get(target, 1 << 62):
            return
        node.due[target] = at_ms
        token = node.token.get(target, 0) + 1
        node.token[target] = token
        epoch = node.epoch
        self.at(at_ms, lambda: self._check(node, epoch, target, token))

    def _slot_ms(self, node: str, target: str) -> int:
        """Where in each interval node checks target (fixed: kept once made)."""
        key = (node, target)
        slot = self._slots.get(key)
        if slot is None:
            turn, count = self.scenario.nodes.index(node), len(self.scenario.nodes)
            slot = int(check_slot(target, CHECK_INTERVAL_MS / 1000, turn, count) * 1000)
            self._slots[key] = slot
        return slot

    def _next_slot(self, node: SimNode, target: str, after_ms: int) -> int:
        """The node's next regular check of target after after_ms, on its
        own slot of its own clock, as a running node schedules it (a re-check
        in between does not move the slots)."""
        slot_ms = self._slot_ms(node.name, target)
        wall = after_ms + node.offset_ms
        ahead = (slot_ms - wall) % CHECK_INTERVAL_MS or CHECK_INTERVAL_MS
        return after_ms + ahead

    def _check(self, node: SimNode, epoch: int, target: str, token: int) -> None:
        if self._live(node, epoch) is None or node.token.get(target) != token:
            return
        started = self.now_ms
        node.due[target] = 1 << 62
        self._schedule_check(node, target, self._next_slot(node, target, started))
        if self.world.stalled(node.name, started):
            return  # the job did not run
        ok, reason, latency = self.world.check(node.name, target, started)
        self.record.checks += 1

        def result() -> None:
            core = self._live(node, epoch)
            if core is not None:
                if reason.startswith("status"):
                    # The server answered: its Date header (whole seconds).
                    date_ms = self.now_ms // 1000 * 1000 + 500
                    core.server_time_observed(target, date_ms, self.wall(node))
                self._apply(node, core.check_observed(target, ok, reason, latency, self.wall(node)))

        self.at(started + latency, result)

    def _canary(self, node: SimNode, epoch: int) -> None:
        if node.canary_inflight or self.world.stalled(node.name, self.now_ms):
            return
        node.canary_inflight = True
        ok, latency = self.world.canaries(node.name, self.now_ms)

        def result() -> None:
            core = self._live(node, epoch)
            node.canary_inflight = False
            if core is not None:
                self._apply(node, core.canaries_observed(ok, self.wall(node)))

        self.at(self.now_ms + latency, result)

    # -- the network between nodes ------------------------------------------

    def _send(self, src: SimNode, dst: SimNode, size: int, deliver: Callable[[], None]) -> None:
        if not self.world.link_up(src.name, dst.name, self.now_ms) or self.rng.random() < LOSS:
            return
        way = f"{src.name}->{dst.name}"
        self.record.sync_bytes[way] = self.record.sync_bytes.get(way, 0) + size
        epoch = dst.epoch

        def arrive() -> None:
            if self._live(dst, epoch) is None:
                return
            if self.world.link_up(src.name, dst.name, self.now_ms):
                deliver()

        self.at(self.now_ms + self.rng.randrange(30, 150), arrive)

    def _push(self, node: SimNode, push: Push) -> None:
        entries = push.entries
        if not entries:
            return
        claims = list(push.claims_by(node.name).values())
        for peer in self.nodes.values():
            if peer is node:
                continue
            deliver = partial(self._receive_push, node, peer, entries, claims)
            self._send(node, peer, _size(entries), deliver)

    def _receive_push(
        self, src: SimNode, dst: SimNode, entries: tuple[Entry, ...], claims: list[str]
    ) -> None:
        assert dst.core is not None
        self._apply(dst, dst.core.entries_received(src.name, entries, self.wall(dst)))
        if claims:
            epoch = src.epoch

            def ack() -> None:
                core = self._live(src, epoch)
                if core is not None:
                    for claim in claims:
                        self._apply(src, core.claim_acknowledged(claim, self.wall(src)))

            self._send(dst, src, 40, ack)

    def _sync(self, node: SimNode, epoch: int, cursor: tuple[str, int] | None = None) -> None:
        core = self._live(node, epoch)
        if core is None or self.world.stalled(node.name, self.now_ms):
            return
        for peer in self.nodes.values():
            if peer is not node:
                self._pull(node, peer, dict(core.log.vector), cursor)

    def _pull(
        self, node: SimNode, peer: SimNode, vector: dict[str, int], cursor: tuple[str, int] | None
    ) -> None:
        epoch = node.epoch

        def answer() -> None:
            assert peer.core is not None
            page = peer.core.delta_requested(node.name, vector, self.wall(peer), cursor)

            def take() -> None:
                core = self._live(node, epoch)
                if core is None:
                    return
                step = core.entries_received(
                    peer.name,
                    page.entries,
                    self.wall(node),
                    page.covered,
                    complete=page.next_cursor is None,
                )
                self._apply(node, step)
                if page.next_cursor is not None:
                    self._pull(node, peer, dict(core.log.vector), page.next_cursor)

            self._send(peer, node, _size(page.entries), take)

        self._send(node, peer, 20 * len(vector) + 40, answer)

    # -- the notifier and ntfy ----------------------------------------------

    def _publish(self, node: SimNode, event: Event) -> None:
        row = node.outbox.get(event.id)
        if row is None:
            node.outbox[event.id] = OutboxRow(event)
        elif row.status == "dropped":
            row.status = "queued"
        self._pump(node, node.epoch)

    def _pump(self, node: SimNode, epoch: int) -> None:
        core = self._live(node, epoch)
        if core is None or node.sending:
            return
        for row in node.outbox.values():
            if row.status != "queued":
                continue
            if not core.should_post(row.event.id):
                row.status = "dropped"
                continue
            if self.now_ms < node.retry_at_ms:
                self.at(node.retry_at_ms, lambda: self._pump(node, epoch))
                return
            self._attempt(node, epoch, row)
            return

    def _attempt(self, node: SimNode, epoch: int, row: OutboxRow) -> None:
        row.status = "inflight"
        node.sending = True
        trouble = self.world.ntfy(node.name, self.now_ms)
        core = self._live(node, epoch)
        looks_first = row.unanswered or (core is not None and core.took_over(row.event.id))
        if trouble is None and looks_first and row.event.id in self.ntfy_cache:
            # Looked up by sequence id: it is there already (the takeover,
            # or an earlier post whose answer was lost).
            self.record.lookups_found += 1
            self.at(self.now_ms + 80, lambda: self._found_on_ntfy(node, epoch, row))
            return

        def failed(retry_after_ms: int | None) -> None:
            core = self._live(node, epoch)
            if core is None:
                return
            if retry_after_ms is None:
                # No answer: the node's claims go to the standby (a 429 is
                # pacing, which the peer would meet too).
                row.unanswered = True
                self._apply(node, core.delivery_observed(False, self.wall(node)))
                self._probe_later(node, epoch)
            node.sending = False
            row.status = "queued"
            node.failures += 1
            backoff = min(60_000, 1_000 * 2 ** min(node.failures, 6))
            backoff += self.rng.randrange(0, 1_000)
            node.retry_at_ms = self.now_ms + (retry_after_ms or backoff)
            self._pump(node, epoch)

        if trouble is not None:
            if trouble.retry_after_s is None:
                self.at(self.now_ms + POST_TIMEOUT_MS, lambda: failed(None))
            else:
                wait = trouble.retry_after_s * 1000
                self.at(self.now_ms + 80, lambda: failed(wait))
            return

        def accepted() -> None:
            self.ntfy_cache.add(row.event.id)
            self.record.posts.append(Post(self.now_ms, node.name, row.event))

        def answered() -> None:
            core = self._live(node, epoch)
            if core is None:
                return
            node.sending = False
            node.failures = 0
            row.status = "sent"
            self._apply(node, core.delivery_observed(True, self.wall(node)))
            self._apply(node, core.publish_succeeded(row.event.id, self.wall(node)))
            self._pump(node, epoch)

        self.at(self.now_ms + 40, accepted)
        self.at(self.now_ms + 80, answered)

    def _found_on_ntfy(self, node: SimNode, epoch: int, row: OutboxRow) -> None:
        core = self._live(node, epoch)
        if core is None:
            return
        node.sending = False
        row.status = "sent"
        self._apply(node, core.delivery_observed(True, self.wall(node)))
        self._apply(node, core.publish_succeeded(row.event.id, self.wall(node)))
        self._pump(node, epoch)

    def _probe_later(self, node: SimNode, epoch: int) -> None:
        """While ntfy does not answer, a cheap poll tells the node when it
        is back, whether or not anything of its own is due."""

        def probe() -> None:
            core = self._live(node, epoch)
            if core is None or core.ntfy_ok is not False:
                return
            if self.world.ntfy(node.name, self.now_ms) is None:
                self._apply(node, core.delivery_observed(True, self.wall(node)))
                self._pump(node, epoch)
            else:
                self.at(self.now_ms + PROBE_EVERY_MS, probe)

        self.at(self.now_ms + PROBE_EVERY_MS, probe)

    def _verify_inflight(self, node: SimNode) -> None:
        """After a restart: a post that was in flight may have reached ntfy.
        Ask ntfy (a poll for the sequence id) instead of posting again; while
        ntfy cannot be asked the post stays in doubt and is asked again."""
        for row in node.outbox.values():
            if row.status == "inflight":
                row.status = "doubt"
        self._look_up(node, node.epoch)

    def _look_up(self, node: SimNode, epoch: int) -> None:
        core = self._live(node, epoch)
        if core is None:
            return
        doubtful = [row for row in node.outbox.values() if row.status == "doubt"]
        if not doubtful:
            return
        trouble = self.world.ntfy(node.name, self.now_ms)
        if trouble is not None:
            self.record.lookups_failed += 1
            if trouble.retry_after_s is None and core.ntfy_ok is not False:
                # No answer, as a post would get none: the core hears so, and
                # its claims go to the standby (as the shell's outbox tells
                # it when its lookup, then its post, get no answer).
                self._apply(node, core.delivery_observed(False, self.wall(node)))
                self._probe_later(node, epoch)
            self.at(self.now_ms + LOOKUP_RETRY_MS, lambda: self._look_up(node, epoch))
            return
        for row in doubtful:
            if row.event.id in self.ntfy_cache:
                row.status = "sent"
                self._apply(node, core.publish_succeeded(row.event.id, self.wall(node)))
            else:
                row.status = "queued"
        self._pump(node, epoch)

    # -- carrying out a step -------------------------------------------------

    def _apply(self, node: SimNode, step: Step) -> None:
        self._carry_out(node, step)
        if step.to_commit or step.commands:
            # Only a step that changed something can bring a deadline forward.
            self._arm_tick(node)

    def _rearm(self, node: SimNode, epoch: int, at_ms: int) -> None:
        if self._live(node, epoch) is not None and node.tick_at == at_ms:
            node.tick_at = 1 << 62
            self._arm_tick(node)

    def _carry_out(self, node: SimNode, step: Step) -> None:
        for entry in step.to_commit:
            if entry.key.startswith(keys.EVENT) and entry.origin == node.name:
                event = Event.from_value(entry.key[len(keys.EVENT) :], entry.value)
                self.record.decided.setdefault(event.id, (self.now_ms, event))
                self.record.decided_by.setdefault(event.id, node.name)
        for command in step.commands:
            if isinstance(command, Push):
                self._push(node, command)
            elif isinstance(command, Recheck):
                self._schedule_check(node, command.target, self.now_ms + command.delay_ms)
            elif isinstance(command, CheckCanaries):
                self._canary(node, node.epoch)
            elif isinstance(command, Publish) and command.hook is not None:
                self.hook_courier.publish(node, command.hook, command.event)
            elif isinstance(command, Publish):
                self._publish(node, command.event)
            elif isinstance(command, Warn):
                self.record.warnings[command.what] = self.record.warnings.get(command.what, 0) + 1

    # -- convergence ---------------------------------------------------------

    def _measure_convergence(self, heal_ms: int) -> None:
        """Time until every live node holds what any of them held at the heal."""
        alive = [n for n in self.nodes.values() if n.core is not None]
        if len(alive) < len(self.nodes) or self.world.partitioned(heal_ms):
            return
        if any(self.world.uplink_down(n.name, heal_ms) for n in alive):
            return
        union: dict[str, Entry] = {}
        for node in alive:
            assert node.core is not None
            for entry in node.core.log.entries():
                held = union.get(entry.key)
                if held is None or held.rank() < entry.rank():
                    union[entry.key] = entry

        def probe() -> None:
            if self.now_ms - heal_ms > CONVERGENCE_LIMIT_MS:
                self.record.unconverged += 1
                return
            if all(_dominates(n, union) for n in self.nodes.values()):
                self.record.convergence_ms.append(self.now_ms - heal_ms)
                return
            self.at(self.now_ms + 1_000, probe)

        probe()


def _dominates(node: SimNode, union: dict[str, Entry]) -> bool:
    if node.core is None:
        return True  # a node down since is not waited for
    log = node.core.log
    for key, entry in union.items():
        held = log.raw(key)
        if held is None or held.rank() < entry.rank():
            return False
    return True


def _size(entries: tuple[Entry, ...]) -> int:
    """A rough wire size: what the JSON of a page would weigh."""
    return 40 + sum(80 + len(e.key) + len(str(e.value)) for e in entries)
