"""One line over many seeds: what the README's simulator table states for
seeds 1-30, from the per-seed reports alone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Counts that must be 0 in every seed; summed.
MUST_BE_ZERO = (
    "missed",
    "false_alarms",
    "history_mismatch",
    "order_violations",
    "missed_recoveries",
    "lost_events",
    "unconverged",
    "late_pages",
)
SUMMED = (
    "outages",
    "judged",
    "exempt",
    "single_vantage_false_alarms",
    "overtaken_unheard",
    *MUST_BE_ZERO,
)


def summarize(reports: Sequence[Mapping[str, Any]], bound_s: float) -> dict[str, Any]:
    """Totals, worst figures, and the seeds whose worst target-week error
    is over bound_s (the confirmation time plus one check interval)."""
    if not reports:
        return {"seeds": 0}
    totals = {key: sum(int(r[key]) for r in reports) for key in SUMMED}
    worst_week = {int(r["seed"]): r["uptime_error_s"]["max"] for r in reports}
    over = {seed: err for seed, err in worst_week.items() if err is not None and err > bound_s}
    alone = [r["alone_on_failing_path"] for r in reports]
    judged = totals["judged"] + totals["exempt"]
    return {
        "seeds": len(reports),
        **totals,
        "exempt_percent": round(100 * totals["exempt"] / judged, 2) if judged else 0.0,
        "copies_per_node_max": max(int(r["copies_per_node_max"]) for r in reports),
        "uptime_error_s": {
            "p95_max": _max(r["uptime_error_s"]["p95"] for r in reports),
            "max": _max(worst_week.values()),
            "bound": bound_s,
            "seeds_over_bound": dict(sorted(over.items())),
        },
        "outage_error_s": {
            "p50_max": _max(r["outage_error_s"]["p50"] for r in reports),
            "p95_max": _max(r["outage_error_s"]["p95"] for r in reports),
        },
        "alone_on_failing_path": {
            "windows": sum(int(a["windows"]) for a in alone),
            "seconds": round(sum(float(a["seconds"]) for a in alone), 1),
            "error_s": round(sum(float(a["error_s"]) for a in alone), 1),
        },
        "notification_latency_s": _latency_by_fault(reports),
        "notification_latency_reachable_s_max": _max(
            r.get("notification_latency_reachable_s") for r in reports
        ),
        "notification_bound_s": max(float(r["notification_bound_s"]) for r in reports),
        "all_zero": all(totals[key] == 0 for key in MUST_BE_ZERO),
    }


def _latency_by_fault(reports: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per fault kind over all seeds: outages paged, the worst seed's p95, the max."""
    kinds = sorted({kind for r in reports for kind in r["notification_latency_s"]})
    found = {}
    for kind in kinds:
        seen = [
            r["notification_latency_s"][kind]
            for r in reports
            if kind in r["notification_latency_s"]
        ]
        found[kind] = {
            "outages": sum(int(s["outages"]) for s in seen),
            "p95_max": _max(s["p95"] for s in seen),
            "max": _max(s["max"] for s in seen),
        }
    return found


def _max(values: Any) -> float | None:
    found = [v for v in values if v is not None]
    return max(found) if found else None
