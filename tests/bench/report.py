"""The benchmark's figures as Markdown: one part after another, then each
goal met or missed with its figure."""

from __future__ import annotations

from typing import Any

Goal = tuple[str, str, bool]


def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


# Checks per core-second, ravens (on the node's loop) / the blackbox exporter.
THROUGHPUT_GOALS = {"http": 2.0, "https": 1.5, "tcp": 3.0}


def throughput(t: dict[str, Any], goals: list[Goal]) -> list[str]:
    loops = t.get("loops", [None])
    out = [f"### 1. Probe throughput on one core (target: {t['target']} on the other core; "
           f"HTTPS: {t.get('tls_target', 'not measured: it needs nginx')}; "
           f"DNS: {t.get('dns_server', 'not measured')}; ICMP: loopback)", "",
           "| prober | kind | checks/s | CPU µs per check | CPU used | RSS MB | failed |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    kinds = ("http", "https", "tcp", "dns", "icmp")
    for kind in kinds:
        rows = [(f"ravens ({loop})" if loop else "ravens", _ravens(t, kind, loop))
                for loop in loops]  # fmt: skip
        rows.append(("blackbox exporter", t.get(f"blackbox_{kind}")))
        if kind == "https" and t.get("floor_https"):
            rows.append(("TLS alone, blocking (the floor)", t["floor_https"]))
        for who, row in rows:
            if row is None:
                out.append(f"| {who} | {kind} | not measured | | | | |")
                continue
            out.append(f"| {who} | {kind} | {_n(row['checks_per_s'])} | "
                       f"{_n(row['cpu_us_per_check'])} | {row['cpu_share']:.0%} | "
                       f"{_n(row['rss_mb'])} | {row['failed']} |")  # fmt: skip
    out.append("")
    for kind in kinds:
        theirs = t.get(f"blackbox_{kind}")
        if not theirs:
            continue
        for loop in loops:
            mine = _ravens(t, kind, loop)
            if mine is None:
                continue
            on = f" on {loop}" if loop else ""
            ours, exporters = _per_core(mine), _per_core(theirs)
            if ours is None or exporters is None:
                out += [f"{kind.upper()} checks per core-second, ravens{on} / blackbox exporter: "
                        f"not measured (a prober used less CPU than one clock tick; run longer "
                        f"with --seconds)", ""]  # fmt: skip
                continue
            ratio = ours / exporters
            out += [f"{kind.upper()} checks per core-second, ravens{on} / blackbox exporter: "
                    f"**{ratio:.2f}**", ""]  # fmt: skip
            if loop == loops[0] and kind in THROUGHPUT_GOALS:
                goal = THROUGHPUT_GOALS[kind]
                what = f"{kind.upper()} checks per core-second, ravens{on} / blackbox exporter"
                goals.append((f"{what}, at least {goal:g}", f"{ratio:.2f}", ratio >= goal))
    return [*out, *_tls_floor(t)]


def _tls_floor(t: dict[str, Any]) -> list[str]:
    """What OpenSSL alone costs per HTTPS check bounds the ratio any Python
    prober on this machine can reach against the exporter (Go's own TLS)."""
    floor, theirs = t.get("floor_https"), t.get("blackbox_https")
    if not floor or not theirs:
        return []
    floor_rate, their_rate = _per_core(floor), _per_core(theirs)
    if floor_rate is None or their_rate is None:
        return []
    best = floor_rate / their_rate
    return [f"The floor: the same request over the same verifying TLS context on blocking "
            f"sockets, with no event loop and no HTTP parsing, costs "
            f"{floor['cpu_us_per_check']:,.0f} µs of CPU per check; a prober that paid "
            f"nothing but OpenSSL's handshake and the socket calls would reach "
            f"**{best:.2f}** times the exporter on HTTPS.", ""]  # fmt: skip


def _ravens(t: dict[str, Any], kind: str, loop: str | None) -> dict[str, Any] | None:
    """A ravens row; runs from before loops were measured have one per kind."""
    row = t.get(f"ravens_{kind}_{loop}") if loop else t.get(f"ravens_{kind}")
    return row


def _per_core(row: dict[str, Any]) -> float | None:
    """Checks per core-second; none when the CPU used rounds to zero ticks
    (a short quick run on a fast machine), rather than a division by zero."""
    if row["cpu_share"] <= 0:
        return None
    return float(row["checks_per_s"] / row["cpu_share"])


def schedule(rows: list[dict[str, Any]], goals: list[Goal]) -> list[str]:
    out = ["### 2. The schedule at scale (one node on one core, every target every 60 s)", "",
           "| targets | minutes | checks | late p50 ms | late p99 ms | late max ms "
           "| mean interval s | CPU | RSS MB |",
           "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for s in rows:
        out.append(f"| {_n(s['targets'])} | {s['minutes']:g} | {_n(s['checks'])} | "
                   f"{_n(s['late_p50_ms'], 1)} | {_n(s['late_p99_ms'], 1)} | "
                   f"{_n(s['late_max_ms'], 1)} | {s['mean_interval_s']:.3f} "
                   f"({s['interval_error_pct']:+.2f} %) | {s['cpu_pct']:.0f} % | "
                   f"{_n(s['rss_mb'])} |")  # fmt: skip
        if s["targets"] >= 10_000:
            late = s["late_p99_ms"]
            ok = late is not None and late < 1000 and abs(s["interval_error_pct"]) < 1
            ok = ok and s["cpu_pct"] < 60 and s["rss_mb"] < 200
            goals.append(("10,000 targets at 60 s on one core: p99 lateness < 1 s, mean "
                          "interval within 1 %, CPU < 60 %, RSS < 200 MB",
                          f"p99 {_n(late, 0)} ms, {s['interval_error_pct']:+.2f} %, "
                          f"{s['cpu_pct']:.0f} %, {s['rss_mb']:.0f} MB", ok))  # fmt: skip
    return [*out, ""]


def catchup(c: dict[str, Any], goals: list[Goal]) -> list[str]:
    if c["targets"] >= 1000:
        goals.append(("sync catch-up after one hour apart, 1,000 targets, under 5 s",
                      f"{c['catch_up_s']:.2f} s", c["catch_up_s"] < 5))  # fmt: skip
    return ["### 3. Sync catch-up after an hour apart", "",
            f"{_n(c['targets'])} targets every 30 s. After the hour huginn's log held "
            f"{_n(c['huginn_log_entries'])} entries (its version {_n(c['huginn_own_version'])}), "
            f"muninn's {_n(c['muninn_log_entries'])} (version {_n(c['muninn_own_version'])}). "
            f"Each held what the other wrote **{c['catch_up_s']:.2f} s** after the heal; "
            f"{_n(c['bytes_to_huginn'])} bytes went towards huginn and "
            f"{_n(c['bytes_to_muninn'])} towards muninn (requests and answers).", ""]  # fmt: skip


def storage(st: dict[str, Any], goals: list[Goal]) -> list[str]:
    year = st["year_bytes_per_1000_targets"]
    goals.append(("database for 1,000 targets after a year under 1 GB",
                  f"{year / 2**30:.2f} GB", year < 2**30))  # fmt: skip
    return ["### 4. Storage", "",
            f"A check a minute costs **{_n(st['bytes_per_target_day'] / 1024, 1)} KB per "
            "target-day** (the raw check, its index entry, the rollups). After a year, with raw "
            f"checks kept {st['raw_retention_days']} days and hourly rollups "
            f"{st['hourly_retention_days']} days, the database held "
            f"{_n(st['year_bytes'] / 2**20, 1)} MB for {st['targets']} targets: "
            f"**{year / 2**30:.2f} GB for 1,000 targets**.", ""]  # fmt: skip


def api(a: dict[str, Any], goals: list[Goal]) -> list[str]:
    out = [f"### 5. The API under load ({_n(a['target_count'])} targets; {a['requests']} "
           "sequential requests each, at most 20 a second, from another process)", "",
           "| request | p50 ms | p99 ms |", "| --- | ---: | ---: |"]  # fmt: skip
    for name in ("targets", "history_90d_daily", "history_90d_hourly", "uptime_90d",
                 "status_page", "target_page", "metrics"):  # fmt: skip
        out.append(f"| {name} | {a[name]['p50_ms']:.1f} | {a[name]['p99_ms']:.1f} |")
    history = max(a["history_90d_daily"]["p50_ms"], a["uptime_90d"]["p50_ms"])
    goals.append(("90-day uptime and (daily) history for one target under 5 ms p50",
                  f"{history:.1f} ms", history < 5))  # fmt: skip
    goals.append(("/api/v1/targets with 1,000 targets under 50 ms p50",
                  f"{a['targets']['p50_ms']:.1f} ms", a["targets"]["p50_ms"] < 50))  # fmt: skip
    for name, what, limit in (("status_page", "the status page", 20),
                              ("metrics", "/metrics", 20),
                              ("target_page", "one target's page", 10)):  # fmt: skip
        p50 = a[name]["p50_ms"]
        goals.append((f"{what} with 1,000 targets under {limit} ms p50", f"{p50:.1f} ms",
                      p50 < limit))  # fmt: skip
    return [*out, ""]


def detection(d: dict[str, Any], goals: list[Goal]) -> list[str]:
    ok = d["max_s"] is not None and d["p95_s"] < 25 and d["max_s"] < 40
    goals.append(("detection to notification at a 30 s interval: p95 < 25 s, max < 40 s",
                  f"p95 {_n(d['p95_s'], 1)} s, max {_n(d['max_s'], 1)} s", ok))  # fmt: skip
    return ["### 6. Detection to notification (a real pair on loopback, every 30 s)", "",
            f"{d['notified']} of {d['outages']} outages notified; from the target going down "
            f"to the ntfy test server receiving its DOWN: p50 {_n(d['p50_s'], 1)} s, "
            f"p95 {_n(d['p95_s'], 1)} s, max {_n(d['max_s'], 1)} s (ntfy stamps whole "
            "seconds).", ""]  # fmt: skip


def flood(f: dict[str, Any], goals: list[Goal]) -> list[str]:
    late, health = f["lateness_last_minute_p99_ms"], f["healthz_ms"]
    lags = ", ".join(f"{k.replace('_from_', ' from ')} {_n(v / 1000, 1)} s"
                     for k, v in f["sync_lag_max_ms"].items())  # fmt: skip
    goals.append(("under 200 anonymous clients: check lateness p99 (last minute) under 1 s",
                  f"{_n(late)} ms", late is not None and late < 1000))  # fmt: skip
    goals.append(("under 200 anonymous clients: /healthz under 100 ms (p99)",
                  f"p99 {_n(health['p99'], 1)} ms, max {_n(health['max'], 1)} ms",
                  health["p99"] < 100 and not health["failed"]))  # fmt: skip
    goals.append(("under 200 anonymous clients: peak RSS under the unit's MemoryMax",
                  f"{_n(f['peak_rss_mb'], 1)} MB of {f['memory_max_mb']} MB",
                  f["peak_rss_mb"] < f["memory_max_mb"]))  # fmt: skip
    goals.append(("under 200 anonymous clients: peer sync never misses",
                  f"{f['sync_misses']} misses; {lags}", f["sync_misses"] == 0))  # fmt: skip
    return [f"### 7. Anonymous load ({_n(f['targets'])} targets on a pair; {f['clients']} "
            f"clients at once on every open path of one node for {f['seconds']:g} s)", "",
            "| figure | value |", "| --- | --- |",
            f"| requests | {_n(f['requests'])}: {_n(f['answered'])} answered, "
            f"{_n(f['shed_503'])} shed with 503, other {f['other'] or 'none'} |",
            f"| answer time, answered: p50 / p99 | {_n(f['answer_ms']['p50'], 1)} / "
            f"{_n(f['answer_ms']['p99'], 1)} ms |",
            f"| /healthz every 100 ms: p50 / p99 / max | {_n(health['p50'], 1)} / "
            f"{_n(health['p99'], 1)} / {_n(health['max'], 1)} ms ({health['failed']} failed) |",
            f"| check lateness, last minute: p99 / max | {_n(late)} / "
            f"{_n(f['lateness_last_minute_max_ms'])} ms |",
            f"| peak RSS of the loaded node | {_n(f['peak_rss_mb'], 1)} MB |",
            f"| sync lag, max | {lags} |", ""]  # fmt: skip


PARTS = {"throughput": throughput, "schedule": schedule, "catchup": catchup,
         "storage": storage, "api": api, "detection": detection, "flood": flood}  # fmt: skip


def report(found: dict[str, Any], where: str, command: str) -> str:
    out = [f"Machine: {where}", "", f"Command: `{command}`", ""]
    goals: list[Goal] = []
    for name, part in PARTS.items():
        if name in found:
            out += part(found[name], goals)
    if goals:
        out += ["### Goals", "", "| goal | figure | |", "| --- | --- | --- |"]
        out += [f"| {g} | {f} | {'met' if ok else '**missed**'} |" for g, f, ok in goals]
        out.append("")
    return "\n".join(out)
