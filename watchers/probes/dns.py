"""DNS: a resolver answers for a name, with the expected record if one is given."""

from __future__ import annotations

import time
from typing import Literal

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
from pydantic import Field, IPvAnyAddress

from watchers.probes.base import CheckResult, TargetBase, seconds

RecordType = Literal["A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "SRV", "CAA"]


class DnsTarget(TargetBase):
    kind: Literal["dns"]
    query: str = Field(min_length=1, max_length=253, description="the name to resolve")
    record_type: RecordType = "A"
    resolver: IPvAnyAddress
    port: int = Field(default=53, ge=1, le=65_535)
    expect: str | None = Field(default=None, description="text one answer must contain")


async def probe_dns(target: DnsTarget, timeout_s: float) -> CheckResult:
    query = dns.message.make_query(target.query, dns.rdatatype.from_text(target.record_type))
    where = str(target.resolver)
    started = time.perf_counter()
    try:
        response = await dns.asyncquery.udp(query, where, timeout=timeout_s, port=target.port)
        if response.flags & dns.flags.TC:
            response = await dns.asyncquery.tcp(query, where, timeout=timeout_s, port=target.port)
    except dns.exception.Timeout:
        return CheckResult(False, None, f"no answer after {seconds(timeout_s)}")
    except (OSError, dns.exception.DNSException) as exc:
        return CheckResult(False, _ms(started), f"resolver error: {exc}"[:160])
    latency = _ms(started)
    rcode = response.rcode()
    if rcode != dns.rcode.NOERROR:
        return CheckResult(False, latency, f"rcode {dns.rcode.to_text(rcode)}")
    answers = [
        rdata.to_text()
        for rrset in response.answer
        if rrset.rdtype == dns.rdatatype.from_text(target.record_type)
        for rdata in rrset
    ]
    if not answers:
        return CheckResult(False, latency, f"no {target.record_type} record")
    if target.expect is not None and not any(target.expect in a for a in answers):
        return CheckResult(False, latency, f"answer {answers[0]!r} lacks {target.expect!r}")
    return CheckResult(True, latency, f"{target.record_type} {answers[0]}"[:160])


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
