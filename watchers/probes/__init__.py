"""Probe kinds: one module each, one registry here.

Adding a kind means a module with its target model and probe function, one
line in ``KINDS`` and its model in ``AnyTarget``; a test checks that the two
agree and that every kind is complete.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from watchers.probes.base import CheckResult, TargetBase, seconds
from watchers.probes.dns import DnsTarget, probe_dns
from watchers.probes.http import HttpClients, HttpTarget, probe_http
from watchers.probes.icmp import IcmpTarget, probe_icmp
from watchers.probes.push import PushTarget, judge_push
from watchers.probes.reach import Reach, url_host
from watchers.probes.tcp import TcpTarget, probe_tcp


@dataclass
class ProbeContext:
    """What probes share on one node: the HTTP clients and the last push
    heartbeat per target (from the log, whichever node received it)."""

    http: HttpClients
    last_push_ms: Callable[[str], int | None]
    now_ms: Callable[[], int]
    # When this node began watching a target (added, or the node started).
    watched_since_ms: Callable[[str], int] = lambda _target: 0


async def _http(
    target: Any, ctx: ProbeContext, timeout_s: float, reach: Reach | None = None
) -> CheckResult:
    return await probe_http(target, ctx.http, timeout_s, reach)


async def _tcp(target: Any, _ctx: ProbeContext, timeout_s: float) -> CheckResult:
    return await probe_tcp(target, timeout_s)


async def _dns(target: Any, _ctx: ProbeContext, timeout_s: float) -> CheckResult:
    return await probe_dns(target, timeout_s)


async def _icmp(target: Any, _ctx: ProbeContext, timeout_s: float) -> CheckResult:
    return await probe_icmp(target, timeout_s)


async def _push(target: Any, ctx: ProbeContext, _timeout_s: float) -> CheckResult:
    now = ctx.now_ms()
    return judge_push(target, ctx.last_push_ms(target.id), now, ctx.watched_since_ms(target.id))


Probe = Callable[[Any, ProbeContext, float], Awaitable[CheckResult]]


@dataclass(frozen=True)
class Kind:
    model: type[TargetBase]
    probe: Probe


KINDS: dict[str, Kind] = {
    "http": Kind(HttpTarget, _http),
    "tcp": Kind(TcpTarget, _tcp),
    "dns": Kind(DnsTarget, _dns),
    "icmp": Kind(IcmpTarget, _icmp),
    "push": Kind(PushTarget, _push),
}

AnyTarget = HttpTarget | TcpTarget | DnsTarget | IcmpTarget | PushTarget
# The config's target: one of the kinds above, chosen by its "kind" key.
Target = Annotated[AnyTarget, Field(discriminator="kind")]


def hosts_of(target: TargetBase) -> list[tuple[str, str]]:
    """Each host a check of target connects to first, with the key naming it."""
    if isinstance(target, HttpTarget):
        return [("url", url_host(str(target.url)))]
    if isinstance(target, TcpTarget | IcmpTarget):
        return [("host", target.host)]
    if isinstance(target, DnsTarget):
        return [("resolver", str(target.resolver))]
    return []


async def refusal_for(reach: Reach, target: TargetBase) -> tuple[str, str] | None:
    """The key and the reason when a check of target may not connect where it would."""
    for key, host in hosts_of(target):
        reason = await reach.refusal([host])
        if reason is not None:
            return key, reason
    return None


async def run_check(
    target: TargetBase, ctx: ProbeContext, timeout_s: float, reach: Reach | None = None
) -> CheckResult:
    """One check of any kind. A down target is a result, never an exception.

    reach: for a target added through the admin API, where it may connect
    (every hop of a redirect too); its reasons then quote nothing of a body."""
    if reach is not None and isinstance(target, HttpTarget):
        return await _http(target, ctx, timeout_s, reach)  # judges every hop
    if reach is not None:
        try:
            async with asyncio.timeout(timeout_s):
                refused = await refusal_for(reach, target)
        except TimeoutError:
            return CheckResult(False, None, f"timeout after {seconds(timeout_s)}")
        if refused is not None:
            return CheckResult(False, None, refused[1])
    kind = KINDS[target.kind]
    return await kind.probe(target, ctx, timeout_s)


__all__ = [
    "KINDS",
    "AnyTarget",
    "CheckResult",
    "HttpClients",
    "ProbeContext",
    "Reach",
    "Target",
    "refusal_for",
    "run_check",
]
