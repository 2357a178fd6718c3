"""Where a check failed, on a pair in this process (fake clock): each HTTP
check keeps its phase timings with its raw check, each node shows them on
the target page, the incident names each node's failing phase, and the DOWN
notification quotes it once ("same" for the second node)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.integration.fakepair import NAMES, Pair, World, run_pair
from tests.integration.notify_world import Switch

BLOG = """
[[targets]]
id = "blog"
kind = "http"
url = "http://127.0.0.1:{port}/"
"""
# What the switched-off site answers, in the words of the failing phase.
REFUSAL = "status 503"


def test_the_failing_phase_reaches_the_page_the_incident_and_the_notification(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    switch, port = site

    async def work(pair: Pair) -> None:
        async def views(asked: str = "huginn") -> dict[str, Any]:
            found: dict[str, Any] = (await pair.get(asked, "/api/v1/targets/blog")).json()
            return found["views"]

        async def both_checked() -> bool:
            seen = await views()
            return all(seen[name]["phases"] for name in NAMES)

        await pair.run_until(both_checked, "huginn shows both nodes' checks", 60)
        for name, view in (await views()).items():
            assert {"dns_ms", "connect_ms", "first_byte_ms", "total_ms"} <= set(view["phases"])
            assert "failed_phase" not in view["phases"], name
        switch.down = True
        await pair.run_until(pair.both("blog", "DOWN"), "both agree blog is DOWN", 120)
        await pair.run_until(lambda: len(pair.inbox.all()) == 1, "the DOWN is posted", 120)
        (down,) = pair.inbox.all()
        lines = str(down["message"]).splitlines()
        huginn = next(line for line in lines if line.startswith("- huginn: DOWN: "))
        muninn = next(line for line in lines if line.startswith("- muninn: DOWN: "))
        assert huginn.startswith(f"- huginn: DOWN: {REFUSAL}")
        assert muninn.startswith("- muninn: DOWN: same")

        # Each node shows the other's phases too (sync carries them, with the
        # next pull after the verdict).
        async def failed_in_status() -> bool:
            for asked in NAMES:
                seen = await views(asked)
                if not all(
                    (seen[n]["phases"] or {}).get("failed_phase") == "status" for n in NAMES
                ):
                    return False
            return True

        await pair.run_until(failed_in_status, "both nodes show both failing phases", 60)
        for asked in NAMES:
            assert {v["reason"] for v in (await views(asked)).values()} == {REFUSAL}
        incidents = (await pair.get("muninn", "/api/v1/incidents?target=blog")).json()
        (incident,) = [i for i in incidents["incidents"] if i["state"] == "DOWN"]
        assert incident["why"] == dict.fromkeys(NAMES, REFUSAL)

        page = (await pair.get("huginn", "/t/blog")).text
        assert "where the time went" in page and "(failed: status)" in page
        assert "first byte" in page
        assert f"huginn: {REFUSAL}; muninn: same" in page

        # The raw check keeps its phases: the node's own database.
        rows = await pair.nodes["huginn"].store.recent_checks("blog", limit=1)
        assert rows[0].details is not None and rows[0].details["failed_phase"] == "status"
        assert float(rows[0].details["first_byte_ms"]) >= 0

    run_pair(tmp_path, World(BLOG.format(port=port)), work)
