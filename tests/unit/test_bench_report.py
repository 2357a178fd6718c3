"""The benchmark's report over figures a test wrote by hand: a ratio from
rows with CPU, and none (said, not divided by zero) from a row without."""

from __future__ import annotations

from typing import Any

from tests.bench.report import Goal, throughput


def _row(checks_per_s: float, cpu_share: float) -> dict[str, Any]:
    return {"checks_per_s": checks_per_s, "cpu_us_per_check": 100.0,
            "cpu_share": cpu_share, "rss_mb": 30.0, "failed": 0}  # fmt: skip


def test_the_ratio_is_checks_per_core_second_of_each_side() -> None:
    goals: list[Goal] = []
    # ravens: 400 checks/s on half a core = 800/core-s; exporter: 300 on 0.75 = 400.
    text = "\n".join(throughput({"target": "t", "loops": ["asyncio"],
                                 "ravens_tcp_asyncio": _row(400, 0.5),
                                 "blackbox_tcp": _row(300, 0.75)}, goals))  # fmt: skip
    assert "TCP checks per core-second, ravens on asyncio / blackbox exporter: **2.00**" in text
    assert goals == [("TCP checks per core-second, ravens on asyncio / blackbox exporter, "
                      "at least 3", "2.00", False)]  # fmt: skip


def test_a_prober_that_used_no_measurable_cpu_gives_no_ratio_and_no_goal() -> None:
    goals: list[Goal] = []
    text = "\n".join(throughput({"target": "t", "loops": ["asyncio"],
                                 "ravens_http_asyncio": _row(400, 0.5),
                                 "blackbox_http": _row(50, 0.0)}, goals))  # fmt: skip
    ratio = "HTTP checks per core-second, ravens on asyncio / blackbox exporter"
    assert f"{ratio}: not measured" in text
    assert goals == []
