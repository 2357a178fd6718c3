"""The event stream on a real pair: a client on Huginn's stream sees an
outage's DOWN and UP once each; it goes away, Huginn is stopped, a second
outage happens, and the client resumes on Muninn with its last id: it gets
the second outage, once, and nothing it had already seen."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

from tests.integration.processes import Pair
from tests.integration.test_pair import Behaviour


def frames(lines: Iterator[str]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(id, event, data) of each SSE frame with data; comments skipped."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "data" in fields:
                yield (
                    fields.get("id", ""),
                    fields.get("event", "message"),
                    json.loads(fields["data"]),
                )
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


class Listener:
    """A client following a node's stream in a thread, until closed."""

    def __init__(self, url: str, last_id: str | None = None) -> None:
        self.items: list[tuple[str, str, dict[str, Any]]] = []
        self.client = httpx.Client(timeout=httpx.Timeout(10, read=None))
        headers = {"Last-Event-ID": last_id} if last_id else {}
        self.response = self.client.send(self.client.build_request("GET", url, headers=headers),
                                         stream=True)  # fmt: skip
        assert self.response.status_code == 200, self.response.read()
        assert self.response.headers["content-type"].startswith("text/event-stream")
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for item in frames(self.response.iter_lines()):
                self.items.append(item)
        except (httpx.HTTPError, RuntimeError):
            pass

    def of(self, target: str, notice: str) -> list[tuple[str, str, dict[str, Any]]]:
        return [i for i in self.items if i[2].get("target") == target and i[2]["notice"] == notice]

    def close(self) -> None:
        self.response.close()
        self.client.close()
        self.thread.join(timeout=10)


def test_a_client_resumes_on_the_other_node_missing_nothing_seeing_nothing_twice(
    blog_pair: tuple[Pair, Behaviour],
) -> None:
    pair, behaviour = blog_pair
    first = Listener(pair.url("huginn", "/api/v1/stream"))
    behaviour.down = True
    pair.wait(lambda: len(first.of("blog", "DOWN")) == 1, "the client sees blog DOWN", 60)
    behaviour.down = False
    pair.wait(lambda: len(first.of("blog", "UP")) == 1, "the client sees blog UP", 60)
    # The pair agrees within a sync or two: nothing more of this outage comes.
    pair.rounds_pass("blog")
    first.close()
    (down,) = first.of("blog", "DOWN")
    (up,) = first.of("blog", "UP")
    assert (down[1], down[2]["incident"], up[2]["incident"]) == ("transition", "opened", "closed")
    assert set(down[2]["views"]) == {"huginn", "muninn"}
    seen = [item[0] for item in first.items]
    assert len(seen) == len(set(seen)), "nothing twice"
    last_id = seen[-1]

    pair.kill("huginn")
    away_ms = time.time() * 1000
    behaviour.down = True
    pair.wait(lambda: pair.state("muninn", "blog") == "DOWN", "muninn alone: blog DOWN", 90)
    behaviour.down = False
    pair.wait(lambda: pair.state("muninn", "blog") == "UP", "muninn alone: blog UP", 90)

    resumed = httpx.get(pair.url("muninn", "/api/v1/stream?follow=false"),
                        headers={"Last-Event-ID": last_id}, timeout=30)  # fmt: skip
    assert resumed.status_code == 200
    items = list(frames(iter(resumed.text.splitlines())))
    ids = [i[0] for i in items]
    assert not set(ids) & set(seen), "nothing the client had seen"
    assert len(ids) == len(set(ids))
    blog = [(i[2]["notice"], i[2]["mode"]) for i in items if i[2].get("target") == "blog"]
    assert blog == [("DOWN", "single_vantage"), ("UP", "single_vantage")], items
    assert all(i[2]["at_ms"] >= away_ms - 60_000 for i in items)
    # An id that is not one is refused; one older than the replay says reload.
    assert httpx.get(pair.url("muninn", "/api/v1/stream?follow=false"),
                     headers={"Last-Event-ID": "yesterday"}).status_code == 400  # fmt: skip
    old = httpx.get(pair.url("muninn", "/api/v1/stream?follow=false&from_id=1-x"), timeout=30)
    assert "event: reload" in old.text
