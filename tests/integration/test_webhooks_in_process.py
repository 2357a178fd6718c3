"""Signed webhooks on a pair in this process (fake clock): each agreed
event reaches the receiver once, in order, signed; a 5xx storm holds the
deliveries in the outbox and they go out in order when it ends; a sender
cut from the receiver leaves them to its peer; a refusal is kept and shown
with the receiver's words."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from consensus.dispatch import designated_sender
from notify.signing import secret_key
from tests.integration.fakepair import NAMES, NTFY_TOKEN, Pair, World, config_toml, run_pair
from tests.integration.hook_receiver import SECRET, Delivery, Receiver, asgi_app
from tests.integration.notify_world import Switch
from watchers import cli_status
from watchers.config import parse_config
from watchers.pair_check import pair_problems
from watchers.secrets import api_tokens, with_secrets

KEY = secret_key(SECRET)
README = Path(__file__).parents[2] / "README.md"


def readme_receiver_examples() -> tuple[str, str]:
    """The README's receiver examples: the Python, then the shell."""
    text = README.read_text().split("### Webhooks, signed", 1)[1]
    python = re.search(r"```python\n(.*?)```", text, re.S)
    shell = re.search(r"```bash\n(.*?)```", text, re.S)
    assert python is not None and shell is not None
    return python.group(1), shell.group(1)


def readme_python_verifies(delivery: Delivery) -> bool:
    """The README's Python, as written, on a delivery; its clock set to the
    delivery's (the pair's fake time is years from the machine's)."""
    namespace: dict[str, object] = {}
    exec(readme_receiver_examples()[0], namespace)
    stamp = int(delivery.headers["webhook-timestamp"])
    namespace["time"] = SimpleNamespace(time=lambda: stamp + 5)
    check = namespace["verified"]
    assert callable(check)
    return bool(check(SECRET, delivery.headers, delivery.body))


def readme_shell_verifies(delivery: Delivery, where: Path) -> bool:
    """The README's shell lines, as written, with the headers and the body."""
    (where / "body.json").write_bytes(delivery.body)
    env = {
        "PATH": "/usr/bin:/bin",
        "SECRET": SECRET,
        "WEBHOOK_ID": delivery.headers["webhook-id"],
        "WEBHOOK_TIMESTAMP": delivery.headers["webhook-timestamp"],
        "WEBHOOK_SIGNATURE": delivery.headers["webhook-signature"],
    }
    done = subprocess.run(["bash", "-c", readme_receiver_examples()[1]], cwd=where, env=env,
                          capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert done.stdout.strip() in ("verified", "bad signature"), done.stderr
    return done.returncode == 0 and done.stdout.strip() == "verified"


def world(root: Path, port: int, receiver: Receiver, events: str = "") -> World:
    secret = root / "webhook-secret"
    secret.write_text(SECRET)
    targets = f"""
[[targets]]
id = "blog"
kind = "http"
url = "http://127.0.0.1:{port}/"

[[webhooks]]
name = "biphrost-api"
url = "http://receiver.test/hooks/ravens"
secret_file = "{secret}"
{events}
"""
    return World(targets, hook_app=asgi_app(receiver))


async def outage(pair: Pair, switch: Switch) -> None:
    switch.down = True
    await pair.run_until(pair.both("blog", "DOWN"), "both agree blog is DOWN", 120)
    switch.down = False
    await pair.run_until(pair.both("blog", "UP"), "both agree blog is UP", 120)


def test_each_event_once_in_order_signed_and_a_tampered_body_fails(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    switch, port = site
    receiver = Receiver()

    async def work(pair: Pair) -> None:
        await outage(pair, switch)
        await pair.run_until(lambda: receiver.told("blog") == ["DOWN", "UP"], "both told", 60)
        # Some rounds of checks later, nothing more came.
        await pair.advance(60)
        assert len(receiver.deliveries) == 2 and receiver.copies() == 0
        down, up = receiver.accepted()
        sender = designated_sender("blog", NAMES)
        for delivery in (down, up):
            assert delivery.signed_by(KEY)
            assert delivery.headers["webhook-id"] == delivery.data["id"]
            assert delivery.headers["content-type"] == "application/json"
            assert f"ravens/{sender}" in delivery.headers["user-agent"]
        body = json.loads(down.body)
        assert body["type"] == "transition.down"
        assert (body["data"]["target"], body["data"]["incident"]) == ("blog", "opened")
        assert set(body["data"]["views"]) == set(NAMES)
        assert json.loads(up.body)["data"]["incident"] == "closed"
        tampered = down.body.replace(b'"DOWN"', b'"UP"', 1)
        assert tampered != down.body
        forged = Delivery(down.headers, tampered, down.answered)
        assert not forged.signed_by(KEY)
        # The README's receiver examples say the same, as written.
        for delivery in (down, up):
            assert readme_python_verifies(delivery)
            assert readme_shell_verifies(delivery, tmp_path)
        assert not readme_python_verifies(forged)
        assert not readme_shell_verifies(forged, tmp_path)
        assert not down.signed_by(secret_key("whsec_" + "b3RoZXIga2V5IG9mIDMyIGJ5dGVzIGxvbmc="))
        # Both nodes have it delivered, and by whom.
        for name in NAMES:
            nodes = (await pair.get(name, "/api/v1/nodes")).json()
            assert nodes["webhooks"] == {"waiting": {}, "refused": []}

    run_pair(tmp_path, world(tmp_path, port, receiver), work)


def test_a_5xx_storm_holds_them_and_they_go_out_in_order_once_it_ends(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    switch, port = site
    receiver = Receiver(status=503)

    async def work(pair: Pair) -> None:
        await outage(pair, switch)
        await pair.run_until(lambda: len(receiver.deliveries) >= 3, "attempts in the storm", 300)
        assert receiver.accepted() == []
        nodes = (await pair.get("huginn", "/api/v1/nodes")).json()
        waiting = nodes["webhooks"]["waiting"]
        peer = (await pair.get("muninn", "/api/v1/nodes")).json()["webhooks"]["waiting"]
        assert waiting.get("biphrost-api", 0) + peer.get("biphrost-api", 0) >= 2
        # The metrics say the same, per node, and that the receiver fails.
        for name, found in (("huginn", waiting), ("muninn", peer)):
            metrics = (await pair.get(name, "/metrics")).text
            count = float(found.get("biphrost-api", 0))
            assert f'ravens_webhook_waiting{{hook="biphrost-api"}} {count}' in metrics
            if count:
                assert 'ravens_webhook_ok{hook="biphrost-api"} 0.0' in metrics
        receiver.status = 204
        await pair.run_until(lambda: receiver.told("blog") == ["DOWN", "UP"], "told", 600)
        await pair.advance(60)
        assert receiver.told("blog") == ["DOWN", "UP"] and receiver.copies() == 0

    run_pair(tmp_path, world(tmp_path, port, receiver), work)


def test_a_sender_cut_from_the_receiver_leaves_the_delivery_to_its_peer(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    switch, port = site
    receiver = Receiver()
    sender = designated_sender("blog", NAMES)
    standby = next(n for n in NAMES if n != sender)

    async def work(pair: Pair) -> None:
        pair.hook_links[sender].cut = True
        switch.down = True
        await pair.run_until(pair.both("blog", "DOWN"), "both agree blog is DOWN", 120)
        await pair.run_until(lambda: receiver.told("blog") == ["DOWN"], "the standby tells", 300)
        (down,) = receiver.accepted()
        assert f"ravens/{standby}" in down.headers["user-agent"]
        # ntfy's post stays with the sender, which reaches ntfy.
        assert [m["title"] for m in pair.inbox.all()] == ["blog is DOWN"]
        pair.hook_links[sender].cut = False
        await pair.advance(120)
        assert receiver.told("blog") == ["DOWN"] and receiver.copies() == 0

    run_pair(tmp_path, world(tmp_path, port, receiver), work)


def test_a_refusal_is_kept_and_shown_and_the_webhook_gets_only_what_it_asked_for(
    tmp_path: Path, site: tuple[Switch, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    switch, port = site
    receiver = Receiver(status=401)

    async def work(pair: Pair) -> None:
        await outage(pair, switch)

        async def refused() -> list[dict[str, str]]:
            found: list[dict[str, str]] = []
            for name in NAMES:
                nodes = (await pair.get(name, "/api/v1/nodes")).json()
                found += nodes["webhooks"]["refused"]
            return found

        async def shown() -> bool:
            return len(await refused()) == 1

        await pair.run_until(shown, "the refusal shown", 300)
        (row,) = await refused()
        assert row["hook"] == "biphrost-api" and row["error"].startswith("401")
        answers.update(await nodes_of(pair))
        # Refused once, not retried: the receiver said no.
        await pair.advance(120)
        assert len(receiver.deliveries) == 1
        assert [json.loads(d.body)["data"]["notice"] for d in receiver.deliveries] == ["DOWN"]

    events = 'events = ["down"]'
    answers: dict[str, dict[str, Any]] = {}
    run_pair(tmp_path, world(tmp_path, port, receiver, events), work)
    # What a sysop reads of it: `ravens status --check` and its lines.
    (holder,) = [n for n, found in answers.items() if found["nodes"]["webhooks"]["refused"]]
    problems = pair_problems(answers[holder]["nodes"])
    assert problems == [
        f"{holder}: webhook biphrost-api refused 1 delivery(ies) ({row_error(answers[holder])}): "
        "fix [[webhooks]] or the receiver"
    ]
    monkeypatch.setattr(
        cli_status,
        "_get_json",
        lambda _url, path, _token=None: (
            answers[holder]["targets"] if path == "/api/v1/targets" else answers[holder]["nodes"]
        ),
    )
    done = CliRunner().invoke(cli_status.status_command, ["--node", "http://n", "--check"])
    assert done.exit_code == 1, done.output
    assert "webhooks: 0 waiting, 1 refused" in done.output
    assert "biphrost-api refused" in done.output and "fix [[webhooks]]" in done.output


def row_error(found: dict[str, Any]) -> str:
    return str(found["nodes"]["webhooks"]["refused"][0]["error"])


async def nodes_of(pair: Pair) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "nodes": (await pair.get(name, "/api/v1/nodes")).json(),
            "targets": (await pair.get(name, "/api/v1/targets")).json(),
        }
        for name in NAMES
    }


def test_a_webhook_taken_out_of_the_config_waits_and_resumes_when_put_back(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    switch, port = site
    receiver = Receiver(status=503)
    with_hook = world(tmp_path, port, receiver)
    without = World(with_hook.targets_toml.split("[[webhooks]]")[0], hook_app=with_hook.hook_app)

    async def reload(pair: Pair, chosen: World) -> None:
        for name, node in pair.nodes.items():
            text = config_toml(name, pair.root, pair.canary.port, chosen)
            config = with_secrets(parse_config(tomllib.loads(text)))
            await node.reload(config, {}, (NTFY_TOKEN, None), api_tokens(config))
        await pair.advance(1)

    async def waiting(pair: Pair) -> dict[str, int]:
        found: dict[str, int] = {}
        for name in NAMES:
            found.update((await pair.get(name, "/api/v1/nodes")).json()["webhooks"]["waiting"])
        return found

    async def work(pair: Pair) -> None:
        switch.down = True
        await pair.run_until(pair.both("blog", "DOWN"), "both agree blog is DOWN", 120)
        await pair.run_until(lambda: len(receiver.deliveries) >= 1, "tried in the storm", 120)
        assert await waiting(pair) == {"biphrost-api": 1}
        await reload(pair, without)
        assert await waiting(pair) == {}
        tried = len(receiver.deliveries)
        # Longer than the courier's next retry and its probe would be.
        await pair.advance(120)
        assert len(receiver.deliveries) == tried, "no courier for a webhook not configured"
        receiver.status = 204
        await reload(pair, with_hook)
        await pair.run_until(lambda: receiver.told("blog") == ["DOWN"], "the kept DOWN", 300)
        assert await waiting(pair) == {} and receiver.copies() == 0

    run_pair(tmp_path, with_hook, work)
