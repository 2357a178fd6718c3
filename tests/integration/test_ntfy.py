"""The notifier against the ntfy-compatible inbox on loopback: exact requests,
refusals real ntfy makes, and the outcomes the outbox acts on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from consensus.agreement import Mode, Notice
from consensus.events import Event
from consensus.hlc import Hlc
from notify.inbox import Inbox, serving
from notify.messages import Style, Subject, build
from notify.publisher import Delivered, Refused, RetryLater, Server, publish

TOKEN = "tk_" + "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o"[:29]


def with_inbox(inbox: Inbox, work: Callable[[str, httpx.AsyncClient], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        async with serving(inbox) as url, httpx.AsyncClient() as client:
            return await work(url, client)

    return asyncio.run(go())


def down_event() -> Event:
    views = {"huginn": {"state": "DOWN", "reason": "status 503"},
             "muninn": {"state": "DOWN", "reason": "status 503"}}  # fmt: skip
    anchor = Hlc(1_795_000_000_000, 0, "huginn")
    return Event("abc123def456abc123def456", "blog", Notice.DOWN, "DOWN", "UP", anchor,
                 Mode.QUORUM, ("huginn", "muninn"), views)  # fmt: skip


def test_a_message_is_accepted_as_built_and_read_back_by_poll() -> None:
    inbox = Inbox(token=TOKEN)
    message = build(down_event(), Subject("blog.example.com"), Style("biphrost-status"))

    async def work(url: str, client: httpx.AsyncClient) -> tuple[Any, list[dict[str, Any]]]:
        outcome = await publish(client, Server(url, token=TOKEN), message)
        polled = await client.get(f"{url}/biphrost-status/json", params={"poll": "1"},
                                  headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
        return outcome, [json.loads(line) for line in polled.text.splitlines()]

    outcome, polled = with_inbox(inbox, work)
    assert isinstance(outcome, Delivered) and len(outcome.message_id) == 12
    (request,) = inbox.requests
    assert request["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(request["body"]) == message
    (stored,) = polled
    assert list(stored) == ["id", "time", "expires", "event", "topic", "title", "message",
                            "priority", "tags", "content_type", "sequence_id"]  # fmt: skip
    assert stored["sequence_id"] == "abc123def456abc123def456"
    assert stored["tags"] == ["rotating_light"] and stored["priority"] == 5


def test_the_inbox_refuses_what_real_ntfy_refuses() -> None:
    inbox = Inbox()

    async def work(url: str, client: httpx.AsyncClient) -> list[tuple[int, dict[str, Any]]]:
        bodies: list[dict[str, Any]] = [
            {"topic": "t", "message": "x", "priority": "high"},
            {"topic": "t", "message": "x", "cache": False},
            {"topic": "bad topic", "message": "x"},
            {"topic": "docs", "message": "x"},
            {"topic": "t", "message": "x", "priority": 9},
            {"topic": "t", "message": "x" * 4096},
        ]
        out = []
        for body in bodies:
            response = await client.post(url + "/", json=body)
            out.append((response.status_code, response.json()))
        big = await client.post(
            url + "/", content=b'{"topic":"t","message":"' + b"x" * 9000 + b'"}'
        )
        out.append((big.status_code, big.json()))
        return out

    answers = with_inbox(inbox, work)
    assert [(status, body["code"]) for status, body in answers] == [
        (400, 40024), (400, 40024), (400, 40010), (400, 40010), (400, 40007), (400, 40014),
        (413, 41303),
    ]  # fmt: skip
    assert inbox.all() == []


def test_outcomes_for_auth_errors_5xx_and_429() -> None:
    message = build(down_event(), Subject("blog"), Style("biphrost-status"))

    async def work(url: str, client: httpx.AsyncClient) -> list[Any]:
        out = [await publish(client, Server(url, token="tk_wrongwrongwrongwrongwrongwro"), message),
               await publish(client, Server(url), message)]  # fmt: skip
        inbox.fail_status = 502
        out.append(await publish(client, Server(url, token=TOKEN), message))
        inbox.fail_status = None
        inbox.retry_after_s = 30
        out.append(await publish(client, Server(url, token=TOKEN), message))
        return out

    inbox = Inbox(token=TOKEN)
    wrong, missing, bad_gateway, limited = with_inbox(inbox, work)
    assert wrong == Refused(401, "unauthorized (40101)")
    assert missing == Refused(403, "forbidden (40301)")
    assert isinstance(bad_gateway, RetryLater) and "502" in bad_gateway.reason
    assert limited == RetryLater("rate limited: limit reached: too many requests (42901)", 30.0,
                                 paced=True)  # fmt: skip


def test_ntfy_unreachable_is_retry_later() -> None:
    async def go() -> Any:
        async with serving(Inbox()) as url:
            pass  # closed again
        async with httpx.AsyncClient() as client:
            return await publish(client, Server(url), {"topic": "t", "message": "x"})

    outcome = asyncio.run(go())
    assert isinstance(outcome, RetryLater) and outcome.reason.startswith("ntfy unreachable")


def test_a_burst_past_sixty_is_rate_limited() -> None:
    async def work(url: str, client: httpx.AsyncClient) -> list[int]:
        codes = []
        for i in range(62):
            response = await client.post(url + "/", json={"topic": "t", "message": str(i)})
            codes.append(response.status_code)
        return codes

    codes = with_inbox(Inbox(clock=lambda: 1000.0), work)
    assert codes[:60] == [200] * 60 and codes[60:] == [429, 429]


def test_header_publishing_with_aliases() -> None:
    async def work(url: str, client: httpx.AsyncClient) -> dict[str, Any]:
        response = await client.post(url + "/alerts/seq42", content="hello",
                                     headers={"Title": "Hi", "p": "high", "ta": "a,b"})  # fmt: skip
        return dict(response.json())

    stored = with_inbox(Inbox(), work)
    assert (stored["title"], stored["priority"], stored["tags"]) == ("Hi", 4, ["a", "b"])
    assert stored["sequence_id"] == "seq42" and stored["message"] == "hello"


ACK = {"action": "http", "label": "Acknowledge", "url": "https://huginn.example/api/v1/actions/x"}


def test_action_buttons_are_checked_and_returned_as_ntfy_does() -> None:
    async def work(url: str, client: httpx.AsyncClient) -> list[tuple[int, dict[str, Any]]]:
        bodies: list[Any] = [
            [ACK, {**ACK, "action": "VIEW", "label": "Open"}],  # accepted, action lower-cased
            [ACK] * 4,  # more than three
            [{**ACK, "action": "email"}],
            [{**ACK, "label": ""}],
            [{"action": "view", "label": "Open"}],  # view needs a url
            [{**ACK, "method": "get", "body": "{}"}],  # no body with GET
            [{**ACK, "clear": "yes"}],  # JSON types are Go's: clear is a boolean
            [{**ACK, "headers": {"X-A": 1}}],
            {"action": "http"},  # not an array
        ]
        out = []
        for actions in bodies:
            body = {"topic": "t", "message": "x", "actions": actions}
            response = await client.post(url + "/", json=body)
            out.append((response.status_code, response.json()))
        simple = await client.post(url + "/t", content="x", headers={
            "Actions": "http, Acknowledge, https://h.example/a, method=PUT, clear=true, "
                       "headers.X-Why=\"a, b\"; view, Open, https://h.example/t"})  # fmt: skip
        out.append((simple.status_code, simple.json()))
        return out

    inbox = Inbox()
    (ok_status, ok), *refused, (simple_status, simple) = with_inbox(inbox, work)
    assert ok_status == 200
    first, second = ok["actions"]
    assert list(first) == ["id", "action", "label", "clear", "url", "method"]
    assert len(first["id"]) == 10 and first["method"] == "POST" and first["clear"] is False
    assert (second["action"], "method" in second) == ("view", False)
    assert [(status, body["code"]) for status, body in refused] == [
        (400, 40018), (400, 40018), (400, 40018), (400, 40018), (400, 40018),
        (400, 40024), (400, 40024), (400, 40024),
    ]  # fmt: skip
    assert {body["error"] for _, body in refused[:5]} == {"invalid request: actions invalid"}
    assert simple_status == 200
    put, view = simple["actions"]
    assert (put["method"], put["clear"], put["headers"]) == ("PUT", True, {"X-Why": "a, b"})
    assert (view["action"], view["url"]) == ("view", "https://h.example/t")
    assert len(inbox.all()) == 2


def notify_test(tmp_path: Any, url: str, credentials: str) -> Callable[[], Any]:
    """A node config pointing at url with the given [ntfy] credential lines, and a
    runner of `ravens notify test` against it."""
    import subprocess
    import sys

    (tmp_path / "secret").write_text("s" * 40)
    config = tmp_path / "huginn.toml"
    config.write_text(f"""
[node]
name = "huginn"
data_dir = "{tmp_path}"
[sync]
secret_file = "{tmp_path / "secret"}"
[ntfy]
url = "{url}"
topic = "ops"
{credentials}
""")
    run = [sys.executable, "-m", "watchers", "notify", "test", "--config", str(config)]
    return lambda: subprocess.run(run, capture_output=True, text=True, timeout=60, check=False)


def test_ravens_notify_test_prints_ntfys_answer(tmp_path: Any) -> None:
    from notify.inbox import serve_in_thread

    inbox = Inbox(token=TOKEN)
    with serve_in_thread(inbox) as url:
        (tmp_path / "token").write_text(TOKEN)
        run = notify_test(tmp_path, url, f'token_file = "{tmp_path / "token"}"')
        good = run()
        (tmp_path / "token").write_text("tk_" + "z" * 29)
        bad = run()
    assert good.returncode == 0, good.stderr
    assert f"delivered to {url}/ topic ops: ntfy message id" in good.stdout
    assert [m["title"] for m in inbox.all()] == ["ravens test from huginn"]
    # What ntfy said and what to check, never a Python repr.
    said = "ntfy refused the token (401 unauthorized (40101)): check [ntfy] token_file"
    assert bad.returncode == 1 and said in bad.stderr, bad.stderr
    assert "Refused(" not in bad.stderr


def test_basic_credentials_from_the_config(tmp_path: Any) -> None:
    from notify.inbox import serve_in_thread

    inbox = Inbox(basic=("ops", "correct horse"))
    with serve_in_thread(inbox) as url:
        (tmp_path / "password").write_text("correct horse\n")
        credentials = f'username = "ops"\npassword_file = "{tmp_path / "password"}"'
        done = notify_test(tmp_path, url, credentials)()
    assert done.returncode == 0, done.stderr
    assert inbox.requests[0]["headers"]["authorization"].startswith("Basic ")


def test_every_kind_goes_out_as_exactly_these_bytes_and_headers() -> None:
    from tests.unit.test_messages import EXACT, STYLE

    inbox = Inbox(token=TOKEN, basic=("ops", "hunter2-hunter2"))
    servers = [Server("", token=TOKEN), Server("", basic=("ops", "hunter2-hunter2"))]

    async def work(url: str, client: httpx.AsyncClient) -> list[Any]:
        out = []
        for i, (event, subject, _) in enumerate(EXACT):
            login = servers[i % 2]
            server = Server(url, login.token, login.basic)
            out.append(await publish(client, server, build(event, subject, STYLE)))
        return out

    outcomes = with_inbox(inbox, work)
    assert all(isinstance(o, Delivered) for o in outcomes), outcomes
    for i, ((_, _, body), request) in enumerate(zip(EXACT, inbox.requests, strict=True)):
        assert request["body"] == json.dumps(body, separators=(",", ":")).encode()
        assert request["path"] == "/"
        headers = request["headers"]
        assert headers["content-type"] == "application/json"
        assert headers["authorization"] == (
            f"Bearer {TOKEN}" if i % 2 == 0 else "Basic b3BzOmh1bnRlcjItaHVudGVyMg=="
        )
        assert "x-title" not in headers and "x-priority" not in headers  # all in the JSON
