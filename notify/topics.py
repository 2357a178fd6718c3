"""What ntfy accepts as a topic name: the config refuses the rest before
a post ever gets ntfy's 400."""

from __future__ import annotations

import re

TOPIC = re.compile(r"^[-_A-Za-z0-9]{1,64}$")
# Names ntfy keeps for its own pages and API (refused with 40010).
RESERVED = frozenset(
    {"docs", "static", "file", "app", "metrics", "account", "settings", "signup", "login", "v1"}
)


def not_reserved(name: str) -> str:
    """name, unless ntfy reserves it; ValueError saying so."""
    if name in RESERVED:
        raise ValueError(
            f"ntfy reserves the topic name {name!r} for its own pages "
            f"({', '.join(sorted(RESERVED))}): choose another"
        )
    return name
