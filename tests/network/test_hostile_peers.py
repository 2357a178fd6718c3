"""Scenario 10: the sync endpoints of a live node in its own namespace under
hostile input. Hypothesis makes the bodies (malformed JSON, wrong types,
entries of every shape) and the credentials (none, a bad HMAC, a stale
time, an unknown node, the real secret); refused requests get a 4xx and
change nothing; replays and far-future stamps are harmless; oversized bodies
and slow clients are cut off; the node keeps serving and checking."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.network.netns import address, needs_netns
from tests.network.world import NODE_PORT, READ_TIMEOUT_S, World
from watchers import wire

pytestmark = needs_netns

HUGINN = f"http://{address('huginn')}:{NODE_PORT}"
ADMIN_TOKEN = "a" * 40


@pytest.fixture
def world_extra(tmp_path: Path) -> str:
    """An admin on both nodes, for the attacks on the admin API."""
    token = tmp_path / "admin-token"
    token.write_text(ADMIN_TOKEN)
    return f'\n[[api.admins]]\nname = "ops"\ntoken_file = "{token}"\n'


PATHS = ("/sync/push", "/sync/pull", "/sync/history")
AUTHS = ("none", "bad", "stale", "stranger", "good")

texts = st.text(max_size=20)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(texts, inner, max_size=4), max_leaves=12)  # fmt: skip
hlcs = st.one_of(
    texts,
    st.builds(lambda w, lg, n: f"{w}.{lg}.{n}", st.integers(-5, 2**63),
              st.integers(-5, 2**40), st.sampled_from(["muninn", "huginn", "odin", ""])),
)  # fmt: skip
entries = st.fixed_dictionaries(
    {},
    optional={
        "key": st.sampled_from(["target/x", "state/site", "verdict/muninn/site", "event/e",
                                "health/muninn", "", "x" * 600]) | texts,
        "value": values,
        "hlc": hlcs | values,
        "origin": st.sampled_from(["muninn", "huginn", "odin"]) | values,
        "version": st.integers(-3, 2**62) | values,
        "tombstone": values,
    },
)  # fmt: skip
bodies = st.one_of(
    st.binary(max_size=300),
    values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {},
        optional={"entries": st.lists(entries, max_size=5) | values,
                  "vector": st.dictionaries(texts, st.integers(-2, 2**62)) | values,
                  "cursor": values, "limit": values, "target": values, "from_ms": values,
                  "to_ms": values, "resolution": values},
    ).map(lambda d: json.dumps(d).encode()),
)  # fmt: skip


def send(client: httpx.Client, secret: str, path: str, body: bytes, auth: str) -> httpx.Response:
    now = int(time.time() * 1000)
    headers: dict[str, str] = {"Content-Type": "application/json"}
    if auth != "none":
        node = "odin" if auth == "stranger" else "muninn"
        stamp = now - 20 * 60_000 if auth == "stale" else now
        headers = wire.signed_headers(secret, node, stamp, "POST", path, body)
        if auth == "bad":
            headers["X-Ravens-Signature"] = "0" * 64
    return client.post(HUGINN + path, content=body, headers=headers)


def foreign(world: World) -> set[tuple[Any, ...]]:
    """What huginn holds from anyone but itself (muninn is stopped)."""
    return set(world.query("huginn", "SELECT key, origin, version, wall_ms FROM log "
                                     "WHERE origin != 'huginn'"))  # fmt: skip


def test_hostile_sync_input_is_refused_or_harmless_and_the_node_keeps_serving(
    world: World,
) -> None:
    world.kill("muninn")  # the test speaks as muninn, with the shared secret
    client = httpx.Client(timeout=10)
    statuses: dict[int, int] = {}

    @settings(max_examples=250, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(path=st.sampled_from(PATHS), body=bodies, auth=st.sampled_from(AUTHS))
    def hostile(path: str, body: bytes, auth: str) -> None:
        before = foreign(world)
        response = send(client, world.secret, path, body, auth)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, response.text
        assert response.headers["content-type"].startswith("application/json")
        if auth != "good":
            assert response.status_code in (401, 403), (auth, response.text)
        if response.status_code >= 400:
            assert "error" in response.json()
            assert foreign(world) == before, "a refused request changed the log"

    hostile()
    print(f"statuses over the examples: {dict(sorted(statuses.items()))}")
    assert statuses.get(401, 0) and statuses.get(403, 0) and statuses.get(400, 0)

    # A valid push, replayed: merged once, the replay changes nothing.
    now = int(time.time() * 1000)
    entry = {"key": "ack/hostile", "value": {"n": 1}, "hlc": f"{now}.0.muninn",
             "origin": "muninn", "version": 10**9, "tombstone": False}  # fmt: skip
    body = json.dumps({"entries": [entry]}).encode()
    headers = wire.signed_headers(world.secret, "muninn", now, "POST", "/sync/push", body)
    first = client.post(HUGINN + "/sync/push", content=body, headers=headers)
    replay = client.post(HUGINN + "/sync/push", content=body, headers=headers)
    assert first.json() == {"merged": 1}
    assert replay.status_code == 401 and "replayed" in replay.json()["error"]

    # An entry stamped a year ahead is refused; the node's clock stays true.
    ahead = {**entry, "key": "ack/ahead", "hlc": f"{now + 365 * 86_400_000}.0.muninn",
             "version": 10**9 + 1}  # fmt: skip
    response = send(client, world.secret, "/sync/push", json.dumps({"entries": [ahead]}).encode(),
                    "good")  # fmt: skip
    assert response.status_code == 422 and "in the future" in response.json()["error"]
    clock_ms = int(world.api("huginn", "/api/v1/nodes")["clock"].split(".")[0])
    assert abs(clock_ms - time.time() * 1000) < 60_000

    # An entry from a node nobody knows merges inert (a replaced node's old
    # entries must not stall the sync of its successor).
    stranger = {**entry, "key": "ack/odin", "hlc": f"{now}.0.odin", "origin": "odin"}
    response = send(client, world.secret, "/sync/push",
                    json.dumps({"entries": [stranger]}).encode(), "good")  # fmt: skip
    assert response.status_code == 200

    refuses_entries_no_node_may_write(world, client, entry)

    bodies_and_pace_are_bounded(world, client)

    # It kept serving and checking throughout.
    assert client.get(HUGINN + "/healthz").status_code == 200
    checked = world.query("huginn", "SELECT max(at_ms) FROM checks")[0][0]
    assert time.time() * 1000 - checked < 10_000
    assert world.state("huginn") == "UP"
    api_input_is_refused_by_name(client)
    client.close()
    # And the pair still pages a real outage, once.
    world.start("muninn")
    world.outage_is_paged_once()


def cut_off_after(request: bytes) -> float:
    """Seconds until the node closes a connection that trickles a byte a second."""
    began = time.monotonic()
    with socket.create_connection((address("huginn"), NODE_PORT), timeout=5) as sock:
        sock.sendall(request)
        for _ in range(60):  # bounded: a minute at most
            time.sleep(1)
            try:
                sock.sendall(b"x")
                if sock.recv(1, socket.MSG_DONTWAIT) == b"":
                    break
            except BlockingIOError:
                continue
            except OSError:
                break
    return time.monotonic() - began


def refuses_entries_no_node_may_write(
    world: World, client: httpx.Client, entry: dict[str, Any]
) -> None:
    """A version past int64, a key no node writes, and Huginn's own view
    written in Muninn's name: each refused with its reason, nothing merged
    (the poisoned write once stopped both nodes writing)."""
    before = foreign(world)
    poisoned = [
        ({**entry, "key": "ack/overflow", "version": 2**63}, "version: expected 1 to"),
        ({**entry, "key": "junk/overflow", "version": 10**9 + 2}, "not a key the nodes write"),
        ({**entry, "key": "obs/huginn/site", "value": {"state": "DOWN"}, "version": 10**9 + 3},
         "only huginn writes it"),
    ]  # fmt: skip
    for bad, reason in poisoned:
        response = send(client, world.secret, "/sync/push",
                        json.dumps({"entries": [bad]}).encode(), "good")  # fmt: skip
        assert response.status_code == 422 and reason in response.json()["error"], response.text
    assert foreign(world) == before


def api_input_is_refused_by_name(client: httpx.Client) -> None:
    """Deep JSON, a target aimed at the metadata address, and parameters out
    of range: each a 400 whose message names what is wrong, nothing written."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    deep = "[" * 100_000 + "]" * 100_000
    got = client.post(HUGINN + "/api/v1/admin/targets", content=deep,
                      headers={**admin, "Content-Type": "application/json"})  # fmt: skip
    assert got.status_code == 400 and "nested too deep" in got.json()["error"], got.text
    metadata = {"id": "meta", "kind": "http", "url": "http://169.254.169.254/latest/meta-data/"}
    got = client.post(HUGINN + "/api/v1/admin/targets", json=metadata, headers=admin)
    assert got.status_code == 400 and "169.254.169.254 is link-local" in got.json()["error"]
    for path, named in (("/api/v1/incidents?from=%C2%B2", "from:"),
                        ("/api/v1/targets/site/uptime?windows=999999999d", "windows:"),
                        ("/api/v1/targets/site/history?limit=-1", "limit:")):  # fmt: skip
        got = client.get(HUGINN + path)
        assert got.status_code == 400 and got.json()["error"].startswith(named), (path, got.text)
    listed = client.get(HUGINN + "/api/v1/targets").json()["targets"]
    assert [t["id"] for t in listed] == ["site"], "nothing was added"


def bodies_and_pace_are_bounded(world: World, client: httpx.Client) -> None:
    # Oversized bodies: declared, and sent chunked without a length.
    before = foreign(world)
    big = b"x" * (wire.MAX_BODY_BYTES + 1)
    assert send(client, world.secret, "/sync/push", big, "good").status_code == 413
    chunked = client.post(HUGINN + "/sync/push", content=iter([big[:4_000_000], big[4_000_000:]]))
    assert chunked.status_code == 413
    assert client.post(HUGINN + "/api/v1/push/x", content=b"y" * 300_000).status_code == 413
    assert foreign(world) == before

    # Slow clients: a request head, and a body, sent a byte at a time.
    head = b"POST /sync/push HTTP/1.1\r\nHost: h\r\n"
    for request in (head, head + b"Content-Length: 1000\r\n\r\n{"):
        assert cut_off_after(request) <= READ_TIMEOUT_S + 2
