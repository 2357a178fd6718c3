"""A deterministic simulator that runs copies of the real core on virtual time."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from consensus.settings import Settings
from consensus.simulation.scenario import Fault, generate

__all__ = ["Fault", "simulate"]


def simulate(
    days: float,
    targets: int,
    seed: int,
    nodes: int = 2,
    faults: Iterable[Fault] = (),
    settings: Settings | None = None,
    density: float = 1.0,
) -> dict[str, Any]:
    """Run one simulated world and return its report. Same arguments, same report."""
    # Loaded here, not with the package: every `ravens` command (a node's
    # start too) names the faults, and only `ravens simulate` runs them.
    from consensus.simulation.report import build
    from consensus.simulation.runner import Simulation

    settings = settings or Settings()
    scenario = generate(seed, days, targets, nodes, faults, density)
    record = Simulation(scenario, seed, settings).run()
    report = build(scenario, record, settings)
    report["seed"] = seed
    report["nodes"] = nodes
    report["targets"] = targets
    report["faults"] = sorted(f.value for f in scenario.faults)
    return report
