"""ntfy messages: exact bodies per notice, size caps, the sequence id."""

from __future__ import annotations

from consensus.agreement import Mode, Notice
from consensus.events import Event
from consensus.hlc import Hlc
from notify.messages import MAX_BODY_BYTES, Style, Subject, build

AT = 1_795_000_000_000  # 2026-11-18 11:06:40 UTC
VIEWS = {
    "huginn": {"state": "DOWN", "reason": "status 503", "latency_ms": 120.4,
               "checked_ms": AT + 5_000, "voter": True},
    "muninn": {"state": "DOWN", "reason": "connect timeout after 10 s", "latency_ms": None,
               "checked_ms": AT + 7_000, "voter": True},
}  # fmt: skip


def event(notice: Notice, state: str = "DOWN", mode: Mode = Mode.QUORUM, **more: object) -> Event:
    return Event(
        id="0123456789abcdef01234567", subject="blog", notice=notice, state=state,
        previous="UP", anchor=Hlc(AT, 0, "huginn"), mode=mode, voters=("huginn", "muninn"),
        views=VIEWS, **more,  # type: ignore[arg-type]
    )  # fmt: skip


SUBJECT = Subject("blog.example.com", "https://huginn.example.net/targets/blog")
STYLE = Style(topic="biphrost-status")


def test_a_down_message_exactly() -> None:
    assert build(event(Notice.DOWN), SUBJECT, STYLE) == {
        "topic": "biphrost-status",
        "title": "blog.example.com is DOWN",
        "message": (
            "**blog.example.com** is down since 2026-11-18 11:06 UTC.\n\n"
            "- huginn: DOWN: status 503, 120 ms at 2026-11-18 11:06:45 UTC\n"
            "- muninn: DOWN: connect timeout after 10 s at 2026-11-18 11:06:47 UTC"
        ),
        "priority": 5,
        "tags": ["rotating_light"],
        "markdown": True,
        "sequence_id": "0123456789abcdef01234567",
        "click": "https://huginn.example.net/targets/blog",
    }


def test_an_up_message_says_how_long_it_was_down() -> None:
    up = event(Notice.UP, state="UP", previous_since_ms=AT - 3_725_000)
    message = build(up, SUBJECT, STYLE)
    assert message["title"] == "blog.example.com is UP"
    assert "is back after 1 h 2 min down" in str(message["message"])
    assert (message["priority"], message["tags"]) == (3, ["white_check_mark"])


def test_single_vantage_is_said_and_tagged() -> None:
    alone = event(Notice.DOWN, mode=Mode.SINGLE_VANTAGE)
    message = build(alone, SUBJECT, STYLE)
    assert message["tags"] == ["rotating_light", "single_vantage"]
    assert "_Single vantage: huginn, muninn decided alone" in str(message["message"])


def test_every_notice_has_a_title_tags_and_priority() -> None:
    for notice in Notice:
        subject = "node:muninn" if notice.name.startswith(("NODE", "PEER")) else "blog"
        e = event(notice)
        message = build(
            Event(e.id, subject, notice, e.state, e.previous, e.anchor, e.mode, e.voters, e.views),
            SUBJECT, STYLE,
        )  # fmt: skip
        assert message["title"] and message["tags"]
        assert message["priority"] in (2, 3, 5)
        assert message["sequence_id"] == e.id


def test_notes_are_low_priority_and_a_topic_override_wins() -> None:
    message = build(event(Notice.PARTIAL_LASTING, state="PARTIAL"),
                    Subject("blog", topic="blog-only"), STYLE)  # fmt: skip
    assert (message["priority"], message["topic"]) == (2, "blog-only")
    assert message["title"] == "blog: down from huginn, muninn only"
    assert "click" not in message


def test_bodies_stay_under_the_limit_and_reasons_cannot_inject_markdown() -> None:
    views = {f"node{i}": {"state": "DOWN", "reason": "x" * 5_000 + "*bold* [link](x)"}
             for i in range(40)}  # fmt: skip
    big = Event("e", "blog", Notice.DOWN, "DOWN", "UP", Hlc(AT, 0, "n"), Mode.QUORUM, (), views)
    message = build(big, SUBJECT, STYLE)
    assert len(str(message["message"]).encode()) <= MAX_BODY_BYTES
    small = {"n": {"state": "DOWN", "reason": "*bold* [link](x)"}}
    plain = build(Event("e", "blog", Notice.DOWN, "DOWN", "UP", None, Mode.QUORUM, (), small),
                  SUBJECT, STYLE)  # fmt: skip
    assert r"\*bold\* \[link\](x)" in str(plain["message"])
