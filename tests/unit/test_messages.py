"""ntfy messages: the exact body of every kind, size caps, the sequence id,
and that nothing the notifier builds is refused by ntfy's rules."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.agreement import Mode, Notice
from consensus.events import Event
from consensus.hlc import Hlc
from notify.inbox import MAX_MESSAGE_BYTES, read_json_publish
from notify.messages import (
    DEFAULT_PRIORITY,
    MAX_BODY_BYTES,
    Style,
    Subject,
    build,
    build_summary,
    summary_id,
)

AT = 1_795_000_000_000  # 2026-11-18 11:06:40 UTC
ID = "0123456789abcdef01234567"
VIEWS = {
    "huginn": {"state": "DOWN", "reason": "status 503", "latency_ms": 120.4,
               "checked_ms": AT + 5_000, "voter": True},
    "muninn": {"state": "DOWN", "reason": "connect timeout after 10 s", "latency_ms": None,
               "checked_ms": AT + 7_000, "voter": True},
}  # fmt: skip
ONE_SIDED = {
    "huginn": {"state": "DOWN", "reason": "connect timeout after 10 s", "latency_ms": None,
               "checked_ms": AT + 5_000, "voter": True},
    "muninn": {"state": "UP", "reason": "status 200", "latency_ms": 80.0,
               "checked_ms": AT + 7_000, "voter": True},
}  # fmt: skip
SEEN_DOWN = (
    "- huginn: DOWN: status 503, 120 ms at 2026-11-18 11:06:45 UTC\n"
    "- muninn: DOWN: connect timeout after 10 s at 2026-11-18 11:06:47 UTC"
)
SUBJECT = Subject("blog.example.com", "https://huginn.example.net/t/blog")
STYLE = Style(topic="biphrost-status")


def event(notice: Notice, state: str = "DOWN", mode: Mode = Mode.QUORUM, **more: Any) -> Event:
    fields: dict[str, Any] = {
        "id": ID, "subject": "blog", "notice": notice, "state": state, "previous": "UP",
        "anchor": Hlc(AT, 0, "huginn"), "mode": mode, "voters": ("huginn", "muninn"),
        "views": VIEWS,
    }  # fmt: skip
    fields.update(more)
    return Event(**fields)


def expected(title: str, message: str, priority: int, tags: list[str], click: bool = True) -> dict:
    body: dict[str, object] = {
        "topic": "biphrost-status", "title": title, "message": message, "priority": priority,
        "tags": tags, "markdown": True, "sequence_id": ID,
    }  # fmt: skip
    if click:
        body["click"] = "https://huginn.example.net/t/blog"
    return body


EXACT: list[tuple[Event, Subject, dict[str, object]]] = [
    (event(Notice.DOWN), SUBJECT, expected(
        "blog.example.com is DOWN",
        f"**blog.example.com** is down since 2026-11-18 11:06 UTC.\n\n{SEEN_DOWN}",
        5, ["rotating_light"])),
    (event(Notice.UP, state="UP", previous="DOWN", previous_since_ms=AT - 3_725_000,
           views={n: {**v, "state": "UP", "reason": "status 200"} for n, v in VIEWS.items()}),
     SUBJECT, expected(
        "blog.example.com is UP",
        "**blog.example.com** is back after 1 h 2 min down, since 2026-11-18 11:06 UTC.\n\n"
        "- huginn: UP: status 200, 120 ms at 2026-11-18 11:06:45 UTC\n"
        "- muninn: UP: same at 2026-11-18 11:06:47 UTC",
        3, ["white_check_mark"])),
    (event(Notice.UP, state="UP", previous="PARTIAL", previous_since_ms=AT - 990_000,
           views={n: {**v, "state": "UP", "reason": "status 200"} for n, v in VIEWS.items()}),
     SUBJECT, expected(
        "blog.example.com: all sides agree it is UP",
        "**blog.example.com** is seen up from every node again after 16 min 30 s seen down "
        "from one side only, since 2026-11-18 11:06 UTC.\n\n"
        "- huginn: UP: status 200, 120 ms at 2026-11-18 11:06:45 UTC\n"
        "- muninn: UP: same at 2026-11-18 11:06:47 UTC",
        3, ["white_check_mark"])),
    (event(Notice.PARTIAL_LASTING, state="PARTIAL", views=ONE_SIDED), SUBJECT, expected(
        "blog.example.com: down from huginn only",
        "**blog.example.com** has been seen down from huginn only since 2026-11-18 11:06 UTC. "
        "The other side sees it up, so nobody was paged: likely a network path, not the "
        "target.\n\n"
        "- huginn: DOWN: connect timeout after 10 s at 2026-11-18 11:06:45 UTC\n"
        "- muninn: UP: status 200, 80 ms at 2026-11-18 11:06:47 UTC",
        2, ["warning"])),
    (event(Notice.FLAPPING_STARTED, state="FLAPPING"), SUBJECT, expected(
        "blog.example.com is flapping",
        "**blog.example.com** keeps changing state since 2026-11-18 11:06 UTC. Further changes "
        f"are not announced until it settles.\n\n{SEEN_DOWN}",
        2, ["warning"])),
    (event(Notice.FLAPPING_SETTLED, state="UP", previous="FLAPPING",
           views={n: {**v, "state": "UP", "reason": "status 200"} for n, v in VIEWS.items()}),
     SUBJECT, expected(
        "blog.example.com settled: UP",
        "**blog.example.com** stopped flapping and is **UP** since 2026-11-18 11:06 UTC.\n\n"
        "- huginn: UP: status 200, 120 ms at 2026-11-18 11:06:45 UTC\n"
        "- muninn: UP: same at 2026-11-18 11:06:47 UTC",
        2, ["white_check_mark"])),
    (event(Notice.FLAPPING_SETTLED, state="DOWN", previous="FLAPPING"), SUBJECT, expected(
        "blog.example.com settled: DOWN",
        "**blog.example.com** stopped flapping and is **DOWN** since 2026-11-18 11:06 UTC."
        f"\n\n{SEEN_DOWN}",
        5, ["rotating_light"])),
    (event(Notice.STILL_DOWN, detail={"reminder": 2, "down_for_ms": 7_200_000}), SUBJECT,
     expected(
        "blog.example.com is still DOWN",
        "**blog.example.com** is still down, for 2 h 0 min now (since 2026-11-18 11:06 UTC)."
        f"\n\n{SEEN_DOWN}",
        4, ["rotating_light", "repeat"])),
    (event(Notice.ESCALATED, detail={"incident": "feedc0de", "down_for_ms": 900_000}),
     SUBJECT, expected(
        "Unacknowledged: blog.example.com is DOWN",
        "**blog.example.com** has been down for 15 min 0 s (since 2026-11-18 11:06 UTC) and "
        "nobody acknowledged it. First notification: `feedc0de`."
        f"\n\n{SEEN_DOWN}",
        5, ["rotating_light", "sos"])),
    (event(Notice.TLS_EXPIRING, state="UP", anchor=None, views={},
           detail={"threshold_days": 7, "not_after_ms": AT + 6 * 86_400_000 + 3_600_000,
                   "days_left": 6.0}),
     SUBJECT, expected(
        "blog.example.com: TLS certificate expires in 6 days",
        "The certificate of **blog.example.com** expires on 2026-11-24 12:06 UTC, in about "
        "6 days (threshold: 7 days). Renew it before visitors see a warning.",
        3, ["lock", "warning"])),
    (event(Notice.DOMAIN_EXPIRING, state="UP", anchor=None, views={},
           detail={"domain": "example.com", "threshold_days": 14, "days_left": 13.6,
                   "expires_ms": AT + 13 * 86_400_000 + 14 * 3_600_000,
                   "targets": ["blog", "shop"]}),
     SUBJECT, expected(
        "example.com: registration expires in 14 days",
        "The registration of **example.com** expires on 2026-12-02 01:06 UTC, in about "
        "14 days (threshold: 14 days), as its registry tells it (RDAP). Renew it. Every "
        "target on it goes down with it: blog, shop.",
        3, ["globe_with_meridians", "warning"])),
    (event(Notice.NODE_ISOLATED, subject="node:muninn", state="NODE_ISOLATED", views={}),
     Subject("muninn"), expected(
        "muninn lost its own network",
        "Watcher **muninn** is running but cannot reach the outside world since 2026-11-18 "
        "11:06 UTC. It abstains; the other watcher decides alone. No target alarms from it.",
        2, ["warning"], click=False)),
    (event(Notice.PEER_LOST, subject="node:muninn", state="PEER_LOST", views={}),
     Subject("muninn"), expected(
        "muninn is unreachable",
        "Watcher **muninn** has not been heard from since 2026-11-18 11:06 UTC: its network "
        "is down, or the path between the watchers is cut. The other watcher decides alone "
        "(single vantage) until it is back.",
        2, ["warning"], click=False)),
    (event(Notice.PEER_BACK, subject="node:muninn", state="VOTING", views={}),
     Subject("muninn"), expected(
        "muninn is back", "Watcher **muninn** is heard from again and votes again.",
        2, ["white_check_mark"], click=False)),
    (event(Notice.CLOCK_JUMPED, subject="node:huginn", state="CLOCK", views={},
           detail={"step_ms": -600_000}),
     Subject("huginn"), expected(
        "huginn's clock jumped back 10 min 0 s",
        "The wall clock of watcher **huginn** stepped back by 10 min 0 s at 2026-11-18 11:06 UTC. "
        "Its checks, sync and timers kept their pace, and the history it stamps is corrected "
        "by its targets' clocks. Check its time sync (chrony, systemd-timesyncd).",
        2, ["alarm_clock", "warning"], click=False)),
    (event(Notice.WEEKLY_REPORT, subject="report:biphrost-status", state="REPORT", views={},
           detail={"topic": "biphrost-status", "week_start_ms": AT - 7 * 86_400_000,
                   "week_end_ms": AT, "targets": 3, "uptime_pct": 99.5, "outages": 2,
                   "down_s": 5400, "by_tag": [{"tag": "web", "targets": 2, "uptime_pct": 99.25}],
                   "worst": [{"target": "shop", "uptime_pct": 98.5, "down_s": 3600}],
                   "pair": {"muninn": {"cut_off_s": 600, "times": 1}}}),
     Subject("weekly report"), expected(
        "Weekly report: 99.500 % up, 2 outages",
        "Week of 2026-11-11 to 2026-11-18 (UTC), 3 targets: **99.500 %** up, 2 outages, "
        "1 h 30 min down in all.\n\nUptime by tag:\n- web (2): 99.250 %\n\nThe worst:\n"
        "- shop: 98.500 %, 1 h 0 min down\n\nThe watchers:\n- muninn: cut off 1 time, "
        "10 min 0 s in all",
        2, ["bar_chart"], click=False)),
]  # fmt: skip


def test_every_kind_exactly() -> None:
    assert {e.notice for e, _, _ in EXACT} == set(Notice)
    for built_from, subject, body in EXACT:
        assert build(built_from, subject, STYLE) == body, built_from.notice


def test_single_vantage_is_said_and_tagged() -> None:
    message = build(event(Notice.DOWN, mode=Mode.SINGLE_VANTAGE), SUBJECT, STYLE)
    assert message["tags"] == ["rotating_light", "single_vantage"]
    assert str(message["message"]).endswith(
        "\n\n_Single vantage: huginn, muninn decided alone while the other watcher was "
        "unreachable; a one-sided network problem cannot be ruled out._"
    )


def test_priorities_are_configurable_and_a_target_topic_wins() -> None:
    style = Style("biphrost-status", {**DEFAULT_PRIORITY, Notice.DOWN: 4, Notice.UP: 1})
    routed = Subject("blog", topic="blog-only")
    assert build(event(Notice.DOWN), routed, style)["priority"] == 4
    assert build(event(Notice.UP, state="UP"), routed, style)["priority"] == 1
    assert build(event(Notice.DOWN), routed, style)["topic"] == "blog-only"


def test_stale_events_become_one_summary_exactly() -> None:
    down = event(Notice.DOWN)
    up = event(Notice.UP, id="f" * 24, state="UP", anchor=Hlc(AT + 600_000, 0, "muninn"))
    message = build_summary([(down, SUBJECT), (up, SUBJECT)], "biphrost-status")
    assert message == {
        "topic": "biphrost-status",
        "title": "2 delayed notifications",
        "message": (
            "These 2 notifications could not be sent when they happened; here they are at "
            "once, oldest first. The status page has the current state.\n\n"
            "- 2026-11-18 11:06 UTC: blog.example.com is DOWN\n"
            "- 2026-11-18 11:16 UTC: blog.example.com is UP"
        ),
        "priority": 3,
        "tags": ["inbox_tray"],
        "markdown": True,
        "sequence_id": summary_id([ID, "f" * 24]),
    }
    assert summary_id(["b", "a"]) == summary_id(["a", "b"])


def test_bodies_stay_under_the_limit_and_reasons_cannot_inject_markdown() -> None:
    views = {f"node{i}": {"state": "DOWN", "reason": "x" * 5_000 + "*bold* [link](x)"}
             for i in range(40)}  # fmt: skip
    message = build(event(Notice.DOWN, views=views), SUBJECT, STYLE)
    assert len(str(message["message"]).encode()) <= MAX_BODY_BYTES
    small = {"n": {"state": "DOWN", "reason": "*bold* [link](x)"}}
    plain = build(event(Notice.DOWN, views=small), SUBJECT, STYLE)
    assert r"\*bold\* \[link\](x)" in str(plain["message"])
    many = [(event(Notice.DOWN, id=f"{i:024x}"), SUBJECT) for i in range(500)]
    assert len(str(build_summary(many, "t")["message"]).encode()) <= MAX_BODY_BYTES


def test_a_label_is_shown_as_written_never_read_as_markdown() -> None:
    sly = Subject("[click me](https://evil.example) *now*")
    for notice in (Notice.DOWN, Notice.UP, Notice.PARTIAL_LASTING, Notice.TLS_EXPIRING):
        built = build(event(notice, detail={"threshold_days": 7}), sly, STYLE)
        body = str(built["message"])
        assert r"\[click me\](https://evil.example) \*now\*" in body, body
        assert "[click me](" not in body
        assert str(built["title"]).startswith("[click me](https://evil.example) *now*")
    summary = str(build_summary([(event(Notice.DOWN), sly)] * 2, "t")["message"])
    assert "[click me](" not in summary


reasons = st.text(max_size=400)
views_strategy = st.dictionaries(
    st.sampled_from(["huginn", "muninn", "third"]),
    st.fixed_dictionaries({
        "state": st.sampled_from(["UP", "DOWN", "UNKNOWN"]),
        "reason": reasons,
        "latency_ms": st.none() | st.floats(0, 1e6),
        "checked_ms": st.none() | st.integers(0, 2**42),
    }),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    notice=st.sampled_from(list(Notice)),
    mode=st.sampled_from(list(Mode)),
    label=st.text(min_size=1, max_size=200),
    views=views_strategy,
    anchor_ms=st.none() | st.integers(0, 2**42),
    priority=st.integers(1, 5),
)
def test_ntfy_accepts_everything_the_notifier_builds(
    notice: Notice, mode: Mode, label: str, views: dict, anchor_ms: int | None, priority: int
) -> None:
    anchor = None if anchor_ms is None else Hlc(anchor_ms, 0, "huginn")
    built = build(
        event(notice, mode=mode, views=views, anchor=anchor, detail={"threshold_days": 7}),
        Subject(label, "https://huginn.example.net/t/blog"),
        Style("biphrost-status", dict.fromkeys(Notice, priority)),
    )
    body = json.dumps(built, separators=(",", ":")).encode()
    parsed = read_json_publish(body)  # raises what ntfy would refuse
    assert parsed["priority"] == built["priority"] and parsed["sequence_id"] == ID
    assert len(parsed["message"].encode()) <= MAX_MESSAGE_BYTES


def test_a_tag_groups_pages_name_the_tag_and_list_its_members() -> None:
    down = event(Notice.DOWN, detail={"group": "rack3", "group_size": 8,
                                      "group_members": ["blog", "shop", "wiki"]})  # fmt: skip
    built = build(down, SUBJECT, STYLE)
    assert built["title"] == "rack3: 3 of 8 targets DOWN"
    assert built["message"].startswith(
        "**3 of 8** targets tagged **rack3** went down together, the first since "
        "2026-11-18 11:06 UTC (down longest first):\n\n- blog\n- shop\n- wiki\n\n"
    )
    assert SEEN_DOWN in built["message"]
    up = event(Notice.UP, state="UP", previous="DOWN",
               detail={"group": "rack3", "group_size": 3, "group_members": ["blog", "shop"],
                       "group_still_down": ["wiki"]})  # fmt: skip
    built = build(up, SUBJECT, STYLE)
    assert built["title"] == "rack3: 2 of 3 targets UP, 1 still down"
    assert built["message"].endswith("- blog\n- shop\n\nStill down (1): wiki.")
    # A member's name is shown as written, never read as markdown.
    odd = event(Notice.DOWN, detail={"group": "r", "group_size": 6,
                                     "group_members": ["[x](http://evil)"]})  # fmt: skip
    assert "- \\[x\\](http://evil)\n" in build(odd, SUBJECT, STYLE)["message"]


def test_a_reason_both_nodes_gave_reads_same_the_second_time() -> None:
    tls = "TLS handshake failed: certificate expired"
    views = {name: {**view, "reason": tls} for name, view in VIEWS.items()}
    body = build(event(Notice.DOWN, views=views), SUBJECT, STYLE)["message"]
    assert f"- huginn: DOWN: {tls}, 120 ms at" in body
    assert "- muninn: DOWN: same at 2026-11-18 11:06:47 UTC" in body
    assert body.count("certificate expired") == 1
