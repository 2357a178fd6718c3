"""One watcher node at run time: the I/O shell around the pure core.

It feeds the core check results, canary results, peers' entries and the
time; it commits each resulting step in one transaction, then carries out
its commands (push to peers, re-check, queue a notification, warn).

Everything it touches outside itself is handed in: the clock, the
schedule, and the HTTP clients for peers and ntfy. ``Node.open`` builds the
production ones; a test builds a pair in one process on a fake clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import httpx

from consensus.commands import (
    AgreedMoved,
    CheckCanaries,
    HistoryMoved,
    Publish,
    Push,
    Recheck,
    Step,
    TargetsChanged,
    Warn,
    WindowsChanged,
)
from consensus.node import NodeCore, admin_targets
from notify.action_tokens import derive_key
from notify.courier import Courier
from watchers.admin_shapes import api_targets
from watchers.clockwatch import Clock, SystemClock
from watchers.config import Config, NtfyLogin
from watchers.domain_watch import DomainWatch
from watchers.hook_host import Webhooks
from watchers.jobs import Jobs
from watchers.lateness import Lateness
from watchers.live import LiveCheck, LiveChecks, phases_of
from watchers.outbox_host import OutboxHost
from watchers.peersync import PeerSync, sync_client
from watchers.probes import AnyTarget, HttpClients, Reach
from watchers.ratelimit import PushLimits
from watchers.schedule import ApsSchedule, Schedule
from watchers.secrets import ApiTokens
from watchers.shed import Shedding
from watchers.storage import DB_NAME, CheckRow, Interval, Store
from watchers.stream import Hub
from watchers.writes import Batch, Writes

log = logging.getLogger("ravens")

MAX_TICK_SLEEP_S = 1.0
# How often the wall clock is compared with the monotonic clock.
CLOCK_WATCH_S = 1.0


@dataclass
class Seams:
    """What a node uses outside itself; None: the production default."""

    clock: Clock | None = None
    schedule: Schedule | None = None
    sync_client: httpx.AsyncClient | None = None
    ntfy_client: httpx.AsyncClient | None = None
    hook_client: httpx.AsyncClient | None = None
    http: HttpClients | None = None


class Node:
    def __init__(
        self,
        config: Config,
        secret: str,
        store: Store,
        core: NodeCore,
        push_tokens: dict[str, str] | None = None,
        ntfy_login: NtfyLogin = (None, None),
        api: ApiTokens | None = None,
        seams: Seams | None = None,
    ) -> None:
        seams = seams or Seams()
        self.config = config
        self._config_ids = frozenset(t.id for t in config.targets)
        self.api = api or ApiTokens(None, {})
        self.name = config.node.name
        self.secret = secret
        # Signs and checks the buttons' tokens: derived apart from the sync
        # signatures, so neither proves anything to the other.
        self.action_key = derive_key(secret)
        self.store = store
        self.core = core
        self.clock: Clock = seams.clock or SystemClock()
        self.schedule: Schedule = seams.schedule or ApsSchedule(self.name)
        self.writes = Writes(store, self.name)
        self.lateness = Lateness()
        self.live = LiveChecks(self.name)
        self.targets: dict[str, AnyTarget] = {
            **api_targets(core.admin_targets()),
            **{t.id: t for t in config.targets},
        }
        self.http = seams.http or HttpClients(node=self.name)
        self.push_limits = PushLimits()
        self.shedding = Shedding()
        self.reach = Reach(
            public_only=not config.admin.allow_private_targets, own_names=config.own_names()
        )
        # The last step of the wall clock seen: when (after it) and how far.
        self.last_clock_step: tuple[int, float] | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self._ticker_task: asyncio.Task[None] | None = None
        self.wake = asyncio.Event()
        # One trust store for every client that verifies (the checks, the
        # peers, ntfy, webhooks): each load of it costs 35 ms at start.
        trust = self.http.verifying
        self.sync = PeerSync(self, seams.sync_client or sync_client(config, trust))
        self.push_tokens = push_tokens or {}
        # ntfy's logs (and a test) can tell which node posted.
        agent = {"User-Agent": f"ravens/{self.name} (uptime watcher)"}
        self.ntfy_client = seams.ntfy_client or httpx.AsyncClient(headers=agent, verify=trust)
        self.outbox = OutboxHost(self)
        self.courier: Courier | None = None
        if config.ntfy is not None:
            self.courier = self._courier(ntfy_login)
        self.jobs = Jobs(self)
        self.domains = DomainWatch(self)
        self.stream = Hub()
        hooks = seams.hook_client or httpx.AsyncClient(headers=agent, verify=trust)
        self.webhooks = Webhooks(self, hooks)
        # Nothing to write: deliveries still owed resume after a settle.
        self.webhooks.configure(config.webhooks)

    @classmethod
    async def open(
        cls,
        config: Config,
        secret: str,
        push_tokens: dict[str, str],
        ntfy_login: NtfyLogin = (None, None),
        api: ApiTokens | None = None,
        seams: Seams | None = None,
    ) -> Node:
        seams = seams or Seams()
        clock = seams.clock or SystemClock()
        seams = dataclasses.replace(seams, clock=clock)
        store = await Store.open(config.node.data_dir / DB_NAME)
        entries, hlc = await store.load(config.node.name)
        core = NodeCore(
            config.node.name,
            [p.name for p in config.peers],
            {*api_targets(admin_targets(entries)), *(t.id for t in config.targets)},
            config.core_settings(),
            clock.now_ms(),
            log=entries,
            clock_last=hlc,
        )
        node = cls(config, secret, store, core, push_tokens, ntfy_login, api, seams)
        legacy = await store.legacy_intervals()
        if legacy:
            # Upgraded from a version that kept history per node: it becomes
            # moves in the log, so it is kept, served and replicated.
            await node.apply(core.import_history(legacy))
            await store.drop_legacy_intervals()
            log.info(
                "history node=%s imported=%d stretches kept before this version",
                node.name,
                len(legacy),
            )
        if not await store.history_cache_current():
            await store.rebuild_history({t: core.history(t) for t in core.history_targets()})
        for target, row in (await store.latest_checks()).items():
            latest = LiveCheck(
                row.at_ms, row.ok, row.latency_ms, row.reason, phases_of(row.details)
            )
            node.live.record(node.name, target, latest)
        return node

    def _courier(self, login: NtfyLogin) -> Courier:
        return Courier(self.outbox, self.outbox.routing(login), self.ntfy_client, clock=self.clock)

    # -- life ----------------------------------------------------------------

    async def start(self) -> None:
        """Schedule the jobs, then the ticks, the clock's watch and the courier."""
        await self.jobs.start()
        self._ticker_task = asyncio.ensure_future(self._ticker())
        self.spawn(self._watch_clock())
        if self.courier is not None:
            self.spawn(self.courier.run())
        self.webhooks.start()

    async def reload(
        self,
        config: Config,
        push_tokens: dict[str, str],
        ntfy_login: NtfyLogin = (None, None),
        api: ApiTokens | None = None,
    ) -> None:
        """Take a changed target list and [ntfy] section without a restart: new
        targets are scheduled, removed ones unscheduled, changed ones
        rescheduled; what ntfy refused is tried again with the new settings."""
        self.config = config
        self._config_ids = frozenset(t.id for t in config.targets)
        self.push_tokens = push_tokens
        self.api = api or self.api
        old = self.targets
        new = await self._apply_targets()
        if config.ntfy is not None:
            if self.courier is None:
                self.courier = self._courier(ntfy_login)
                self.spawn(self.courier.run())
            self.courier.routing = self.outbox.routing(ntfy_login)
        await self.apply(self.webhooks.configure(config.webhooks))
        now = self.clock.now_ms()
        requeued = await self.store.requeue_refused(now)
        if requeued and self.courier is not None:
            log.info("reload node=%s requeued=%d refused notification(s)", self.name, requeued)
            self.courier.kick.set()
        if await self.store.hook_requeue_refused(now):
            for name in self.webhooks.couriers:
                self.webhooks.kick(name)
        added, removed = new.keys() - old.keys(), old.keys() - new.keys()
        changed = {t for t in new.keys() & old.keys() if new[t] != old[t]}
        log.info(
            "reload node=%s added=%s removed=%s changed=%s",
            self.name,
            ",".join(sorted(added)) or "-",
            ",".join(sorted(removed)) or "-",
            ",".join(sorted(changed)) or "-",
        )

    # Readers ask the node, not the store, for history: a step's history is
    # in memory before its commit ends (or while the database refuses
    # writes), and what is served must agree with the state served beside it.
    async def intervals(self, target_id: str) -> list[Interval]:
        pending = self.writes.pending_histories().get(target_id)
        return list(pending) if pending is not None else await self.store.intervals(target_id)

    async def intervals_since(self, start_ms: int) -> dict[str, list[Interval]]:
        found = await self.store.intervals_since(start_ms)
        for target_id, stretches in self.writes.pending_histories().items():
            kept = [s for s in stretches if s.end_ms is None or s.end_ms > start_ms]
            if kept:
                found[target_id] = kept
            else:
                found.pop(target_id, None)
        return found

    def revision(self) -> tuple[tuple[str, int], ...]:
        """Moves with every entry this node writes or merges in order: a
        cache keyed on it never serves an answer that a write made stale."""
        return tuple(sorted(self.core.log.vector.items()))

    def source_of(self, target_id: str) -> str:
        """Where a target was defined: the config file, or the admin API."""
        # A set, not a scan: the API asks this for every target it lists.
        return "config" if target_id in self._config_ids else "api"

    async def _apply_targets(self) -> dict[str, AnyTarget]:
        """Watch exactly the config's targets and the admin API's (the config
        wins on a shared id): schedule the new, unschedule the removed,
        reschedule the changed."""
        old = self.targets
        new = {**api_targets(self.core.admin_targets()), **{t.id: t for t in self.config.targets}}
        for target_id in old.keys() - new.keys():
            self.jobs.forget(target_id)
            self.core.remove_target(target_id)
            self.live.forget(target_id)
        self.targets = new
        for target_id, target in new.items():
            if old.get(target_id) == target:
                continue
            self.jobs.busy.setdefault(target_id, asyncio.Lock())
            if target_id not in old:
                await self.apply(self.core.add_target(target_id, self.clock.now_ms()))
            if self.schedule.running:
                self.jobs.watch(target)
        self.core.set_report_topics(self.outbox.report_topics())
        return new

    async def close(self) -> None:
        """Stop scheduling, let in-flight work go, close the database last."""
        self.schedule.shutdown()
        ticker = [self._ticker_task] if self._ticker_task is not None else []
        for task in [*ticker, *self.tasks]:
            task.cancel()
        await asyncio.gather(*ticker, *self.tasks, return_exceptions=True)
        await self.http.aclose()
        await self.sync.client.aclose()
        await self.ntfy_client.aclose()
        await self.webhooks.close()
        await self.store.close()

    def spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _ticker(self) -> None:
        while True:
            self.look_at_clock()
            await self.apply(self.core.tick(self.clock.now_ms()))
            delay = (self.core.next_tick_ms() - self.clock.now_ms()) / 1000
            self.wake.clear()
            await self.clock.wait(self.wake, max(0.05, min(delay, MAX_TICK_SLEEP_S)))

    async def _watch_clock(self) -> None:
        # Sleeps on the monotonic clock: this loop keeps its pace whatever
        # the wall clock does.
        while True:
            await self.clock.sleep(CLOCK_WATCH_S)
            self.look_at_clock()
            self.schedule.keep_pace()

    def look_at_clock(self) -> None:
        """Also asked before the core is handed the time, so it never sees
        a step before its timers moved with it."""
        step_s = self.clock.step_s()
        if step_s:
            self.clock_stepped(step_s)

    def clock_stepped(self, step_s: float) -> None:
        """The wall clock jumped: every job and timer set in the old time
        moves with it, so checks, canaries and sync keep their pace."""
        step_ms = int(step_s * 1000)
        self.last_clock_step = (self.clock.now_ms(), step_s)
        log.warning(
            "clock_step node=%s step_s=%+.1f: checks, canaries, sync and timers keep their pace",
            self.name,
            step_s,
        )
        self.schedule.stepped(step_s)
        self.core.time_stepped(step_ms)
        self.sync.stepped(step_ms)
        self.wake.set()

    # -- carrying out steps --------------------------------------------------

    async def apply(self, step: Step, checks: list[CheckRow] | None = None) -> None:
        """Commit the step with what it caused, then carry out its commands."""
        now = self.clock.now_ms()
        outbox, hook_outbox = await self.outbox.rows_for(step, now)
        histories = {
            c.target: self.core.history(c.target)
            for c in step.commands
            if isinstance(c, HistoryMoved)
        }
        if step.to_commit or checks or outbox or hook_outbox:
            batch = Batch(
                list(step.to_commit),
                dict(self.core.log.vector),
                self.core.clock.last,
                checks or [],
                outbox,
                histories,
                hook_outbox,
            )
            self.core.storage_observed(await self.writes.commit(batch, now))
            # Once written: what a client of the stream is told is kept.
            self.stream.publish(self.core.announced(step.to_commit))
        if any(isinstance(c, TargetsChanged) for c in step.commands):
            await self._apply_targets()
        for command in step.commands:
            self._carry_out(command)
        self.wake.set()

    def _carry_out(self, command: object) -> None:
        if isinstance(command, Push):
            for pushes in self.sync.pushes.values():
                pushes.add(command.entries, command.claims_by(self.name))
        elif isinstance(command, WindowsChanged):
            self.spawn(self.jobs.maintenance())
        elif isinstance(command, AgreedMoved):
            log.info(
                "agreed node=%s target=%s state=%s mode=%s event=%s",
                self.name,
                command.target,
                command.state,
                command.mode,
                command.event,
            )
        elif isinstance(command, Recheck):
            self.jobs.recheck(command.target, command.delay_ms)
        elif isinstance(command, CheckCanaries):
            self.spawn(self.jobs.canaries())
        elif isinstance(command, Publish):
            self.outbox.handed_over(command)
        elif isinstance(command, Warn):
            fields = " ".join(f"{k}={v}" for k, v in command.detail.items())
            log.warning("%s node=%s %s", command.what, self.name, fields)

    # -- push heartbeats -----------------------------------------------------

    def push_target(self, token: str) -> str | None:
        """The push target whose secret URL this is, or None (every known
        URL compared, in constant time)."""
        found = None
        for known, target in self.push_tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = target
        return found

    async def heartbeat(self, target: str) -> None:
        await self.apply(self.core.heartbeat_received(target, self.clock.now_ms()))
