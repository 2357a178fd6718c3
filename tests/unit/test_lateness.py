"""How late checks start: over the last 10,000, and over the last minute
apart (how the node keeps up now, not an hour ago)."""

from __future__ import annotations

from watchers.lateness import Lateness


def test_the_last_minute_is_told_apart_from_the_whole_window() -> None:
    now = [1000.0]
    late = Lateness(clock=lambda: now[0])
    for i in range(100):  # an hour ago, a stalled loop: 5 s late each
        late.due(f"t{i}", 0.0)
        late.started(f"t{i}", 5_000.0)
    now[0] += 3600
    for i in range(10):  # now: on time, within 20 ms
        late.due(f"u{i}", 0.0)
        late.started(f"u{i}", float(i * 2))
    summary = late.summary()
    assert summary["samples"] == 110 and summary["max_ms"] == 5_000.0
    assert summary["last_minute"] == {"samples": 10, "p50_ms": 10.0, "p99_ms": 18.0,
                                      "max_ms": 18.0}  # fmt: skip
    late.started("never-due", 1.0)  # a check nobody scheduled counts for nothing
    assert late.summary()["samples"] == 110
    now[0] += 61
    assert late.summary()["last_minute"]["samples"] == 0
