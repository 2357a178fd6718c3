"""The node's SQLite file: steps round-trip, migrations, retention, integrity."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import Coroutine
from pathlib import Path

import pytest

from consensus.hlc import Hlc
from consensus.lww import LwwMap
from watchers.storage import MIGRATIONS, CheckRow, Interval, StorageError, Store


def test_committed_steps_come_back_as_the_same_log_vector_and_clock(tmp_path: Path) -> None:
    path = tmp_path / "node.sqlite3"

    async def go() -> tuple[LwwMap, LwwMap, Hlc]:
        log = LwwMap("huginn")
        entries = [log.write(f"obs/huginn/t{i}", {"state": "UP", "i": i}, Hlc(100 + i, 0, "huginn"))
                   for i in range(50)]  # fmt: skip
        log.write("target/old", None, Hlc(200, 0, "huginn"), tombstone=True)
        store = await Store.open(path)
        await store.commit(entries, dict(log.vector), Hlc(150, 3, "huginn"))
        await store.commit([log.raw("target/old")], dict(log.vector), Hlc(200, 0, "huginn"),  # type: ignore[list-item]
                           checks=[CheckRow("t1", 1000, False, 12.5, "status 503",
                                           {"cert_days_left": 29.5})],
                           outbox=[("e1", "t1", "DOWN", "{}", 1000)])  # fmt: skip
        await store.close()
        store = await Store.open(path)
        loaded, clock = await store.load("huginn")
        (check,) = await store.recent_checks("t1")
        assert (check.reason, check.details) == ("status 503", {"cert_days_left": 29.5})
        assert await store.outbox_depth() == 1
        assert await store.integrity() == "ok"
        await store.close()
        return log, loaded, clock

    original, loaded, clock = asyncio.run(go())
    assert loaded.digest() == original.digest()
    assert loaded.vector == original.vector == {"huginn": 51}
    assert clock == Hlc(200, 0, "huginn")


def test_retention_drops_only_old_raw_checks(tmp_path: Path) -> None:
    async def go() -> tuple[int, list[int]]:
        store = await Store.open(tmp_path / "node.sqlite3")
        rows = [CheckRow("t", at, True, 1.0, "status 200") for at in range(0, 12_000, 1)]
        await store.commit([], {}, Hlc(1, 0, "huginn"), checks=rows)
        removed = await store.prune_checks(before_ms=10_000, batch=3_000)
        left = [r.at_ms for r in await store.recent_checks("t", limit=5_000)]
        await store.close()
        return removed, left

    removed, left = asyncio.run(go())
    assert removed == 10_000
    assert min(left) == 10_000 and len(left) == 2_000


def test_the_schema_is_versioned_and_a_newer_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.sqlite3"
    asyncio.run(_open_close(path))
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StorageError, match="newer than this ravens"):
        asyncio.run(_open_close(path))


async def _open_close(path: Path) -> None:
    store = await Store.open(path)
    await store.close()


def test_checks_roll_up_by_hour_and_day_and_hours_are_pruned() -> None:
    async def go(path: Path) -> dict[str, list[object]]:
        store = await Store.open(path)
        rows = [
            CheckRow("t", 0, True, 10.0, "status 200"),
            CheckRow("t", 30_000, False, None, "connect timeout after 10 s"),
            CheckRow("t", 61_000, True, 30.0, "status 200"),
        ]
        await store.commit([], {}, Hlc(1, 0, "huginn"), checks=rows)
        out = {r: await store.rollups("t", r) for r in ("minute", "hour", "day")}
        assert await store.prune_rollups("hour", 3_600_000) == 1
        assert await store.rollups("t", "hour") == [] and len(await store.rollups("t", "day")) == 1
        await store.close()
        return out  # type: ignore[return-value]

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rollups = asyncio.run(go(Path(tmp) / "node.sqlite3"))
    assert rollups["minute"] == [], "minute rollups are not kept: raw checks serve"
    (hour,) = rollups["hour"]
    assert (hour.checks, hour.ups, hour.latency_min_ms, hour.latency_max_ms) == (3, 2, 10.0, 30.0)  # type: ignore[attr-defined]
    assert hour.latency_avg_ms == 20.0  # type: ignore[attr-defined]


def test_the_interval_cache_holds_what_the_core_derives_and_is_rebuilt(tmp_path: Path) -> None:
    """Each commit replaces a moved target's stretches; a rebuild replaces them all."""

    first = [Interval("t", "UP", "quorum", 1_000, 5_000), Interval("t", "DOWN", "quorum", 5_000)]
    later = [*first[:1], Interval("t", "DOWN", "quorum", 5_000, 9_000, "e1"),
             Interval("t", "UP", "quorum", 9_000, None, "e2")]  # fmt: skip

    async def go() -> tuple[list[Interval], list[Interval], list[Interval], bool, bool]:
        store = await Store.open(tmp_path / "node.sqlite3")
        clock = Hlc(1, 0, "huginn")
        stale = await store.history_cache_current()
        await store.commit([], {}, clock, histories={"t": first})
        await store.commit([], {}, clock, histories={"t": later})
        committed = await store.intervals("t")
        await store.rebuild_history({"u": [Interval("u", "UP", "quorum", 7)]})
        gone, kept = await store.intervals("t"), await store.intervals("u")
        current = await store.history_cache_current()
        await store.close()
        return committed, gone, kept, stale, current

    committed, gone, kept, stale, current = asyncio.run(go())
    assert committed == later
    assert gone == [] and kept == [Interval("u", "UP", "quorum", 7)]
    assert (stale, current) == (False, True), "a new database starts with its cache to build"


def test_refused_notifications_are_listed_and_requeued_after_a_config_change(
    tmp_path: Path,
) -> None:
    async def go() -> tuple[list[tuple[str, str | None]], int, int]:
        store = await Store.open(tmp_path / "node.sqlite3")
        await store.commit([], {}, Hlc(1, 0, "huginn"), outbox=[("e1", "blog", "DOWN", "{}", 1)])
        await store.mark("e1", "refused", 2, error="forbidden (40301)")
        refused = await store.outbox_refused()
        requeued = await store.requeue_refused(3)
        depth = await store.outbox_depth()
        await store.close()
        return refused, requeued, depth

    refused, requeued, depth = asyncio.run(go())
    assert refused == [("e1", "forbidden (40301)")]
    assert (requeued, depth) == (1, 1)


def test_steps_committed_at_once_are_each_written_once(tmp_path: Path) -> None:
    """Many checks finishing together: every step written exactly once
    (a flush must not write again what another flush is writing)."""
    from watchers.writes import Batch, Writes

    async def go() -> int:
        store = await Store.open(tmp_path / "node.sqlite3")
        writes = Writes(store, "huginn")
        batches = [Batch([], {}, Hlc(i, 0, "huginn"), [CheckRow(f"t{i}", i, True, 1.0, "ok")])
                   for i in range(200)]  # fmt: skip
        done = await asyncio.gather(*(writes.commit(b, 0) for b in batches))
        assert all(done) and writes.unsaved == []
        async with store._db.execute("SELECT count(*) FROM checks") as cursor:
            (count,) = await cursor.fetchone()  # type: ignore[misc]
        await store.close()
        return int(count)

    assert asyncio.run(go()) == 200


def test_ravens_rebuild_history_derives_the_cache_from_the_log(tmp_path: Path) -> None:
    """A log made by two cores through an outage, in a real database whose
    cache was wiped: the command rebuilds it, and it matches the core's own."""
    import subprocess
    import sys

    from tests.unit.pair import Net, results

    net = Net(("huginn", "muninn"), ("blog",))
    net.start()
    net.rounds("blog", results(("huginn", "muninn"), True), 2)
    net.rounds("blog", results(("huginn", "muninn"), False), 3)
    net.rounds("blog", results(("huginn", "muninn"), True), 3)
    net.advance(5_000)
    net.sync()
    core = net.cores["huginn"]
    expected = core.history("blog")
    # Moments of PARTIAL on the way in or out may stand between them.
    assert [s.state for s in expected if s.state != "PARTIAL"] == ["UP", "DOWN", "UP"]

    async def write() -> None:
        store = await Store.open(tmp_path / "ravens.sqlite3")
        await store.commit(list(core.log.entries()), dict(core.log.vector), core.clock.last,
                           histories={"blog": []})  # fmt: skip
        await store.close()

    asyncio.run(write())
    (tmp_path / "secret").write_text("s" * 64)
    config = tmp_path / "node.toml"
    config.write_text(f'[node]\nname = "huginn"\nlisten = "127.0.0.1:1"\ndata_dir = "{tmp_path}"\n'
                      f'[sync]\nsecret_file = "{tmp_path / "secret"}"\n')  # fmt: skip
    command = [sys.executable, "-m", "watchers", "rebuild-history", "--config", str(config)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert f"1 targets, {len(expected)} stretches" in done.stdout

    async def read() -> list[Interval]:
        store = await Store.open(tmp_path / "ravens.sqlite3")
        found = await store.intervals("blog")
        await store.close()
        return found

    assert asyncio.run(read()) == expected


def test_history_kept_before_the_upgrade_lives_on_as_moves(tmp_path: Path) -> None:
    """A database from before history derived from the log: migration sets
    its intervals aside, and the core turns them into moves that tell the
    same history."""
    from consensus.node import NodeCore
    from consensus.settings import Settings

    path = tmp_path / "ravens.sqlite3"
    with sqlite3.connect(path) as db:
        for script in MIGRATIONS[:5]:
            db.executescript(script)
        db.execute("PRAGMA user_version = 5")
        db.executemany(
            "INSERT INTO intervals (target, state, mode, start_ms, end_ms, event) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [("blog", "UP", "quorum", 1_000, 50_000, None),
             ("blog", "DOWN", "quorum", 50_000, 90_000, "e1"),
             ("blog", "UP", "quorum", 90_000, None, "e2")],
        )  # fmt: skip

    async def upgrade() -> list[Interval]:
        store = await Store.open(path)
        legacy = await store.legacy_intervals()
        await store.close()
        return legacy

    legacy = asyncio.run(upgrade())
    assert [(i.state, i.start_ms, i.end_ms) for i in legacy] == [
        ("UP", 1_000, 50_000), ("DOWN", 50_000, 90_000), ("UP", 90_000, None)
    ]  # fmt: skip
    core = NodeCore("huginn", ["muninn"], ["blog"], Settings(), now_ms=100_000)
    step = core.import_history(legacy)
    assert len(step.to_commit) == 3
    assert core.history("blog") == legacy
    assert core.import_history(legacy).to_commit == [], "importing twice adds nothing"


def test_a_step_the_database_refuses_for_good_is_dropped_and_shown(tmp_path: Path) -> None:
    """A value SQLite cannot store (an integer past int64) must not stay
    queued and poison every later write: that step alone is dropped, loudly,
    the ones around it are written, and the storage shows not ok."""
    from watchers.writes import Batch, Writes

    async def go() -> None:
        store = await Store.open(tmp_path / "node.sqlite3")
        writes = Writes(store, "huginn")
        log = LwwMap("huginn")
        good = log.write("obs/huginn/blog", {"state": "UP"}, Hlc(100, 0, "huginn"))
        poisoned = Batch([], {}, Hlc(101, 0, "huginn"), [CheckRow("blog", 2**70, True, 1.0, "ok")])
        # Queued behind a transient failure, then written together.
        writes.unsaved.append(poisoned)
        assert await writes.commit(Batch([good], dict(log.vector), Hlc(102, 0, "huginn")), 0)
        assert writes.unsaved == []
        later = log.write("obs/huginn/shop", {"state": "UP"}, Hlc(103, 0, "huginn"))
        assert await writes.commit(Batch([later], dict(log.vector), Hlc(103, 0, "huginn")), 0)
        status = writes.status()
        assert status["ok"] is False and status["steps_refused"] == 1
        assert "OverflowError" in str(status["error"])
        await store.close()
        store = await Store.open(tmp_path / "node.sqlite3")
        loaded, _ = await store.load("huginn")
        assert {e.key for e in loaded.entries()} == {"obs/huginn/blog", "obs/huginn/shop"}
        await store.close()

    asyncio.run(go())


def test_the_data_directory_and_database_are_private_whatever_the_umask(tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = data / "ravens.sqlite3"

    async def go() -> None:
        store = await Store.open(path)
        await store.commit([], {"huginn": 0}, Hlc(1, 0, "huginn"))
        wal = Path(f"{path}-wal")
        assert wal.exists(), "WAL mode keeps a -wal file while open"
        assert stat.S_IMODE(wal.stat().st_mode) == 0o600
        await store.close()

    was = os.umask(0o022)
    try:
        asyncio.run(go())
        data.chmod(0o755)  # a directory made by hand, too open
        path.chmod(0o644)
        asyncio.run(go())
    finally:
        os.umask(was)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_history_served_beside_a_state_is_that_states_history_while_its_commit_waits(
    tmp_path: Path,
) -> None:
    """A step's state is in memory before its commit ends (and for as long as
    the database refuses writes): the history a reader gets from the node
    must already hold that step, not what the database held before it."""
    from tests.integration.inprocess import node_in_process
    from watchers.api import incidents_between

    config = f"""
[node]
name = "huginn"
listen = "127.0.0.1:1"
data_dir = "{tmp_path}"
[[peers]]
name = "muninn"
url = "http://127.0.0.1:2"
[sync]
secret_env = "UNUSED"
[[canaries]]
host = "127.0.0.1"
[[targets]]
id = "blog"
kind = "tcp"
host = "127.0.0.1"
port = 3
"""
    outage = [Interval("blog", "UP", "quorum", 1_000, 5_000),
              Interval("blog", "DOWN", "quorum", 5_000, 9_000, None),
              Interval("blog", "UP", "quorum", 9_000, None)]  # fmt: skip

    async def go() -> None:
        async with node_in_process(config) as node:
            held = asyncio.Event()
            entered = asyncio.Event()
            real_commit = node.store.commit

            async def slow_commit(*args: object, **kwargs: object) -> None:
                entered.set()
                await held.wait()
                await real_commit(*args, **kwargs)  # type: ignore[arg-type]

            node.store.commit = slow_commit  # type: ignore[method-assign]
            applying = asyncio.create_task(node.apply(node.core.import_history(outage)))
            try:
                await entered.wait()
                assert await node.store.intervals("blog") == [], "the commit is still waiting"
                derived = node.core.history("blog")
                assert [s.state for s in derived] == ["UP", "DOWN", "UP"]
                assert await node.intervals("blog") == derived
                assert (await node.intervals_since(6_000))["blog"] == derived[1:]
                (incident,) = await incidents_between(node, 0, 20_000, "blog")
                assert (incident.state, incident.start_ms, incident.end_ms) == (
                    "DOWN", 5_000, 9_000)  # fmt: skip
            finally:
                held.set()
                await applying
            assert await node.store.intervals("blog") == derived
            assert node.writes.pending_histories() == {}

    asyncio.run(go())


def test_each_hours_p50_and_p95_outlive_its_raw_checks(tmp_path: Path) -> None:
    """Percentiles by nearest rank, judged on latencies the test chose: an
    hour of 1..100 ms has p50 50 and p95 95, whatever order they came in."""
    hour = 3_600_000
    start = 1_800_000_000_000 - 1_800_000_000_000 % hour
    shuffled = [((i * 37) % 100) + 1 for i in range(100)]  # 1..100, each once

    async def go() -> None:
        store = await Store.open(tmp_path / "node.sqlite3")
        rows = [CheckRow("blog", start + i * 30_000, True, float(ms), "status 200")
                for i, ms in enumerate(shuffled)]  # fmt: skip
        # A second hour: one check without a latency (a timeout), three with.
        rows += [CheckRow("blog", start + hour + 1, False, None, "timeout after 10 s")]
        rows += [CheckRow("blog", start + hour + 2 + i, True, ms, "status 200")
                 for i, ms in enumerate((300.0, 100.0, 200.0))]  # fmt: skip
        await store.commit([], {}, Hlc(start, 0, "huginn"), checks=rows)
        first, second = await store.latency_hours("blog", start, start + 2 * hour)
        assert (first.p50_ms, first.p95_ms, first.checks) == (50.0, 95.0, 100)
        assert (second.p50_ms, second.p95_ms, second.checks, second.ups) == (200.0, 300.0, 4, 3)
        # The first hour is over at start + hour: sealed; the second is not yet.
        assert await store.seal_hours(start, start + hour) == 1
        await store.prune_checks(start + 2 * hour)
        first, second = await store.latency_hours("blog", start, start + 2 * hour)
        assert (first.p50_ms, first.p95_ms) == (50.0, 95.0), "kept in the rollup"
        assert (second.p50_ms, second.p95_ms) == (None, None), "raw gone before it was sealed"
        assert await store.seal_hours(start, start + 3 * hour) == 1
        assert await store.seal_hours(start, start + 3 * hour) == 0, "looked at once"
        await store.close()

    asyncio.run(go())


async def cancel_after(work: Coroutine[object, object, object], turns: int) -> bool:
    """Start work, cancel it after that many turns of the loop; whether the
    cancel met it still running (else it had ended, and is awaited)."""
    task = asyncio.ensure_future(work)
    for _ in range(turns):
        await asyncio.sleep(0)
    if not task.cancel():
        await task
        return False
    with pytest.raises(asyncio.CancelledError):
        await task
    return True


def test_a_commit_cancelled_at_any_point_is_written_whole_and_writes_go_on(tmp_path: Path) -> None:
    """A node stopping cancels whatever step it was writing. The step is
    carried to its end (aiosqlite runs each call on its thread whether or
    not anyone waits), and the next write is taken: a cancel between BEGIN
    and COMMIT once left the connection in a transaction for good."""

    async def go() -> tuple[int, set[str], int]:
        store = await Store.open(tmp_path / "node.sqlite3")
        log = LwwMap("huginn")
        cancelled = 0
        for turns in range(60):
            entry = log.write(f"obs/huginn/t{turns}", {"i": turns}, Hlc(100 + turns, 0, "huginn"))
            cancelled += await cancel_after(
                store.commit([entry], dict(log.vector), entry.hlc), turns
            )
            # The next write is taken, whatever the cancel met.
            after = log.write("obs/huginn/after", {"turns": turns}, Hlc(1000 + turns, 0, "huginn"))
            await store.commit([after], dict(log.vector), after.hlc)
        await store.close()
        store = await Store.open(tmp_path / "node.sqlite3")
        loaded, _ = await store.load("huginn")
        await store.close()
        held = list(loaded.entries())
        return cancelled, {e.key for e in held}, len(held)

    cancelled, keys, count = asyncio.run(go())
    assert cancelled >= 30, "the cancels met the commit in flight"
    # Cancelled before it began (no turn of the loop), the first writes
    # nothing; every later one had begun, and is written whole.
    assert keys == {f"obs/huginn/t{i}" for i in range(1, 60)} | {"obs/huginn/after"}
    assert count == 60


def test_a_step_whose_write_was_cancelled_is_written_once(tmp_path: Path) -> None:
    """The write queue notes a step written in the same breath as writing
    it: cancelled between the two, the step would be kept, and its checks
    (rows and rollups) written a second time by the next flush."""
    from watchers.writes import Batch, Writes

    async def go() -> tuple[int, list[int]]:
        store = await Store.open(tmp_path / "node.sqlite3")
        writes = Writes(store, "huginn")
        cancelled = 0
        for turns in range(1, 40):
            row = CheckRow("blog", turns, True, 1.0, "status 200")
            batch = Batch([], {}, Hlc(100 + turns, 0, "huginn"), [row])
            cancelled += await cancel_after(writes.commit(batch, 0), turns)
        assert await writes.flush(0)
        at = sorted(r.at_ms for r in await store.recent_checks("blog", limit=1000))
        await store.close()
        return cancelled, at

    cancelled, at = asyncio.run(go())
    assert cancelled >= 20, "the cancels met the write in flight"
    assert at == list(range(1, 40)), "each check once"


def test_a_wait_cancelled_as_its_event_is_set_stops_the_waiter() -> None:
    """The node's ticker waits on its wake event between ticks; stopping it
    cancels the wait, often as a step sets that event. Python 3.11's
    wait_for lost such a cancel, and the ticker went on after the node
    closed its database (the node never stopped)."""
    from notify.courier import AsyncioTimer

    async def go() -> list[str]:
        ends = []
        for turns in range(4):
            wake = asyncio.Event()
            waiter = asyncio.ensure_future(AsyncioTimer().wait(wake, 30.0))
            await asyncio.sleep(0)
            wake.set()
            for _ in range(turns):
                await asyncio.sleep(0)
            if not waiter.cancel():
                ends.append("done before the cancel")
                continue
            try:
                await waiter
                ends.append("returned after the cancel")
            except asyncio.CancelledError:
                ends.append("cancelled")
        return ends

    ends = asyncio.run(go())
    assert "returned after the cancel" not in ends
    assert "cancelled" in ends, "a cancel met the waiter in flight"
