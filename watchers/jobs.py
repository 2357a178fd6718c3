"""What the node runs on its schedule: a check of each target at its
slot, the canaries, maintenance windows and silences, the retry of writes
the database refused, and retention."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from consensus.slots import check_slot
from watchers.admin_shapes import api_windows
from watchers.live import LiveCheck, phases_of
from watchers.maintenance import MaintenanceWindow, in_maintenance
from watchers.probes import AnyTarget, ProbeContext, run_check
from watchers.probes.tcp import TcpTarget, probe_tcp
from watchers.storage import CheckRow

if TYPE_CHECKING:
    from watchers.runtime import Node

log = logging.getLogger("ravens")

CANARY_INTERVAL_S = 15.0
CANARY_TIMEOUT_S = 3.0
PRUNE_EVERY_S = 3600.0
# Domains' thresholds are judged every ten minutes; each is looked up once a day.
DOMAINS_EVERY_S = 600.0
MAINTENANCE_EVERY_S = 15.0
STORAGE_RETRY_S = 5.0
# How often the outbox is counted for the peer (with the heartbeat after).
OUTBOX_COUNT_EVERY_S = 5
# A target checked less often than this is still looked at once within this
# long of a start (spread, so ten thousand do not start in the same second).
FIRST_CHECK_SPREAD_S = 60.0


class Jobs:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.limit = asyncio.Semaphore(node.config.defaults.max_concurrent_checks)
        # One check per target at a time.
        self.busy: dict[str, asyncio.Lock] = {t: asyncio.Lock() for t in node.targets}
        # When this node began watching each target (added, or the node started).
        self.watched_since: dict[str, int] = {}
        clock = node.clock
        self.probe_ctx = ProbeContext(
            node.http,
            last_push_ms=node.core.last_heartbeat_ms,
            now_ms=clock.now_ms,
            watched_since_ms=lambda target: self.watched_since.get(target, clock.now_ms()),
        )

    async def start(self) -> None:
        """Check the canaries, then schedule checks, canaries, sync and the rest."""
        node = self.node
        await self.canaries()
        now = node.clock.now_ms() / 1000
        for target in node.targets.values():
            self.watch(target)
        node.core.set_report_topics(node.outbox.report_topics())
        node.schedule.every("canaries", self.canaries, CANARY_INTERVAL_S)
        node.schedule.every("sync", node.sync.sync_all, node.config.sync.interval_s, now)
        await self.maintenance()
        node.schedule.every("maintenance", self.maintenance, MAINTENANCE_EVERY_S)
        node.schedule.every("storage", self.write_kept, STORAGE_RETRY_S)
        node.schedule.every("outbox", self.count_outbox, OUTBOX_COUNT_EVERY_S)
        node.schedule.every("prune", self.prune, PRUNE_EVERY_S, now + 60)
        await node.domains.load()
        node.schedule.every("domains", node.domains.run, DOMAINS_EVERY_S, now + 5)
        node.schedule.start(self.due)

    def forget(self, target_id: str) -> None:
        self.node.schedule.remove(target_id)
        self.busy.pop(target_id, None)
        self.watched_since.pop(target_id, None)

    def watch(self, target: AnyTarget) -> None:
        """Check target at its slot of each interval (this node's turn)."""
        node = self.node
        now_ms = node.clock.now_ms()
        self.watched_since.setdefault(target.id, now_ms)
        interval = target.interval_s or node.config.defaults.interval_s
        node.core.check_every(target.id, round(interval * 1000))
        node.core.set_parent(target.id, target.parent)
        node.core.set_tags(target.id, target.tags)
        now = now_ms / 1000
        turn = node.core.nodes.index(node.name), len(node.core.nodes)
        first = now + (check_slot(target.id, interval, *turn) - now) % interval
        node.schedule.every(target.id, self.job(target.id), interval, first)
        if first - now > FIRST_CHECK_SPREAD_S:  # a long interval: look once soon anyway
            soon = now + random.uniform(0, FIRST_CHECK_SPREAD_S)
            node.schedule.once(f"first:{target.id}", self.job(target.id), soon)

    def job(self, target_id: str) -> Callable[[], Awaitable[None]]:
        async def check() -> None:
            try:
                await self.check(target_id)
            except asyncio.CancelledError:
                # The node is stopping with this check in flight: nothing
                # was recorded of it, and nothing is wrong.
                log.info("check node=%s target=%s stopped with the node", self.node.name, target_id)

        return check

    def due(self, job_id: str, at_ms: float) -> None:
        job = job_id.removeprefix("recheck:").removeprefix("first:")
        if job in self.node.targets:
            self.node.lateness.due(job, at_ms)

    async def check(self, target_id: str) -> None:
        node = self.node
        target = node.targets.get(target_id)
        if target is None:
            return
        lock = self.busy[target_id]
        if lock.locked():
            return  # one check per target at a time
        async with lock, self.limit:
            node.lateness.started(target_id, node.clock.now_ms())
            timeout = target.timeout_s or node.config.defaults.timeout_s
            reach = node.reach if node.source_of(target_id) == "api" else None
            result = await run_check(target, self.probe_ctx, timeout, reach)
        node.look_at_clock()
        if target_id not in node.targets:
            # Removed while its check was in flight (a reload, the admin API
            # on either node): its result says nothing any more.
            log.info(
                "check node=%s target=%s removed meanwhile: result dropped", node.name, target_id
            )
            return
        at, core = node.clock.now_ms(), node.core
        # The server's clock: how far ours is off, not part of the check's record.
        server_ms = result.details.pop("server_date_ms", None)
        details = result.details or None
        row = CheckRow(target_id, at, result.ok, result.latency_ms, result.reason, details)
        phases = phases_of(details)
        latest = LiveCheck(at, result.ok, result.latency_ms, result.reason[:200], phases)
        node.live.record(node.name, target_id, latest)
        if isinstance(server_ms, int):
            core.server_time_observed(target_id, server_ms, at)
        step = core.check_observed(target_id, result.ok, result.reason, result.latency_ms, at)
        not_after = result.details.get("cert_not_after_ms")
        if isinstance(not_after, int):
            step.extend(core.certificate_observed(target_id, not_after, at))
        await node.apply(step, checks=[row])

    async def canaries(self) -> None:
        node = self.node
        canaries = node.config.canaries
        probes = [TcpTarget(kind="tcp", id="canary", host=c.host, port=c.port) for c in canaries]
        results = await asyncio.gather(*(probe_tcp(p, CANARY_TIMEOUT_S) for p in probes))
        ok = any(r.ok for r in results)
        if ok != node.core.canaries_ok:
            passed = sum(r.ok for r in results)
            log.info("canaries node=%s ok=%s passed=%d/%d", node.name, ok, passed, len(results))
        await node.apply(node.core.canaries_observed(ok, node.clock.now_ms()))

    async def maintenance(self) -> None:
        """Enter and leave configured maintenance windows and silences."""
        node, core = self.node, self.node.core
        silences = (*node.config.silences, *api_windows(core, silences=True))
        for target_id, on in self._crossed("silence", silences, core.silenced):
            core.set_silenced(target_id, on)
        windows = (*node.config.maintenance, *api_windows(core, silences=False))
        for target_id, on in self._crossed("maintenance", windows, core.maintenance):
            await node.apply(core.set_maintenance(target_id, on, node.clock.now_ms()))

    def _crossed(
        self, kind: str, windows: Sequence[MaintenanceWindow], inside_now: set[str]
    ) -> list[tuple[str, bool]]:
        """The targets whose side of the windows changed, and whether each is
        inside now (each said in the log)."""
        node = self.node
        now = datetime.fromtimestamp(node.clock.now_ms() / 1000, UTC)
        inside = in_maintenance(windows, node.targets.values(), now)
        crossed = [(t, t in inside) for t in sorted(inside ^ (inside_now & set(node.targets)))]
        for target_id, on in crossed:
            log.info(
                "%s node=%s target=%s %s", kind, node.name, target_id, "begins" if on else "ends"
            )
        return crossed

    async def count_outbox(self) -> None:
        """Tell the core what waits for ntfy and what it refused: the next
        heartbeat carries it to the peer, which shows it too."""
        store = self.node.store
        waiting, refused = await store.outbox_depth(), len(await store.outbox_refused())
        self.node.core.outbox_observed(waiting, refused)

    async def write_kept(self) -> None:
        """While the database refuses writes, try again now and then, so
        space coming back is noticed even when nothing new happens."""
        node = self.node
        if not node.writes.ok:
            node.core.storage_observed(await node.writes.flush(node.clock.now_ms()))

    async def prune(self) -> None:
        node, store, core = self.node, self.node.store, self.node.core
        storage, now = node.config.storage, node.clock.now_ms()
        # Each hour's latency percentiles are kept before its raw checks go.
        raw_since = now - _days_ms(storage.raw_retention_days)
        await store.seal_hours(raw_since, now)
        removed = await store.prune_checks(raw_since)
        hours = await store.prune_rollups("hour", now - _days_ms(storage.hourly_retention_days))
        moves = core.forget_history_before(now - _days_ms(storage.history_retention_days))
        if moves:
            await store.forget(moves)
            await store.rebuild_history({t: core.history(t) for t in core.history_targets()})
        if removed or hours or moves:
            log.info(
                "retention node=%s removed_checks=%d removed_hourly_rollups=%d removed_moves=%d",
                node.name,
                removed,
                hours,
                len(moves),
            )

    def recheck(self, target_id: str, delay_ms: int) -> None:
        if target_id in self.node.targets:
            at_s = (self.node.clock.now_ms() + delay_ms) / 1000
            self.node.schedule.once(f"recheck:{target_id}", self.job(target_id), at_s)


def _days_ms(days: float) -> int:
    return int(days * 86_400_000)
