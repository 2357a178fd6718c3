"""ntfy messages, built from events: pure, no I/O.

One message per notice: a title that reads well on a lock screen, a short
markdown body with what each node saw, tags that render as emoji, a
priority per kind, a link to the target's page, and the event id as ntfy's
sequence id so that a rare second copy replaces the first on phones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from consensus.agreement import Mode, Notice
from consensus.events import Event
from consensus.keys import subject_node
from consensus.lww import JsonValue

# ntfy turns a message of 4,096 bytes or more into an attachment, or refuses
# it; stay well under.
MAX_BODY_BYTES = 3_000
MAX_REASON_CHARS = 160

DEFAULT_PRIORITY: dict[Notice, int] = {
    Notice.DOWN: 5,
    Notice.UP: 3,
    Notice.PARTIAL_LASTING: 2,
    Notice.FLAPPING_STARTED: 2,
    Notice.FLAPPING_SETTLED: 2,
    Notice.NODE_ISOLATED: 2,
    Notice.PEER_LOST: 2,
    Notice.PEER_BACK: 2,
    Notice.CLOCK_JUMPED: 2,
    Notice.STILL_DOWN: 4,
    Notice.TLS_EXPIRING: 3,
    Notice.DOMAIN_EXPIRING: 3,
    Notice.ESCALATED: 5,
    Notice.WEEKLY_REPORT: 2,
}
# Old news gathered into one message wakes nobody.
SUMMARY_PRIORITY = 3
SUMMARY_LINES = 30

TAGS: dict[Notice, tuple[str, ...]] = {
    Notice.DOWN: ("rotating_light",),
    Notice.UP: ("white_check_mark",),
    Notice.PARTIAL_LASTING: ("warning",),
    Notice.FLAPPING_STARTED: ("warning",),
    Notice.FLAPPING_SETTLED: ("white_check_mark",),
    Notice.NODE_ISOLATED: ("warning",),
    Notice.PEER_LOST: ("warning",),
    Notice.PEER_BACK: ("white_check_mark",),
    Notice.CLOCK_JUMPED: ("alarm_clock", "warning"),
    Notice.STILL_DOWN: ("rotating_light", "repeat"),
    Notice.TLS_EXPIRING: ("lock", "warning"),
    Notice.DOMAIN_EXPIRING: ("globe_with_meridians", "warning"),
    Notice.ESCALATED: ("rotating_light", "sos"),
    Notice.WEEKLY_REPORT: ("bar_chart",),
}


@dataclass(frozen=True, slots=True)
class Subject:
    """How a target is named and linked in messages."""

    label: str
    page_url: str | None = None
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class Style:
    topic: str
    priority: Mapping[Notice, int] = field(default_factory=lambda: dict(DEFAULT_PRIORITY))


def build(
    event: Event,
    subject: Subject,
    style: Style,
    actions: Sequence[Mapping[str, object]] = (),
) -> dict[str, object]:
    """The JSON body of one ntfy publish request, with its buttons if any."""
    title, body = _words(event, subject)
    priority = style.priority.get(event.notice, 3)
    tags = list(TAGS[event.notice])
    if event.notice is Notice.FLAPPING_SETTLED and event.state == "DOWN":
        tags = ["rotating_light"]
        priority = style.priority.get(Notice.DOWN, 5)
    if event.mode is Mode.SINGLE_VANTAGE and subject_node(event.subject) is None:
        tags.append("single_vantage")
    message: dict[str, object] = {
        "topic": subject.topic or style.topic,
        "title": title,
        "message": _cap(body),
        "priority": priority,
        "tags": tags,
        "markdown": True,
        "sequence_id": event.id,
    }
    if subject.page_url:
        message["click"] = subject.page_url
    if actions:
        message["actions"] = [dict(a) for a in actions]
    return message


def _words(event: Event, subject: Subject) -> tuple[str, str]:
    label = subject.label
    # The body is markdown: a label is shown as written, never read as a link.
    md = _escape(label)
    since = _when(event.at_ms)
    seen = _views(event)
    alone = _single_vantage_line(event)
    notice = event.notice
    family = _family_lines(event)
    grouped = _group_words(event, since, seen)
    if grouped is not None:
        return grouped
    if notice is Notice.DOWN:
        fell = event.detail.get("children_down")
        total = event.detail.get("children")
        title = f"{label} is DOWN"
        if isinstance(fell, list) and fell and isinstance(total, int):
            title += f" with {len(fell)} of {total} targets on it"
        return title, f"**{md}** is down since {since}.\n\n{family}{seen}{alone}"
    if notice is Notice.UP and event.previous == "PARTIAL":
        # Never down for everyone: the sides agree again, nothing came back.
        lasted = _duration(event.previous_since_ms, event.at_ms)
        spell = f" after {lasted} seen down from one side only" if lasted else ""
        return (
            f"{label}: all sides agree it is UP",
            f"**{md}** is seen up from every node again{spell}, since {since}.\n\n{seen}",
        )
    if notice is Notice.UP:
        lasted = _duration(event.previous_since_ms, event.at_ms)
        after = f" after {lasted} down" if lasted else ""
        return (
            f"{label} is UP",
            f"**{md}** is back{after}, since {since}.\n\n{family}{seen}{alone}",
        )
    if notice is Notice.PARTIAL_LASTING:
        down = [n for n, v in event.views.items() if v.get("state") == "DOWN"]
        where = ", ".join(down) or "one side"
        return (
            f"{label}: down from {where} only",
            f"**{md}** has been seen down from {where} only since {since}. The other side "
            f"sees it up, so nobody was paged: likely a network path, not the target.\n\n"
            f"{family}{seen}",
        )
    if notice is Notice.FLAPPING_STARTED:
        return (
            f"{label} is flapping",
            f"**{md}** keeps changing state since {since}. Further changes are not "
            f"announced until it settles.\n\n{seen}",
        )
    if notice is Notice.FLAPPING_SETTLED:
        return (
            f"{label} settled: {event.state}",
            f"**{md}** stopped flapping and is **{event.state}** since {since}.\n\n{seen}",
        )
    if notice is Notice.STILL_DOWN:
        down_for = event.detail.get("down_for_ms")
        lasted = _duration(0, down_for) if isinstance(down_for, int) else None
        return (
            f"{label} is still DOWN",
            f"**{md}** is still down, for {lasted or 'a while'} now (since {since}).\n\n"
            f"{seen}{alone}",
        )
    if notice is Notice.ESCALATED:
        down_for = event.detail.get("down_for_ms")
        lasted = _duration(0, down_for) if isinstance(down_for, int) else None
        incident = event.detail.get("incident")
        return (
            f"Unacknowledged: {label} is DOWN",
            f"**{md}** has been down for {lasted or 'a while'} (since {since}) and nobody "
            f"acknowledged it. First notification: `{incident}`.\n\n{seen}{alone}",
        )
    if notice is Notice.TLS_EXPIRING:
        return _tls_words(event, label)
    if notice is Notice.DOMAIN_EXPIRING:
        return _domain_words(event)
    if notice is Notice.WEEKLY_REPORT:
        return _report_words(event)
    node = subject_node(event.subject) or event.subject
    if notice is Notice.NODE_ISOLATED:
        return (
            f"{node} lost its own network",
            f"Watcher **{node}** is running but cannot reach the outside world since {since}. "
            "It abstains; the other watcher decides alone. No target alarms from it.",
        )
    if notice is Notice.PEER_LOST and event.detail.get("refused") == "signature":
        return (
            f"{node} refuses this watcher's sync: the sync secrets differ",
            f"Watcher **{node}** answers, but refuses every sync request as badly signed "
            f"since {since}: the two watchers do not share `[sync] secret_file`. Each "
            "decides alone (single vantage), as in a partition, so a transition may be "
            "notified once from each side until the secrets match.",
        )
    if notice is Notice.PEER_LOST:
        return (
            f"{node} is unreachable",
            f"Watcher **{node}** has not been heard from since {since}: its network is down, "
            "or the path between the watchers is cut. The other watcher decides alone "
            "(single vantage) until it is back.",
        )
    if notice is Notice.CLOCK_JUMPED:
        return _clock_words(event, node, since)
    return f"{node} is back", f"Watcher **{node}** is heard from again and votes again."


def _group_words(event: Event, since: str, seen: str) -> tuple[str, str] | None:
    """A page that tells of a whole tag group: the tag, how many, the list."""
    tag = event.detail.get("group")
    members = event.detail.get("group_members")
    size = event.detail.get("group_size")
    if not isinstance(tag, str) or not isinstance(members, list) or not isinstance(size, int):
        return None
    if not members:
        return None
    names = "".join(f"- {_escape(str(m))}\n" for m in members)
    if event.notice is Notice.PARTIAL_LASTING:
        return (
            f"{tag}: {len(members)} of {size} targets down from one side only",
            f"**{len(members)} of {size}** targets tagged **{_escape(tag)}** have been seen "
            f"down from one side only, the first since {since}. The other side sees them "
            f"up, so nobody was paged: likely a network path.\n\n{names}\n{seen}",
        )
    if event.notice is Notice.DOWN:
        return (
            f"{tag}: {len(members)} of {size} targets DOWN",
            f"**{len(members)} of {size}** targets tagged **{_escape(tag)}** went down "
            f"together, the first since {since} (down longest first):\n\n{names}\n"
            f"How {_escape(str(members[0]))} was seen:\n\n{seen}",
        )
    still = event.detail.get("group_still_down")
    down = [str(s) for s in still] if isinstance(still, list) else []
    title = f"{tag}: {len(members)} of {size} targets UP"
    rest = "All of the group are up again."
    if down:
        title += f", {len(down)} still down"
        rest = f"Still down ({len(down)}): {', '.join(_escape(d) for d in down)}."
    return title, f"Back up together, since {since}:\n\n{names}\n{rest}"


def _report_words(event: Event) -> tuple[str, str]:
    """The week in a few lines: uptime, per tag, the worst, the watchers."""
    d = event.detail
    start, end = d.get("week_start_ms"), d.get("week_end_ms")
    start_ms = start if isinstance(start, int) else None
    end_ms = end if isinstance(end, int) else None
    week = f"{_when(start_ms)[:10]} to {_when(end_ms)[:10]}"
    up = _percent(d.get("uptime_pct"))
    outages = d.get("outages")
    down_s = d.get("down_s")
    down = _duration(0, down_s * 1000) if isinstance(down_s, int) and down_s else None
    title = f"Weekly report: {up} up, {outages} outage{'' if outages == 1 else 's'}"
    lines = [
        f"Week of {week} (UTC), {d.get('targets')} targets: **{up}** up, {outages} "
        f"outage{'' if outages == 1 else 's'}" + (f", {down} down in all." if down else "."),
    ]
    by_tag = _dicts(d.get("by_tag"))
    if by_tag:
        lines.append("\nUptime by tag:")
        lines += [f"- {_escape(str(t.get('tag')))} ({t.get('targets')}): "
                  f"{_percent(t.get('uptime_pct'))}" for t in by_tag]  # fmt: skip
    worst = _dicts(d.get("worst"))
    if worst:
        lines.append("\nThe worst:")
        for w in worst:
            lost = w.get("down_s")
            lasted = _duration(0, lost * 1000) if isinstance(lost, int) else None
            lines.append(f"- {_escape(str(w.get('target')))}: {_percent(w.get('uptime_pct'))}"
                         + (f", {lasted} down" if lasted else ""))  # fmt: skip
    pair = d.get("pair")
    lines.append("\nThe watchers:")
    if isinstance(pair, dict) and pair:
        for node, health in sorted(pair.items()):
            times = health.get("times") if isinstance(health, dict) else None
            cut = health.get("cut_off_s") if isinstance(health, dict) else None
            lasted = _duration(0, cut * 1000) if isinstance(cut, int) and cut else None
            lines.append(f"- {_escape(node)}: cut off {times} time{'' if times == 1 else 's'}"
                         + (f", {lasted} in all" if lasted else ""))  # fmt: skip
    else:
        lines.append("- both watched all week, never cut off.")
    return title, "\n".join(lines)


def _percent(value: object) -> str:
    return f"{value:.3f} %" if isinstance(value, float | int) else "unknown"


def _dicts(value: object) -> list[dict[str, JsonValue]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _family_lines(event: Event) -> str:
    """A parent's page: which of the targets that depend on it are down."""
    down = event.detail.get("children_down")
    total = event.detail.get("children")
    if not isinstance(down, list) or not isinstance(total, int):
        return ""
    names = ", ".join(_escape(str(d)) for d in down)
    if event.notice is Notice.DOWN:
        return f"Down with it ({len(down)} of {total}): {names}.\n\n" if down else ""
    if event.notice is Notice.PARTIAL_LASTING:
        return f"Seen down with it ({len(down)} of {total}): {names}.\n\n" if down else ""
    if down:
        return f"Still down ({len(down)} of {total}): {names}.\n\n"
    return f"All {total} targets that depend on it are up.\n\n"


def _clock_words(event: Event, node: str, since: str) -> tuple[str, str]:
    step = event.detail.get("step_ms")
    ahead = event.detail.get("was_ahead_ms")
    fix = "Check its time sync (chrony, systemd-timesyncd)."
    if isinstance(step, int):
        way = "forward" if step > 0 else "back"
        return (
            f"{node}'s clock jumped {way} {_duration(0, abs(step))}",
            f"The wall clock of watcher **{node}** stepped {way} by {_duration(0, abs(step))} "
            f"at {since}. Its checks, sync and timers kept their pace, and the history it "
            f"stamps is corrected by its targets' clocks. {fix}",
        )
    lasted = _duration(0, ahead) if isinstance(ahead, int) else "a long way"
    return (
        f"{node} started again with its clock behind",
        f"Watcher **{node}** found its last stamp {lasted} ahead of its wall clock at {since} "
        f"(its clock had stepped forward before, or has stepped back). It stamps from its "
        f"wall clock again and its peer merges what it wrote meanwhile. {fix}",
    )


def _tls_words(event: Event, label: str) -> tuple[str, str]:
    detail = event.detail
    threshold = detail.get("threshold_days")
    not_after = detail.get("not_after_ms")
    left = detail.get("days_left")
    days = f"{float(left):.0f}" if isinstance(left, int | float) else f"{threshold}"
    expires = _when(not_after) if isinstance(not_after, int) else "soon"
    return (
        f"{label}: TLS certificate expires in {days} days",
        f"The certificate of **{_escape(label)}** expires on {expires}, in about {days} days "
        f"(threshold: {threshold} days). Renew it before visitors see a warning.",
    )


def _domain_words(event: Event) -> tuple[str, str]:
    detail = event.detail
    domain = str(detail.get("domain") or "a domain")
    threshold = detail.get("threshold_days")
    expires = detail.get("expires_ms")
    left = detail.get("days_left")
    days = f"{float(left):.0f}" if isinstance(left, int | float) else f"{threshold}"
    when = _when(expires) if isinstance(expires, int) else "soon"
    on_it = detail.get("targets")
    names = ", ".join(str(t) for t in on_it[:10]) if isinstance(on_it, list) else ""
    sites = f" Every target on it goes down with it: {_escape(names)}." if names else ""
    return (
        f"{domain}: registration expires in {days} days",
        f"The registration of **{_escape(domain)}** expires on {when}, in about {days} days "
        f"(threshold: {threshold} days), as its registry tells it (RDAP). Renew it.{sites}",
    )


def build_summary(events: Sequence[tuple[Event, Subject]], topic: str) -> dict[str, object]:
    """One message for events too old to send one by one (ntfy was down, or
    this node was), so that a phone does not ring for each stale alert."""
    lines = [
        f"- {_when(event.at_ms)}: {_escape(_title(event, subject))}"
        + (" (single vantage)" if event.mode is Mode.SINGLE_VANTAGE else "")
        for event, subject in events[:SUMMARY_LINES]
    ]
    if len(events) > SUMMARY_LINES:
        lines.append(f"- and {len(events) - SUMMARY_LINES} more on the status page")
    body = (
        f"These {len(events)} notifications could not be sent when they happened; "
        "here they are at once, oldest first. The status page has the current state.\n\n"
        + "\n".join(lines)
    )
    return {
        "topic": topic,
        "title": f"{len(events)} delayed notifications",
        "message": _cap(body),
        "priority": SUMMARY_PRIORITY,
        "tags": ["inbox_tray"],
        "markdown": True,
        "sequence_id": summary_id([event.id for event, _ in events]),
    }


def summary_id(event_ids: Sequence[str]) -> str:
    """The sequence id of the summary of these events, computed again after a crash."""
    digest = hashlib.sha256("\x1f".join(sorted(event_ids)).encode()).hexdigest()
    return "s" + digest[:23]


def _title(event: Event, subject: Subject) -> str:
    return _words(event, subject)[0]


def said_once(reasons: Sequence[str]) -> list[str]:
    """Each reason, or "same" where an earlier one said it already."""
    seen: set[str] = set()
    out = []
    for reason in reasons:
        out.append("same" if reason in seen else reason)
        seen.add(reason)
    return out


def _views(event: Event) -> str:
    """Each node's view; a reason another node gave already reads "same", so
    where the two nodes' checks failed compares at a glance."""
    lines = []
    views = sorted(event.views.items())
    reasons = said_once(
        [str(v.get("reason") or "no check yet")[:MAX_REASON_CHARS] for _, v in views]
    )
    for (node, view), reason in zip(views, reasons, strict=True):
        state = view.get("state") or "UNKNOWN"
        latency = view.get("latency_ms")
        took = f", {float(latency):.0f} ms" if isinstance(latency, int | float) else ""
        checked = view.get("checked_ms")
        at = f" at {_when(checked, seconds=True)}" if isinstance(checked, int) else ""
        voter = "" if view.get("voter", True) else " (not voting)"
        lines.append(f"- {node}{voter}: {state}: {_escape(reason)}{took}{at}")
    return "\n".join(lines)


def _single_vantage_line(event: Event) -> str:
    if event.mode is not Mode.SINGLE_VANTAGE:
        return ""
    who = ", ".join(event.voters) or "one watcher"
    return (
        f"\n\n_Single vantage: {who} decided alone while the other watcher was unreachable;"
        " a one-sided network problem cannot be ruled out._"
    )


def _when(ms: int | None, seconds: bool = False) -> str:
    if ms is None:
        return "an unknown time"
    stamp = datetime.fromtimestamp(ms / 1000, UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def _duration(start_ms: int | None, end_ms: int | None) -> str | None:
    if start_ms is None or end_ms is None or end_ms < start_ms:
        return None
    seconds = (end_ms - start_ms) // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def _escape(text: str) -> str:
    """Reasons come from targets: keep them from being read as markdown."""
    return "".join(f"\\{c}" if c in "\\`*_[]<>#|" else c for c in text)


def _cap(body: str) -> str:
    data = body.encode()
    if len(data) <= MAX_BODY_BYTES:
        return body
    return data[: MAX_BODY_BYTES - 3].decode(errors="ignore") + "…"
