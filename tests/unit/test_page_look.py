"""The status page's two themes keep text readable: WCAG contrast of every
text colour against the background, read from the template itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

BASE = (Path(__file__).parents[2] / "watchers" / "templates" / "base.html").read_text()
TEXT_COLOURS = ("fg", "dim", "accent", "cyan", "UP", "DOWN", "PARTIAL", "FLAPPING",
                "MAINTENANCE", "UNKNOWN")  # fmt: skip


def palette(selector: str) -> dict[str, str]:
    block = re.search(re.escape(selector) + r"\s*\{(.*?)\}", BASE, re.S)
    assert block is not None, selector
    return dict(re.findall(r"--([A-Za-z0-9]+):\s*(#[0-9a-fA-F]{6})", block.group(1)))


def luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("selector", [":root", "body.plain"])
def test_every_text_colour_reads_against_the_background(selector: str) -> None:
    colours = palette(selector)
    for name in TEXT_COLOURS:
        for ground in ("bg", "panel"):
            ratio = contrast(colours[name], colours[ground])
            assert ratio >= 4.5, f"{selector} --{name} on --{ground}: {ratio:.2f}:1"


def test_motion_is_dropped_for_those_who_ask() -> None:
    assert "@media (prefers-reduced-motion: reduce)" in BASE
    assert "animation: none !important" in BASE


@pytest.mark.parametrize("selector", [":root", "body.plain"])
def test_each_nodes_chart_line_stands_out_from_the_background_and_the_other(
    selector: str,
) -> None:
    """Lines are graphics: WCAG asks 3:1 against what surrounds them."""
    colours = palette(selector)
    for line in ("node0", "node1"):
        ratio = contrast(colours[line], colours["bg"])
        assert ratio >= 3, f"{selector} --{line} on --bg: {ratio:.2f}:1"
    assert colours["node0"] != colours["node1"]
