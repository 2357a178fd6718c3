"""Where an HTTP check spent its time, and where it failed: DNS, connect,
TLS, first byte, then the status, the body and the latency judged.

Every check records its phase timings beside its result (``dns_ms``,
``connect_ms``, ``tls_ms``, ``first_byte_ms``, ``total_ms``); a failed one
names its phase (``failed_phase``) and says so in its reason, so the two
nodes' reasons compare at a glance ("TLS handshake failed: certificate
expired" on both, or DNS on one and connect on the other).
"""

from __future__ import annotations

import time

# The phases of a request on the wire, in order; each may fail.
WIRE = ("dns", "connect", "tls", "first_byte", "body")
# What a check may fail on after the answer came: judged, not timed.
JUDGED = ("status", "content", "slow")
# Before the wire: a URL no request can use (the target's, or a redirect's).
BEFORE = ("request", "redirect")
PHASES = (*BEFORE, *WIRE, *JUDGED)
# "timeout after 2 s <while>"; "<failed> failed: <why>".
WHILE = {
    "dns": "in the DNS lookup",
    "connect": "connecting",
    "tls": "in the TLS handshake",
    "first_byte": "waiting for the first byte",
    "body": "reading the body",
}
FAILED = {
    "dns": "DNS lookup failed",
    "connect": "connect failed",
    "tls": "TLS handshake failed",
    "first_byte": "no answer",
    "body": "body unreadable",
}
TIMED = ("dns", "connect", "tls", "first_byte")
# Phase timing keys a check's details may hold, and the peer may send.
KEYS = (*(f"{phase}_ms" for phase in TIMED), "total_ms")


class PhaseClock:
    """Times the phases of one check (over every redirect hop, summed)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.current: str | None = None
        self._since = self.started
        self.spent: dict[str, float] = {}

    def begin(self, phase: str) -> None:
        """The phase now under way; the one before it ends here."""
        now = time.perf_counter()
        if self.current is not None:
            self.spent[self.current] = self.spent.get(self.current, 0.0) + now - self._since
        self.current, self._since = phase, now

    def details(self, failed: str | None = None) -> dict[str, float | int | str]:
        """The timings in milliseconds (and the failed phase, if any)."""
        self.begin("done")
        found: dict[str, float | int | str] = {
            f"{phase}_ms": round(self.spent[phase] * 1000, 2)
            for phase in TIMED
            if phase in self.spent
        }
        found["total_ms"] = round((time.perf_counter() - self.started) * 1000, 2)
        if failed is not None:
            found["failed_phase"] = failed
        return found


def words(details: dict[str, object]) -> str:
    """The timings as a person reads them: 'DNS 1 ms, connect 2 ms, TLS 9 ms,
    first byte 40 ms, total 52 ms'."""
    names = {"dns_ms": "DNS", "connect_ms": "connect", "tls_ms": "TLS",
             "first_byte_ms": "first byte", "total_ms": "total"}  # fmt: skip
    parts = []
    for key, name in names.items():
        value = details.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            parts.append(f"{name} {value:.0f} ms")
    return ", ".join(parts)
