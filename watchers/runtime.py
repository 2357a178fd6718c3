"""One watcher node at run time: the I/O shell around the pure core.

It feeds the core check results, canary results, peers' entries and the
time; it commits each resulting step in one transaction, then carries out
its commands (push to peers, re-check, queue a notification, warn).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from pydantic import TypeAdapter, ValidationError

from consensus import keys
from consensus.agreement import Notice
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
from consensus.errors import InvalidEntry
from consensus.events import Event
from consensus.lww import Entry, JsonValue
from consensus.node import NodeCore, admin_targets
from consensus.slots import check_slot
from notify.messages import DEFAULT_PRIORITY, Style, Subject
from notify.outbox import Routing, Sender
from notify.publisher import Server
from watchers import wire
from watchers.clockwatch import STEP_TOLERANCE_S, ClockWatch, now_ms
from watchers.config import ApiTokens, Config
from watchers.digits import plain_digits
from watchers.lateness import Lateness
from watchers.live import LiveCheck, LiveChecks, LiveError
from watchers.maintenance import MaintenanceWindow, in_maintenance
from watchers.probes import AnyTarget, HttpClients, ProbeContext, Reach, Target, run_check
from watchers.probes.reach import url_host
from watchers.probes.tcp import TcpTarget, probe_tcp
from watchers.pushes import PeerPushes
from watchers.ratelimit import PushLimits
from watchers.shed import Shedding
from watchers.storage import DB_NAME, CheckRow, Interval, OutboxRow, Store
from watchers.writes import Batch, Writes

log = logging.getLogger("ravens")
TARGET_ADAPTER: TypeAdapter[AnyTarget] = TypeAdapter(Target)

# A Bearer token, or Basic credentials, for ntfy.
NtfyLogin = tuple[str | None, tuple[str, str] | None]

CANARY_INTERVAL_S = 15.0
CANARY_TIMEOUT_S = 3.0
MAX_TICK_SLEEP_S = 1.0
# How often the wall clock is compared with the monotonic clock.
CLOCK_WATCH_S = 1.0
# A peer we cannot reach is tried at least this often: after a long
# partition, the heal is noticed within this long.
SYNC_BACKOFF_MAX_S = 10.0
PRUNE_EVERY_S = 3600.0
MAINTENANCE_EVERY_S = 15.0
STORAGE_RETRY_S = 5.0
# A target checked less often than this is still looked at once within this
# long of a start (spread, so ten thousand do not start in the same second).
FIRST_CHECK_SPREAD_S = 60.0


def routing_from(
    config: Config, login: NtfyLogin, subject_for: Callable[[Event], Subject]
) -> Routing:
    """Where and how the node posts, from the [ntfy] section."""
    assert config.ntfy is not None
    ntfy = config.ntfy
    priority = dict(DEFAULT_PRIORITY)
    priority.update({Notice(name.upper()): value for name, value in ntfy.priority.items()})
    return Routing(
        Server(str(ntfy.url), token=login[0], basic=login[1], timeout_s=ntfy.timeout_s),
        Style(topic=ntfy.topic, priority=priority),
        subject_for,
        summarize_after_ms=int(ntfy.summarize_after_s * 1000),
        now_ms=now_ms,
    )


def own_names(config: Config) -> tuple[str, ...]:
    """The names and addresses this node and its peers answer on."""
    names = [config.node.host]
    urls = [config.node.public_url, *(p.url for p in config.peers)]
    names += [url_host(str(u)) for u in urls if u is not None]
    return tuple(n for n in dict.fromkeys(names) if n)


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
    ) -> None:
        self.config = config
        self._config_ids = frozenset(t.id for t in config.targets)
        self.api = api or ApiTokens(None, {})
        self.name = config.node.name
        self.secret = secret
        self.store = store
        self.core = core
        self.writes = Writes(store, self.name)
        self.lateness = Lateness()
        self.live = LiveChecks(self.name)
        self.targets: dict[str, AnyTarget] = {
            **api_targets(core.admin_targets()),
            **{t.id: t for t in config.targets},
        }
        self.peers = {p.name: str(p.url).rstrip("/") for p in config.peers}
        self.http = HttpClients(node=self.name)
        self.push_limits = PushLimits()
        self.shedding = Shedding()
        self.reach = Reach(
            public_only=not config.admin.allow_private_targets,
            own_names=own_names(config),
        )
        trust: ssl.SSLContext | bool = True
        if config.sync.ca_file is not None:
            trust = ssl.create_default_context(cafile=str(config.sync.ca_file))
        self.sync_client = httpx.AsyncClient(timeout=10.0, verify=trust)
        self.scheduler = AsyncIOScheduler()
        self.clock_watch = ClockWatch()
        # The last step of the wall clock seen: when (after it) and how far.
        self.last_clock_step: tuple[int, float] | None = None
        self.limit = asyncio.Semaphore(config.defaults.max_concurrent_checks)
        self.busy: dict[str, asyncio.Lock] = {t: asyncio.Lock() for t in self.targets}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.wake = asyncio.Event()
        # When the last full pull from each peer ended, on the monotonic
        # clock: a lag no step of the wall clock can distort.
        self.last_sync_mono: dict[str, float] = {}
        self.failures: dict[str, int] = dict.fromkeys(self.peers, 0)
        self.retry_at_ms: dict[str, int] = dict.fromkeys(self.peers, 0)
        self.pulling: set[str] = set()
        self.pushes = {
            peer: PeerPushes(functools.partial(self._push, peer), self._spawn,
                             batch=config.sync.page_size)
            for peer in self.peers
        }  # fmt: skip
        # The peer's wall clock minus ours, from its signed timestamps (true
        # readings, unlike HLCs, which never go back).
        self.clock_offset_ms: dict[str, int] = {}
        # Nonces of the sync requests accepted lately: a replay is refused.
        self.nonces = wire.Nonces()
        self.push_tokens = push_tokens or {}
        # ntfy's logs (and a test) can tell which node posted.
        self.ntfy_client = httpx.AsyncClient(
            headers={"User-Agent": f"ravens/{self.name} (uptime watcher)"}
        )
        self.sender: Sender | None = None
        if config.ntfy is not None:
            routing = routing_from(config, ntfy_login, self._subject)
            self.sender = Sender(self, routing, self.ntfy_client)
        self.watched_since: dict[str, int] = {}
        self.probe_ctx = ProbeContext(
            self.http,
            last_push_ms=self.core.last_heartbeat_ms,
            now_ms=now_ms,
            watched_since_ms=lambda target: self.watched_since.get(target, now_ms()),
        )

    @classmethod
    async def open(
        cls,
        config: Config,
        secret: str,
        push_tokens: dict[str, str],
        ntfy_login: NtfyLogin = (None, None),
        api: ApiTokens | None = None,
    ) -> Node:
        store = await Store.open(config.node.data_dir / DB_NAME)
        entries, clock = await store.load(config.node.name)
        core = NodeCore(
            config.node.name,
            [p.name for p in config.peers],
            {*api_targets(admin_targets(entries)), *(t.id for t in config.targets)},
            config.core_settings(),
            now_ms(),
            log=entries,
            clock_last=clock,
        )
        node = cls(config, secret, store, core, push_tokens, ntfy_login, api)
        legacy = await store.legacy_intervals()
        if legacy:
            # Upgraded from a version that kept history per node: it becomes
            # moves in the log, so it is kept, served and replicated.
            await node.apply(core.import_history(legacy))
            await store.drop_legacy_intervals()
            log.info("history node=%s imported=%d stretches kept before this version",
                     node.name, len(legacy))  # fmt: skip
        if not await store.history_cache_current():
            await store.rebuild_history({t: core.history(t) for t in core.history_targets()})
        for target, row in (await store.latest_checks()).items():
            node.live.record(node.name, target, LiveCheck(row.at_ms, row.ok, row.latency_ms,
                                                          row.reason))  # fmt: skip
        return node

    # -- life ----------------------------------------------------------------

    def _schedule(self, target: AnyTarget) -> None:
        self.watched_since.setdefault(target.id, now_ms())
        interval = target.interval_s or self.config.defaults.interval_s
        self.core.check_every(target.id, round(interval * 1000))
        now = time.time()
        turn = self.core.nodes.index(self.name), len(self.core.nodes)
        first = now + (check_slot(target.id, interval, *turn) - now) % interval
        # No jitter: APScheduler adds it to every interval and so stretches them all.
        self.scheduler.add_job(
            self._check, "interval", seconds=interval, args=[target.id], id=target.id,
            next_run_time=_dt(first), max_instances=1, coalesce=True,
            misfire_grace_time=int(interval), replace_existing=True,
        )  # fmt: skip
        if first - now > FIRST_CHECK_SPREAD_S:  # a long interval: look once soon anyway
            soon = now + random.uniform(0, FIRST_CHECK_SPREAD_S)
            self.scheduler.add_job(self._check, "date", run_date=_dt(soon), args=[target.id],
                                   id=f"first:{target.id}", replace_existing=True)  # fmt: skip

    async def start(self) -> None:
        """Check the canaries, then schedule checks, canaries, sync and ticks."""
        await self._canaries()
        now = time.time()
        for target in self.targets.values():
            self._schedule(target)
        self.scheduler.add_job(self._canaries, "interval", seconds=CANARY_INTERVAL_S,
                               max_instances=1, coalesce=True)  # fmt: skip
        self.scheduler.add_job(self._sync_all, "interval", seconds=self.config.sync.interval_s,
                               next_run_time=_dt(now), max_instances=1, coalesce=True)  # fmt: skip
        await self._maintenance()
        self.scheduler.add_job(self._maintenance, "interval", seconds=MAINTENANCE_EVERY_S,
                               max_instances=1, coalesce=True)  # fmt: skip
        self.scheduler.add_job(self._write_kept, "interval", seconds=STORAGE_RETRY_S,
                               max_instances=1, coalesce=True)  # fmt: skip
        self.scheduler.add_job(self._prune, "interval", seconds=PRUNE_EVERY_S,
                               next_run_time=_dt(now + 60), max_instances=1)  # fmt: skip
        self.scheduler.add_listener(self._submitted, EVENT_JOB_SUBMITTED)
        self.scheduler.start()
        self._ticker_task = asyncio.create_task(self._ticker())
        self._spawn(self._watch_clock())
        if self.sender is not None:
            self._spawn(self.sender.run())

    def _submitted(self, event: JobSubmissionEvent) -> None:
        job = event.job_id.removeprefix("recheck:").removeprefix("first:")
        if job in self.targets and event.scheduled_run_times:
            self.lateness.due(job, event.scheduled_run_times[-1].timestamp() * 1000)

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
            routing = routing_from(config, ntfy_login, self._subject)
            if self.sender is None:
                self.sender = Sender(self, routing, self.ntfy_client)
                self._spawn(self.sender.run())
            self.sender.routing = routing
        requeued = await self.store.requeue_refused(now_ms())
        if requeued and self.sender is not None:
            log.info("reload node=%s requeued=%d refused notification(s)", self.name, requeued)
            self.sender.kick.set()
        added, removed = new.keys() - old.keys(), old.keys() - new.keys()
        changed = {t for t in new.keys() & old.keys() if new[t] != old[t]}
        log.info("reload node=%s added=%s removed=%s changed=%s", self.name,
                 ",".join(sorted(added)) or "-", ",".join(sorted(removed)) or "-",
                 ",".join(sorted(changed)) or "-")  # fmt: skip

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
            with contextlib.suppress(Exception):
                self.scheduler.remove_job(target_id)
            self.core.remove_target(target_id)
            self.busy.pop(target_id, None)
            self.live.forget(target_id)
            self.watched_since.pop(target_id, None)
        self.targets = new
        for target_id, target in new.items():
            if old.get(target_id) == target:
                continue
            self.busy.setdefault(target_id, asyncio.Lock())
            if target_id not in old:
                await self.apply(self.core.add_target(target_id, now_ms()))
            if self.scheduler.running:
                self._schedule(target)
        return new

    async def close(self) -> None:
        """Stop scheduling, let in-flight work go, close the database last."""
        self.scheduler.shutdown(wait=False)
        self._ticker_task.cancel()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(self._ticker_task, *self.tasks, return_exceptions=True)
        await self.http.aclose()
        await self.sync_client.aclose()
        await self.ntfy_client.aclose()
        await self.store.close()

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _ticker(self) -> None:
        while True:
            self._look_at_clock()
            await self.apply(self.core.tick(now_ms()))
            delay = (self.core.next_tick_ms() - now_ms()) / 1000
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), max(0.05, min(delay, MAX_TICK_SLEEP_S)))

    def sync_lag_ms(self, peer: str) -> int | None:
        """How long since the last full pull from peer ended; None before one."""
        last = self.last_sync_mono.get(peer)
        return None if last is None else int((time.monotonic() - last) * 1000)

    async def _watch_clock(self) -> None:
        # asyncio sleeps on the monotonic clock: this loop keeps its pace
        # whatever the wall clock does.
        while True:
            await asyncio.sleep(CLOCK_WATCH_S)
            self._look_at_clock()
            self._rein_in_jobs()

    def _look_at_clock(self) -> None:
        """Also asked before the core is handed the time, so it never sees
        a step before its timers moved with it."""
        step_s = self.clock_watch.step_s()
        if step_s:
            self.clock_stepped(step_s)

    def _rein_in_jobs(self) -> None:
        """An interval job never waits longer than its period: one whose
        next run lies further out is brought back within one. APScheduler
        reads the wall clock itself, and one wrong reading the watch never
        saw once put every job ten minutes out."""
        now = datetime.now(UTC)
        for job in self.scheduler.get_jobs():
            period = getattr(job.trigger, "interval", None)
            if not isinstance(period, timedelta) or job.next_run_time is None:
                continue
            when = reined_in(job.next_run_time, period, now, random.random())
            if when is not None:
                log.warning("job node=%s job=%s next run was %.0f s out, past its period of "
                            "%.0f s: brought back", self.name, job.id,
                            (job.next_run_time - now).total_seconds(),
                            period.total_seconds())  # fmt: skip
                job.modify(next_run_time=when)

    def clock_stepped(self, step_s: float) -> None:
        """The wall clock jumped: every job and timer set in the old time
        moves with it, so checks, canaries and sync keep their pace."""
        step_ms = int(step_s * 1000)
        self.last_clock_step = (now_ms(), step_s)
        log.warning("clock_step node=%s step_s=%+.1f: checks, canaries, sync and timers keep "
                    "their pace", self.name, step_s)  # fmt: skip
        delta = timedelta(seconds=step_s)
        now = datetime.now(UTC)
        for job in self.scheduler.get_jobs():
            if job.next_run_time is not None:
                job.modify(next_run_time=_after_step(job, delta, now))
        self.scheduler.wakeup()
        self.core.time_stepped(step_ms)
        self.retry_at_ms = {peer: at + step_ms for peer, at in self.retry_at_ms.items()}
        # Our requests are stamped in each peer's time: it did not move.
        self.clock_offset_ms = {p: off - step_ms for p, off in self.clock_offset_ms.items()}
        self.wake.set()

    # -- checks --------------------------------------------------------------

    async def _check(self, target_id: str) -> None:
        target = self.targets.get(target_id)
        if target is None:
            return
        lock = self.busy[target_id]
        if lock.locked():
            return  # one check per target at a time
        async with lock, self.limit:
            self.lateness.started(target_id, time.time() * 1000)
            timeout = target.timeout_s or self.config.defaults.timeout_s
            reach = self.reach if self.source_of(target_id) == "api" else None
            result = await run_check(target, self.probe_ctx, timeout, reach)
        self._look_at_clock()
        at = now_ms()
        # The server's clock: how far ours is off, not part of the check's record.
        server_ms = result.details.pop("server_date_ms", None)
        row = CheckRow(target_id, at, result.ok, result.latency_ms, result.reason,
                       result.details or None)  # fmt: skip
        latest = LiveCheck(at, result.ok, result.latency_ms, result.reason[:200])
        self.live.record(self.name, target_id, latest)
        if isinstance(server_ms, int):
            self.core.server_time_observed(target_id, server_ms, at)
        step = self.core.check_observed(target_id, result.ok, result.reason, result.latency_ms, at)
        not_after = result.details.get("cert_not_after_ms")
        if isinstance(not_after, int):
            step.extend(self.core.certificate_observed(target_id, not_after, at))
        await self.apply(step, checks=[row])

    async def _canaries(self) -> None:
        canaries = self.config.canaries
        results = await asyncio.gather(
            *(probe_tcp(TcpTarget(kind="tcp", id="canary", host=c.host, port=c.port),
                        CANARY_TIMEOUT_S) for c in canaries)
        )  # fmt: skip
        ok = any(r.ok for r in results)
        if ok != self.core.canaries_ok:
            log.info("canaries node=%s ok=%s passed=%d/%d", self.name, ok,
                     sum(r.ok for r in results), len(results))  # fmt: skip
        await self.apply(self.core.canaries_observed(ok, now_ms()))

    async def _maintenance(self) -> None:
        """Enter and leave configured maintenance windows and silences."""
        now = datetime.now(UTC)
        silences = (*self.config.silences, *api_windows(self.core, silences=True))
        silenced = in_maintenance(silences, self.targets.values(), now)
        for target_id in sorted(silenced ^ (self.core.silenced & set(self.targets))):
            on = target_id in silenced
            log.info("silence node=%s target=%s %s", self.name, target_id,
                     "begins" if on else "ends")  # fmt: skip
            self.core.set_silenced(target_id, on)
        windows = (*self.config.maintenance, *api_windows(self.core, silences=False))
        inside = in_maintenance(windows, self.targets.values(), now)
        for target_id in sorted(inside ^ (self.core.maintenance & set(self.targets))):
            on = target_id in inside
            log.info("maintenance node=%s target=%s %s", self.name, target_id,
                     "begins" if on else "ends")  # fmt: skip
            await self.apply(self.core.set_maintenance(target_id, on, now_ms()))

    async def _write_kept(self) -> None:
        """While the database refuses writes, try again now and then, so
        space coming back is noticed even when nothing new happens."""
        if not self.writes.ok:
            self.core.storage_observed(await self.writes.flush(now_ms()))

    async def _prune(self) -> None:
        keep_ms = int(self.config.storage.raw_retention_days * 86_400_000)
        removed = await self.store.prune_checks(now_ms() - keep_ms)
        keep_hours_ms = int(self.config.storage.hourly_retention_days * 86_400_000)
        hours = await self.store.prune_rollups("hour", now_ms() - keep_hours_ms)
        keep_history_ms = int(self.config.storage.history_retention_days * 86_400_000)
        moves = self.core.forget_history_before(now_ms() - keep_history_ms)
        if moves:
            await self.store.forget(moves)
            await self.store.rebuild_history(
                {t: self.core.history(t) for t in self.core.history_targets()}
            )
        if removed or hours or moves:
            log.info("retention node=%s removed_checks=%d removed_hourly_rollups=%d "
                     "removed_moves=%d", self.name, removed, hours, len(moves))  # fmt: skip

    def _recheck(self, target_id: str, delay_ms: int) -> None:
        if target_id not in self.targets:
            return
        when = _dt(time.time() + delay_ms / 1000)
        self.scheduler.add_job(self._check, "date", run_date=when, args=[target_id],
                               id=f"recheck:{target_id}", replace_existing=True)  # fmt: skip

    # -- carrying out steps --------------------------------------------------

    async def apply(self, step: Step, checks: list[CheckRow] | None = None) -> None:
        """Commit the step with what it caused, then carry out its commands."""
        outbox = [
            (c.event.id, c.event.subject, c.event.notice.value,
             wire.json_text(c.event.to_value()), now_ms())
            for c in step.commands if isinstance(c, Publish)
        ]  # fmt: skip
        histories = {
            c.target: self.core.history(c.target)
            for c in step.commands
            if isinstance(c, HistoryMoved)
        }
        if step.written or checks or outbox:
            batch = Batch(list(step.written), dict(self.core.log.vector), self.core.clock.last,
                          checks or [], outbox, histories)  # fmt: skip
            self.core.storage_observed(await self.writes.commit(batch, now_ms()))
        if any(isinstance(c, TargetsChanged) for c in step.commands):
            await self._apply_targets()
        for command in step.commands:
            if isinstance(command, Push):
                for pushes in self.pushes.values():
                    pushes.add(command.entries, command.claims_by(self.name))
            elif isinstance(command, WindowsChanged):
                self._spawn(self._maintenance())
            elif isinstance(command, AgreedMoved):
                log.info("agreed node=%s target=%s state=%s mode=%s event=%s", self.name,
                         command.target, command.state, command.mode, command.event)  # fmt: skip
            elif isinstance(command, Recheck):
                self._recheck(command.target, command.delay_ms)
            elif isinstance(command, CheckCanaries):
                self._spawn(self._canaries())
            elif isinstance(command, Publish):
                if self.sender is not None:
                    self.sender.kick.set()
                log.info("event node=%s id=%s subject=%s notice=%s state=%s mode=%s queued",
                         self.name, command.event.id, command.event.subject,
                         command.event.notice.value, command.event.state,
                         command.event.mode.value)  # fmt: skip
            elif isinstance(command, Warn):
                fields = " ".join(f"{k}={v}" for k, v in command.detail.items())
                log.warning("%s node=%s %s", command.what, self.name, fields)
        self.wake.set()

    # -- sync ----------------------------------------------------------------

    async def _signed_post(self, peer: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = wire.json_bytes(payload)
        for attempt in (1, 2):
            # Stamped in the peer's time as we last saw it: the window is
            # seconds, the clocks may be minutes apart.
            stamp = now_ms() + self.clock_offset_ms.get(peer, 0)
            headers = wire.signed_headers(self.secret, self.name, stamp, "POST", path, body)
            response = await self.sync_client.post(self.peers[peer] + path, content=body,
                                                   headers=headers)  # fmt: skip
            if (
                response.status_code == 401
                and attempt == 1
                and self._time_corrected(peer, stamp, response.headers.get("x-ravens-time", ""))
            ):
                continue
            if response.status_code != 200:
                raise wire.WireError(response.status_code, response.text[:200])
            wire.verify(self.secret, [peer], response.headers, "ANSWER", path, response.content,
                        now_ms(), answers=headers["X-Ravens-Nonce"])  # fmt: skip
            await self.saw_clock(peer, response.headers.get("x-ravens-time", ""))
            return wire.parse_body(response.content)
        raise AssertionError("unreachable")

    def _note_refusal(self, peer: str, exc: Exception) -> None:
        """A peer that answers 401 'bad signature' is alive and does not
        share our secret: not a partition, and the note says so."""
        mismatch = (
            isinstance(exc, wire.WireError) and exc.status == 401 and ("bad signature" in str(exc))
        )
        if mismatch and peer not in self.core.refused_by:
            log.error("sync node=%s peer=%s refuses our signature: the [sync] secret_file "
                      "differs between the nodes; each decides alone until it matches",
                      self.name, peer)  # fmt: skip
            self.core.refused_by[peer] = "signature"
        elif not mismatch:
            self.core.refused_by.pop(peer, None)

    def _time_corrected(self, peer: str, stamp: int, told: str) -> bool:
        """A refusal carried the peer's time, far from how we stamped: take
        it as the peer's clock (unsigned: a wrong one only fails our next
        request, which the peer's next refusal corrects)."""
        if not plain_digits(told, 16) or abs(int(told) - stamp) <= wire.WINDOW_MS // 2:
            return False
        self.clock_offset_ms[peer] = int(told) - now_ms()
        return True

    async def _push(self, peer: str, entries: tuple[Entry, ...], claims: list[str]) -> bool:
        payload = {"entries": [wire.entry_to_json(e) for e in entries]}
        try:
            await self._signed_post(peer, "/sync/push", payload)
        except (httpx.HTTPError, wire.WireError) as exc:
            log.debug("push node=%s peer=%s failed: %s", self.name, peer, exc)
            return False
        for event_id in claims:
            await self.apply(self.core.claim_acknowledged(event_id, now_ms()))
        return True

    async def _sync_all(self) -> None:
        # Each pull runs on its own: one hanging on a cut path (until its
        # timeout) must not hold up the schedule or the other peers.
        for peer in self.peers:
            self._spawn(self._pull(peer))  # _pull skips a peer already being pulled

    async def _pull(self, peer: str) -> None:
        if now_ms() < self.retry_at_ms[peer] or peer in self.pulling:
            return  # backing off an unreachable peer, or already pulling
        self.pulling.add(peer)
        try:
            await self._pull_pages(peer)
        finally:
            self.pulling.discard(peer)

    async def _pull_pages(self, peer: str) -> None:
        cursor: tuple[str, int] | None = None
        try:
            while True:
                payload = {"vector": dict(self.core.log.vector),
                           "cursor": list(cursor) if cursor else None,
                           "limit": self.config.sync.page_size,
                           "live_after_ms": self.live.newest_ms(peer)}  # fmt: skip
                data = await self._signed_post(peer, "/sync/pull", payload)
                if "live" in data:
                    try:
                        self.live.take(peer, data["live"], self.targets)
                    except LiveError as exc:
                        raise wire.WireError(422, str(exc)) from exc
                entries = wire.entries_from(data)
                covered = wire.vector_from({"vector": data.get("covered", {})})
                cursor = wire.cursor_from({"cursor": data.get("next_cursor")})
                step = self.core.entries_received(peer, entries, now_ms(), covered, cursor is None)
                await self.apply(step)
                if cursor is None:
                    self.last_sync_mono[peer] = time.monotonic()
                    self.core.refused_by.pop(peer, None)
                    if self.failures[peer]:
                        log.info("sync node=%s peer=%s reachable again", self.name, peer)
                    self.failures[peer] = 0
                    return
        except (httpx.HTTPError, wire.WireError, InvalidEntry) as exc:
            self._note_refusal(peer, exc)
            self.failures[peer] += 1
            backoff_s = min(SYNC_BACKOFF_MAX_S, 2 ** min(self.failures[peer], 6))
            self.retry_at_ms[peer] = now_ms() + int(backoff_s * 1000)
            if self.failures[peer] == 1 or isinstance(exc, wire.WireError):
                log.warning("sync node=%s peer=%s failed: %s; retrying with backoff",
                            self.name, peer, str(exc)[:200])  # fmt: skip

    # -- the outbox, as the sender sees it -----------------------------------

    async def outbox_rows(self, statuses: tuple[str, ...]) -> Sequence[OutboxRow]:
        return await self.store.outbox_rows(statuses)

    async def mark(self, event_id: str, status: str, error: str | None = None,
                   message_id: str | None = None, attempt: bool = False,
                   sequence_id: str | None = None) -> None:  # fmt: skip
        await self.store.mark(event_id, status, now_ms(), error, message_id, attempt, sequence_id)

    def took_over(self, event_id: str) -> bool:
        return self.core.took_over(event_id)

    def should_post(self, event_id: str) -> bool:
        return self.core.should_post(event_id)

    def superseded(self, event_id: str) -> bool:
        return self.core.superseded(event_id)

    def sent_elsewhere(self, event_id: str) -> bool:
        return self.core.sent_elsewhere(event_id)

    async def delivered(self, event_id: str) -> None:
        await self.apply(self.core.publish_succeeded(event_id, now_ms()))

    async def reachable(self, ok: bool) -> None:
        await self.apply(self.core.delivery_observed(ok, now_ms()))

    def _subject(self, event: Event) -> Subject:
        node = keys.subject_node(event.subject)
        if node is not None:
            return Subject(node)
        target = self.targets.get(event.subject)
        label = target.label if target is not None else event.subject
        page = None
        if self.config.node.public_url is not None:
            page = f"{str(self.config.node.public_url).rstrip('/')}/t/{event.subject}"
        topic = None
        if target is not None and self.config.ntfy is not None:
            routes = self.config.ntfy.tag_topics
            topic = target.topic or next((routes[t] for t in target.tags if t in routes), None)
        return Subject(label, page, topic)

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
        await self.apply(self.core.heartbeat_received(target, now_ms()))

    # -- answering peers -----------------------------------------------------

    async def answer_pull(self, peer: str, data: dict[str, Any]) -> dict[str, Any]:
        limit = data.get("limit", self.config.sync.page_size)
        if not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise wire.WireError(400, "limit: expected a whole number from 1 to 10000")
        page = self.core.delta_requested(peer, wire.vector_from(data), now_ms(),
                                         wire.cursor_from(data), limit)  # fmt: skip
        self._peer_is_back(peer)
        answer = wire.page_to_json(page)
        after = data.get("live_after_ms")
        if data.get("cursor") is None and isinstance(after, int) and not isinstance(after, bool):
            # Our latest checks newer than what the peer holds, with the first page.
            answer["live"] = self.live.own_after(after)
        return answer

    async def answer_history(self, _peer: str, data: dict[str, Any]) -> dict[str, Any]:
        """This node's own checks or rollups of one target, for the read API."""
        target, start, end = data.get("target"), data.get("from_ms"), data.get("to_ms")
        resolution, limit = data.get("resolution"), data.get("limit")
        if not isinstance(target, str) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in (start, end, limit)
        ):
            raise wire.WireError(400, "history: expected target, from_ms, to_ms and limit")
        assert isinstance(start, int) and isinstance(end, int) and isinstance(limit, int)
        if not 1 <= limit <= 10_000:
            raise wire.WireError(400, "history: limit: expected 1 to 10000")
        points: list[dict[str, Any]]
        if resolution == "raw":
            rows = await self.store.checks_between(target, start, end, limit)
            points = [{"node": self.name, "at_ms": r.at_ms, "ok": r.ok,
                       "latency_ms": r.latency_ms, "reason": r.reason} for r in rows]  # fmt: skip
        elif resolution in ("hour", "day"):
            ups = await self.store.rollups_between(target, resolution, start, end, limit)
            points = [{"node": self.name, "at_ms": u.bucket_ms, "checks": u.checks, "ups": u.ups,
                       "latency_min_ms": u.latency_min_ms, "latency_avg_ms": u.latency_avg_ms,
                       "latency_max_ms": u.latency_max_ms} for u in ups]  # fmt: skip
        else:
            raise wire.WireError(400, "history: resolution: expected raw, hour or day")
        return {"points": points}

    async def peer_history(self, peer: str, query: dict[str, Any]) -> dict[str, Any] | None:
        """The peer's points, or None when it cannot be asked now."""
        if now_ms() < self.retry_at_ms[peer]:
            return None  # known unreachable: answer with our own points at once
        try:
            answer = await self._signed_post(peer, "/sync/history", query)
        except (httpx.HTTPError, wire.WireError) as exc:
            log.debug("history node=%s peer=%s failed: %s", self.name, peer, exc)
            return None
        points = answer.get("points")
        if not isinstance(points, list) or not all(
            isinstance(p, dict) and p.get("node") == peer and isinstance(p.get("at_ms"), int)
            for p in points
        ):
            return None
        return {"points": points}

    async def answer_push(self, peer: str, data: dict[str, Any]) -> dict[str, Any]:
        entries = wire.entries_from(data)
        try:
            step = self.core.entries_received(peer, entries, now_ms())
        except InvalidEntry as exc:
            raise wire.WireError(422, str(exc)) from exc
        await self.apply(step)
        self._peer_is_back(peer)
        return {"merged": len(step.written)}

    async def saw_clock(self, peer: str, stamp: str) -> None:
        """A verified answer from peer carried its wall clock: later requests
        are stamped in its time, and the core keeps and judges the offset."""
        if not plain_digits(stamp, 16):
            return
        now = now_ms()
        self.clock_offset_ms[peer] = int(stamp) - now
        await self.apply(self.core.peer_clock_observed(peer, int(stamp), now))

    def _peer_is_back(self, peer: str) -> None:
        """The peer reached us: stop backing off and pull from it at once, or
        we would not be ready (nor vote) until the backoff ran out."""
        if self.failures[peer] and self.retry_at_ms[peer] > now_ms():
            self.retry_at_ms[peer] = 0
            self._spawn(self._pull(peer))


def api_targets(written_by_id: dict[str, JsonValue]) -> dict[str, AnyTarget]:
    """Targets the admin API added, as the log holds them (either node's)."""
    found: dict[str, AnyTarget] = {}
    for target_id, written in written_by_id.items():
        value = written.get("target") if isinstance(written, dict) else None
        try:
            target = TARGET_ADAPTER.validate_python(value)
        except ValidationError:
            log.warning("log entry target/%s: not a valid target; ignored", target_id)
            continue
        found[target.id] = target
    return found


def api_windows(core: NodeCore, silences: bool) -> list[MaintenanceWindow]:
    """Maintenance windows or silences the admin API added."""
    found = []
    for window_id, written in core.admin_windows(silences).items():
        value = written.get("window") if isinstance(written, dict) else None
        try:
            found.append(MaintenanceWindow.model_validate(value))
        except ValidationError:
            log.warning("admin window %s: not a valid window; ignored", window_id)
    return found


def _after_step(job: Any, delta: timedelta, now: datetime) -> datetime:
    """Where a job's next run belongs after the wall clock jumped by delta.

    Moved with the step when that puts it within one period from now; left
    where it is when APScheduler already placed it there (it may have run
    or skipped the job in the new time before the step was seen); else
    within one period from now."""
    trigger = getattr(job, "trigger", None)
    period = getattr(trigger, "interval", None)
    if not isinstance(period, timedelta):
        period = timedelta(seconds=FIRST_CHECK_SPREAD_S)
    grace = timedelta(seconds=1)
    for candidate in (job.next_run_time + delta, job.next_run_time):
        if now - grace <= candidate <= now + period:
            return candidate  # type: ignore[no-any-return]
    return now + period * random.random()


def reined_in(
    next_run: datetime, period: timedelta, now: datetime, spread: float
) -> datetime | None:
    """Where an interval job's next run belongs when it lies more than its
    period (and a step's tolerance) from now; None when it is where it may be."""
    if next_run <= now + period + timedelta(seconds=STEP_TOLERANCE_S):
        return None
    return now + period * spread


def _dt(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)
