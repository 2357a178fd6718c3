"""Small SVG badges in the shields.io style: a grey label, a coloured value.

Pure string building; every text is escaped. Widths come from a rough table
of Verdana 11 px advances, as shields.io measures them, close enough to keep
the text inside its box.
"""

from __future__ import annotations

from html import escape

COLOURS = {
    "UP": "#3c1",
    "DOWN": "#e05d44",
    "PARTIAL": "#dfb317",
    "FLAPPING": "#fe7d37",
    "MAINTENANCE": "#007ec6",
    "UNKNOWN": "#9f9f9f",
}
NARROW = set("fijlrt.,:;|!'() ")
WIDE = set("mwMW@%")


def text_width(text: str) -> int:
    return sum(4 if c in NARROW else 10 if c in WIDE else 7 for c in text)


def badge(label: str, value: str, colour: str) -> str:
    left = text_width(label) + 10
    right = text_width(value) + 10
    total = left + right
    label_x, value_x = left * 5, (left + right / 2) * 10
    title = escape(f"{label}: {value}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{title}"><title>{title}</title>'
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" '
        'stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{escape(colour)}"/>'
        f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" '
        'font-size="110" text-rendering="geometricPrecision">'
        f'<text x="{label_x}" y="140" transform="scale(.1)">{escape(label)}</text>'
        f'<text x="{value_x:.0f}" y="140" transform="scale(.1)">{escape(value)}</text>'
        "</g></svg>"
    )


def status_badge(label: str, state: str) -> str:
    return badge(label, state.lower(), COLOURS.get(state, COLOURS["UNKNOWN"]))


def uptime_badge(window: str, percent: float | None) -> str:
    if percent is None:
        return badge(f"uptime {window}", "no data", COLOURS["UNKNOWN"])
    colour = (
        "#4c1"
        if percent >= 99.9
        else "#97ca00"
        if percent >= 99
        else "#dfb317"
        if percent >= 95
        else "#e05d44"
    )
    shown = f"{percent:.2f}%" if percent < 100 else "100%"
    return badge(f"uptime {window}", shown, colour)


def latency_badge(latency_ms: float | None) -> str:
    if latency_ms is None:
        return badge("latency", "no data", COLOURS["UNKNOWN"])
    colour = "#4c1" if latency_ms < 300 else "#dfb317" if latency_ms < 1000 else "#e05d44"
    return badge("latency", f"{latency_ms:.0f} ms", colour)
