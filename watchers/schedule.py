"""When a node's jobs run: checks, canaries, sync, maintenance, retention.

The node asks for jobs through ``Schedule`` and is handed one. In
production that is APScheduler (``ApsSchedule``), with what it cannot do
put beside it: it reads the wall clock itself, so a step of the clock moves
every job with it, and a job found further out than its period is brought
back. ``ClockSchedule`` runs the same jobs on any ``Clock``: on a fake one,
a test advances a whole pair through minutes in milliseconds.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from watchers.clockwatch import STEP_TOLERANCE_S, Clock

log = logging.getLogger("ravens")

Job = Callable[[], Awaitable[None]]
# Told when a job is handed to run: its id and when it was due (epoch ms).
OnDue = Callable[[str, float], None]
# A job whose period is unknown is placed within this long after a step.
DEFAULT_SPREAD_S = 60.0


class Schedule(Protocol):
    @property
    def running(self) -> bool: ...

    def every(self, job_id: str, run: Job, period_s: float, first_s: float | None = None) -> None:
        """Run every period_s (first at epoch second first_s, else one period
        from now); one instance at a time, missed runs coalesced."""

    def once(self, job_id: str, run: Job, at_s: float) -> None:
        """Run once at epoch second at_s, replacing a job of the same id."""

    def remove(self, job_id: str) -> None:
        """Forget a job; nothing when there is none."""

    def start(self, on_due: OnDue) -> None: ...

    def shutdown(self) -> None: ...

    def stepped(self, step_s: float) -> None:
        """The wall clock jumped by step_s: every job keeps its pace."""

    def keep_pace(self) -> None:
        """Bring back any job further out than its period."""


class ApsSchedule:
    """APScheduler's AsyncIOScheduler, kept to its pace across clock steps."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.scheduler = AsyncIOScheduler()

    @property
    def running(self) -> bool:
        return bool(self.scheduler.running)

    def every(self, job_id: str, run: Job, period_s: float, first_s: float | None = None) -> None:
        # No jitter: APScheduler adds it to every interval and so stretches them all.
        first = {} if first_s is None else {"next_run_time": _dt(first_s)}
        self.scheduler.add_job(
            run,
            "interval",
            seconds=period_s,
            id=job_id,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(period_s)),
            replace_existing=True,
            **first,
        )

    def once(self, job_id: str, run: Job, at_s: float) -> None:
        self.scheduler.add_job(run, "date", run_date=_dt(at_s), id=job_id, replace_existing=True)

    def remove(self, job_id: str) -> None:
        if self.scheduler.get_job(job_id) is not None:
            self.scheduler.remove_job(job_id)

    def start(self, on_due: OnDue) -> None:
        def submitted(event: JobSubmissionEvent) -> None:
            if event.scheduled_run_times:
                on_due(event.job_id, event.scheduled_run_times[-1].timestamp() * 1000)

        self.scheduler.add_listener(submitted, EVENT_JOB_SUBMITTED)
        self.scheduler.start()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def stepped(self, step_s: float) -> None:
        delta = timedelta(seconds=step_s)
        now = datetime.now(UTC)
        for job in self.scheduler.get_jobs():
            if job.next_run_time is not None:
                job.modify(next_run_time=after_step(job, delta, now))
        self.scheduler.wakeup()

    def keep_pace(self) -> None:
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
                log.warning(
                    "job node=%s job=%s next run was %.0f s out, past its period of "
                    "%.0f s: brought back",
                    self.node,
                    job.id,
                    (job.next_run_time - now).total_seconds(),
                    period.total_seconds(),
                )
                job.modify(next_run_time=when)


@dataclass(order=True)
class _Due:
    at_ms: int
    seq: int
    job_id: str = field(compare=False)


@dataclass
class _Job:
    run: Job
    period_ms: int | None
    next_ms: int
    seq: int
    running: asyncio.Task[None] | None = None


class ClockSchedule:
    """The same jobs on any Clock: one loop waits for the earliest, runs
    what is due (one instance per job; runs missed while one was busy are
    coalesced into the next), and keeps each interval job's pace."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._jobs: dict[str, _Job] = {}
        self._queue: list[_Due] = []
        self._seq = 0
        self._changed = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._on_due: OnDue = lambda _job, _at: None

    @property
    def running(self) -> bool:
        return self._loop is not None

    def _put(self, job_id: str, run: Job, period_ms: int | None, next_ms: int) -> None:
        self._seq += 1
        old = self._jobs.get(job_id)
        job = _Job(run, period_ms, next_ms, self._seq, old.running if old else None)
        self._jobs[job_id] = job
        heapq.heappush(self._queue, _Due(next_ms, job.seq, job_id))
        self._changed.set()

    def every(self, job_id: str, run: Job, period_s: float, first_s: float | None = None) -> None:
        period_ms = round(period_s * 1000)
        first = self.clock.now_ms() + period_ms if first_s is None else round(first_s * 1000)
        self._put(job_id, run, period_ms, first)

    def once(self, job_id: str, run: Job, at_s: float) -> None:
        self._put(job_id, run, None, round(at_s * 1000))

    def remove(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)

    def start(self, on_due: OnDue) -> None:
        self._on_due = on_due
        self._loop = asyncio.ensure_future(self._run())

    def shutdown(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
        for job in self._jobs.values():
            if job.running is not None:
                job.running.cancel()

    def stepped(self, step_s: float) -> None:
        step_ms = round(step_s * 1000)
        queue, self._queue = self._queue, []
        for due in queue:
            job = self._jobs.get(due.job_id)
            if job is not None and job.seq == due.seq:
                job.next_ms += step_ms
                heapq.heappush(self._queue, _Due(job.next_ms, due.seq, due.job_id))
        self._changed.set()

    def keep_pace(self) -> None:
        """Nothing to do: the loop never reads a wall clock of its own."""

    async def _run(self) -> None:
        while True:
            now = self.clock.now_ms()
            while self._queue and self._queue[0].at_ms <= now:
                self._fire(heapq.heappop(self._queue), now)
            self._changed.clear()
            wait_ms = self._queue[0].at_ms - now if self._queue else 3_600_000
            await self.clock.wait(self._changed, wait_ms / 1000)

    def _fire(self, due: _Due, now_ms: int) -> None:
        job = self._jobs.get(due.job_id)
        if job is None or job.seq != due.seq:
            return  # replaced or removed since
        if job.running is None or job.running.done():
            self._on_due(due.job_id, job.next_ms)
            job.running = asyncio.ensure_future(job.run())
        if job.period_ms is None:
            del self._jobs[due.job_id]
            return
        missed = max(0, (now_ms - job.next_ms) // job.period_ms)
        job.next_ms += (missed + 1) * job.period_ms
        heapq.heappush(self._queue, _Due(job.next_ms, job.seq, due.job_id))


def after_step(job: Any, delta: timedelta, now: datetime) -> datetime:
    """Where a job's next run belongs after the wall clock jumped by delta.

    Moved with the step when that puts it within one period from now; left
    where it is when APScheduler already placed it there (it may have run
    or skipped the job in the new time before the step was seen); else
    within one period from now."""
    trigger = getattr(job, "trigger", None)
    period = getattr(trigger, "interval", None)
    if not isinstance(period, timedelta):
        period = timedelta(seconds=DEFAULT_SPREAD_S)
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
