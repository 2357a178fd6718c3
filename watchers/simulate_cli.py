"""``ravens simulate``: the real consensus core of N nodes on virtual time,
one seed or many in parallel, as a table or JSON."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import click

from consensus.settings import Settings

# The package loads the simulator itself only when simulate() runs: every
# `ravens` command (a node's start too) loads this module.
from consensus.simulation import Fault, simulate


def _faults(_ctx: click.Context, _param: click.Parameter, value: str) -> list[Fault]:
    known = {f.value: f for f in Fault}
    chosen = []
    for name in (part.strip() for part in value.split(",")):
        if not name:
            continue
        if name not in known:
            raise click.BadParameter(
                f"unknown fault {name!r}; expected a comma list of {', '.join(known)}"
            )
        chosen.append(known[name])
    return chosen


def _seed_range(_ctx: click.Context, _param: click.Parameter, value: str | None) -> range | None:
    if value is None:
        return None
    first, _, last = value.partition("-")
    try:
        seeds = range(int(first), int(last or first) + 1)
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected FIRST-LAST, e.g. 1-30") from None
    if not seeds or len(seeds) > 1000:
        raise click.BadParameter(f"{value!r}: expected FIRST <= LAST, at most 1000 seeds")
    return seeds


@click.command(name="simulate")
@click.option(
    "--days",
    type=click.FloatRange(min=0.01),
    default=7.0,
    show_default=True,
    help="Simulated time.",
)
@click.option(
    "--density",
    type=click.FloatRange(min=0.1, max=10.0),
    default=1.0,
    show_default=True,
    help="Every fault and outage drawn this many times as often: as many "
    "in half the days at 2, with less quiet time between them.",
)
@click.option("--targets", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same run.")
@click.option("--nodes", type=click.IntRange(min=1, max=9), default=2, show_default=True)
@click.option(
    "--faults",
    default="",
    callback=_faults,
    help="Comma list: " + ",".join(f.value for f in Fault) + ".",
)
@click.option(
    "--seeds",
    callback=_seed_range,
    default=None,
    metavar="FIRST-LAST",
    help="Run every seed in the range (in parallel) and sum them up; replaces --seed.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Seeds run at once with --seeds.  [default: the number of CPUs]",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of a table.")
def simulate_command(
    days: float,
    density: float,
    targets: int,
    seed: int,
    nodes: int,
    faults: list[Fault],
    seeds: range | None,
    jobs: int | None,
    as_json: bool,
) -> None:
    """Run the real consensus core of N nodes on virtual time against
    simulated targets, network faults, crashes and ntfy trouble."""
    if seeds is not None:
        jobs = jobs or os.cpu_count() or 1
        _simulate_seeds(days, targets, seeds, nodes, faults, jobs, as_json, density)
        return
    started = time.perf_counter()
    report = simulate(days, targets, seed, nodes=nodes, faults=faults, density=density)
    wall = time.perf_counter() - started
    report["wall_seconds"] = round(wall, 2)
    report["checks_per_wall_second"] = round(report["checks"] / wall) if wall > 0 else None
    if as_json:
        click.echo(json.dumps(report, sort_keys=False))
        return
    for key, value in _flatten(report):
        click.echo(f"{key:<40} {value}")


def _simulate_seeds(
    days: float,
    targets: int,
    seeds: range,
    nodes: int,
    faults: list[Fault],
    jobs: int,
    as_json: bool,
    density: float = 1.0,
) -> None:
    """One simulated world per seed, each in a process of its own (the
    simulator is pure Python on one core), then the sum of them."""
    # The judge's figures, loaded with the simulator (not at every command).
    from consensus.simulation.report import confirmation_ms
    from consensus.simulation.runner import CHECK_INTERVAL_MS
    from consensus.simulation.summary import summarize

    with ProcessPoolExecutor(max_workers=min(jobs, len(seeds))) as pool:
        runs = [
            pool.submit(simulate, days, targets, seed, nodes, faults, density=density)
            for seed in seeds
        ]
        reports = []
        for run in runs:
            report = run.result()
            reports.append(report)
            if not as_json:
                click.echo(_seed_line(report))
    bound_s = (confirmation_ms(Settings()) + CHECK_INTERVAL_MS) / 1000
    summary = summarize(reports, bound_s)
    if as_json:
        click.echo(json.dumps({"reports": reports, "summary": summary}))
        return
    for key, value in _flatten(summary, "all."):
        click.echo(f"{key:<40} {value}")


def _seed_line(report: Mapping[str, Any]) -> str:
    week = report["uptime_error_s"]
    return (
        f"seed {report['seed']}: judged {report['judged']} (exempt {report['exempt']}), "
        f"missed {report['missed']}, false alarms {report['false_alarms']}, "
        f"history mismatch {report['history_mismatch']}, "
        f"order violations {report['order_violations']}, "
        f"missed recoveries {report['missed_recoveries']}, "
        f"late pages {report['late_pages']}, "
        f"uptime error p50/p95/max {week['p50']}/{week['p95']}/{week['max']} s"
    )


def _flatten(report: Mapping[str, Any], prefix: str = "") -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    for key, value in report.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.extend(_flatten(value, f"{name}.") if value else [(name, "-")])
        elif isinstance(value, list):
            rows.append((name, ",".join(str(v) for v in value) or "-"))
        else:
            rows.append((name, value))
    return rows
