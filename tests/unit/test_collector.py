"""The collector's pauses: what the node lived with is frozen, and swept."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from watchers import collector


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    """The test process's collector as it was."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settle_freezes_what_lives_and_sweep_collects_frozen_cycles() -> None:
    class Ring:
        other: object = None

    kept = [[] for _ in range(100)]  # lists: objects the collector tracks
    collector.settle()
    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_threshold()[0] == collector.YOUNG_THRESHOLD
    ring = Ring()
    ring.other = Ring()
    ring.other.other = ring  # type: ignore[attr-defined]
    gc.freeze()  # frozen while alive...
    del ring  # ...then garbage in a cycle: no young collection sees it
    gc.collect()
    frozen = gc.get_freeze_count()
    collector.sweep()
    assert gc.get_freeze_count() < frozen, "the sweep collected the frozen ring"


def test_the_loop_freezes_every_few_minutes_and_sweeps_seldom(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) > 6:
            raise asyncio.CancelledError

    def sweep() -> float:
        calls.append("sweep")
        return 0.0

    monkeypatch.setattr(collector, "sweep", sweep)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(collector.keep_pauses_short(sleep, freeze_every_s=10, sweep_every_s=30))
    assert slept == [10] * 7
    assert calls == ["freeze", "freeze", "sweep", "freeze", "freeze", "sweep"]
