"""Two nodes with different sync secrets: alive and misconfigured, not
partitioned. Each says so (log, API, status, one note) and pages as in a
partition."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from tests.integration.notify_world import World, titles
from tests.integration.processes import NAMES


def test_nodes_with_different_secrets_say_so_and_page_as_in_a_partition(
    make_world: Callable[..., World],
) -> None:
    pair, inbox, switch = make_world(own_secret="muninn")
    note = {f"{peer} refuses this watcher's sync: the sync secrets differ" for peer in NAMES}

    def refused_both_ways() -> bool:
        views = [pair.api(name, "/api/v1/nodes") or {"peers": [{}]} for name in NAMES]
        return all(v["peers"][0].get("refuses_us") == "signature" for v in views)

    pair.wait(refused_both_ways, "each node shows that its peer refuses its signature", 30)
    # Once each has counted the other lost for two minutes, one note per side.
    pair.wait(lambda: note <= set(titles(inbox)), "a note from each side naming the mismatch",
              240)  # fmt: skip
    for name in NAMES:
        log = (pair.root / f"{name}.log").read_text()
        assert log.count("refuses our signature") == 1, name
    # Each side decides alone: an outage is paged, at most once per side.
    switch.down = True
    pair.wait(lambda: titles(inbox).count("blog is DOWN") >= 1, "the outage is paged", 90)
    switch.down = False
    pair.wait(lambda: titles(inbox).count("blog is UP") >= 1, "the recovery is paged", 90)
    assert titles(inbox).count("blog is DOWN") <= 2 and titles(inbox).count("blog is UP") <= 2
    assert [t for t in titles(inbox) if "refuses" in t].count(next(iter(note))) == 1
    status = subprocess.run(
        [sys.executable, "-m", "watchers", "status", "--node", pair.url("huginn", "")],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert "muninn answers but refuses our signature" in status.stdout, status.stdout
