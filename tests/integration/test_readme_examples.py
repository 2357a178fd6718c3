"""Every curl line of the README, run as written by bash against a real pair.

What a reader fills in for their own setup is filled in here, and only that:
the node's address (``$N``), the admin token's file, the push token, the
example hosts (loopback here: tests reach nothing else), and the ids a
previous answer gave (``<id>``, ``<event id>``). Each line must exit 0 with
curl's ``--fail-with-body``: a 4xx or 5xx fails the test with the answer.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.processes import Pair, running
from tests.integration.test_admin import TOKEN, call
from tests.integration.test_pair import Behaviour
from watchers.demo import serve_target

README = Path(__file__).parents[2] / "README.md"
PUSH_TOKEN = "readme-push-token-0123456789"
# Every line starts with this: the reader's curl, failing on an HTTP error.
PREAMBLE = 'curl() { command curl -sS --fail-with-body --max-time 20 "$@"; }\n'


def readme_shell_lines() -> list[str]:
    """The README's sh blocks, one command per entry (continuations joined)."""
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip():
                lines.append(line)
    return lines


def curl_lines() -> list[str]:
    return [line for line in readme_shell_lines() if re.match(r"(curl |[AJ]=)", line)]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Pair, Behaviour, int]]:
    behaviour = Behaviour()
    site = serve_target(behaviour, time.time())
    port = site.server_address[1]
    (tmp_path / "admin-token").write_text(TOKEN)
    (tmp_path / "push-token").write_text(PUSH_TOKEN)
    extra = f"""
[[targets]]
id = "blog"
kind = "http"
url = "http://127.0.0.1:{port}/"
tags = ["customer"]

[[targets]]
id = "db"
kind = "tcp"
host = "127.0.0.1"
port = {port}

[[targets]]
id = "nightly-backup"
kind = "push"
grace_s = 3600
token_file = "{tmp_path / "push-token"}"

[[api.admins]]
name = "ops@biphrost"
token_file = "{tmp_path / "admin-token"}"

# The README's public hosts stand on loopback here.
[admin]
allow_private_targets = true
"""
    with running(Pair(tmp_path, extra, canary_port=port), site, up="blog") as pair:
        yield pair, behaviour, port


def an_incident(pair: Pair, behaviour: Behaviour) -> str:
    """blog DOWN, agreed and recorded: the event id the ack examples need."""
    behaviour.down = True
    pair.wait(pair.both("blog", "DOWN"), "both agree blog is DOWN")

    def downs() -> list[dict[str, Any]]:
        found = call(pair, "huginn", "GET", "/api/v1/incidents?target=blog", token=None)[1]
        return [i for i in found["incidents"] if i["state"] == "DOWN"]

    pair.wait(lambda: len(downs()) == 1, "the incident is recorded")
    return str(downs()[0]["event"])


def test_the_readme_has_the_curl_lines_this_test_runs() -> None:
    lines = curl_lines()
    assert len([line for line in lines if line.startswith("curl")]) >= 20, lines
    for placeholder in ("$N", "$PUSH_TOKEN", "<id>", "<event id>", "<last event id>",
                        "/etc/ravens/admin-token",
                        "https://shop.example.com/"):  # fmt: skip
        assert any(placeholder in line for line in lines), placeholder


def test_every_curl_line_of_the_readme_runs_against_a_pair(
    world: tuple[Pair, Behaviour, int], tmp_path: Path
) -> None:
    pair, behaviour, port = world
    fill = {
        "/etc/ravens/admin-token": str(tmp_path / "admin-token"),
        "https://shop.example.com/": f"http://127.0.0.1:{port}/",
        "<event id>": an_incident(pair, behaviour),
    }
    # The stream's id of the incident's DOWN: what a client saw last.
    since = int(time.time() * 1000) - 3_600_000
    stream = pair.url("huginn", f"/api/v1/stream?follow=false&from_id={since}-0")
    replayed = subprocess.run(["curl", "-sS", stream], capture_output=True, text=True,
                              timeout=30, check=True).stdout  # fmt: skip
    fill["<last event id>"] = re.findall(r"^id: (.*)$", replayed, re.M)[0]
    env = {
        "N": pair.url("huginn", "").rstrip("/"),
        "PUSH_TOKEN": PUSH_TOKEN,
        "PATH": "/usr/bin:/bin",
    }
    answers: dict[str, str] = {}
    ran = 0
    for line in curl_lines():
        command = line
        for placeholder, value in fill.items():
            command = command.replace(placeholder, value)
        if "<id>" in command:
            silence = json.loads(answers["/api/v1/admin/silences"])
            command = command.replace("<id>", silence["id"])
        if command.startswith(("A=", "J=")):
            name, _, _ = command.partition("=")
            shown = f'{command}\nprintf %s "${name}"'
            env[name] = subprocess.run(["bash", "-c", shown], env=env, capture_output=True,
                                       text=True, check=True).stdout  # fmt: skip
            continue
        done = subprocess.run(["bash", "-c", PREAMBLE + command], env=env, check=False,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, f"{line}\n-> {done.returncode}: {done.stdout} {done.stderr}"
        path = re.search(r"\$N(/[^\s\"?]*)", line)
        if path and "-X POST" in line:
            answers[path.group(1)] = done.stdout
        ran += 1
    assert ran >= 20
    assert env["A"] == f"Authorization: Bearer {TOKEN}"
    # What the lines did shows on the pair: the silence made and removed,
    # the incident acknowledged, the push heard.
    audit = call(pair, "huginn", "GET", "/api/v1/admin/audit")[1]
    assert "shop" in json.dumps(audit) and "silences" in json.dumps(audit)
    acked = call(pair, "huginn", "GET", "/api/v1/incidents?target=blog", token=None)[1]
    assert any(i.get("acknowledged") for i in acked["incidents"])


def test_status_check_passes_on_a_healthy_pair_and_fails_saying_why_when_a_node_is_gone(
    world: tuple[Pair, Behaviour, int],
) -> None:
    pair, _, _ = world
    (line,) = [x for x in readme_shell_lines() if "--check" in x]
    command = line.split("#")[0].split()
    assert command[:2] == ["ravens", "status"]

    def run(name: str) -> subprocess.CompletedProcess[str]:
        args = [a.replace("http://127.0.0.1:8470", pair.url(name, "").rstrip("/")) for a in command]
        return subprocess.run([sys.executable, "-m", "watchers", *args[1:]], capture_output=True,
                              text=True, timeout=60, check=False)  # fmt: skip

    healthy = run("muninn")
    assert healthy.returncode == 0 and "check:" not in healthy.stderr, healthy.stderr
    pair.kill("huginn")

    def huginn_lost() -> bool:
        # Asked of the API, not by starting the command every 0.2 s: the
        # command runs once muninn says so, and must then fail saying why.
        peers = (pair.api("muninn", "/api/v1/nodes") or {}).get("peers", [])
        return any(p.get("name") == "huginn" and p.get("state") == "PEER_LOST" for p in peers)

    pair.wait(huginn_lost, "muninn's API says huginn is lost", 60)
    gone = run("muninn")
    assert "check: huginn: not heard from: the pair cannot sync" in gone.stderr, gone.stderr


def readme_transcript(after: str) -> tuple[str, list[tuple[str, list[str]]]]:
    """The first toml block and console block after the heading that
    contains ``after``: the file, then each ``$`` command with its output."""
    text = README.read_text().split(after, 1)[1]
    toml = re.search(r"```toml\n(.*?)```", text, re.S)
    console = re.search(r"```console\n(.*?)```", text, re.S)
    assert toml is not None and console is not None
    steps: list[tuple[str, list[str]]] = []
    for line in console.group(1).splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return toml.group(1), steps


# What differs from run to run: window ids and the node's time.
_VARYING = (
    (re.compile(r"\b[0-9a-f]{12}\b"), "<window id>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d"), "<time>"),
)


def _same_shape(text: str) -> str:
    for pattern, word in _VARYING:
        text = pattern.sub(word, text)
    return text


def test_the_readme_transcript_of_the_admin_commands_runs_as_shown(
    world: tuple[Pair, Behaviour, int], tmp_path: Path
) -> None:
    pair, behaviour, port = world
    event = an_incident(pair, behaviour)
    node_url = pair.url("huginn", "").rstrip("/")
    fill = {
        "https://huginn.example.net:8470": node_url,
        "/etc/ravens/admin-token": str(tmp_path / "admin-token"),
        "<event id>": event,
    }
    toml, steps = readme_transcript("### Scripting the pair")
    work = tmp_path / "work"
    work.mkdir()
    (work / "targets.toml").write_text(
        toml.replace("https://shop.example.com/", f"http://127.0.0.1:{port}/")
        .replace('"mail.example.com"', '"127.0.0.1"')
        .replace("port = 587", f"port = {port}")
    )
    # The same sed on the test's file: its port is the loopback site's.
    steps = [(c.replace("port = 587", f"port = {port}"), out) for c, out in steps]
    ravens = f'ravens() {{ "{sys.executable}" -m watchers "$@"; }}\n'
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    for written, shown in steps:
        command = written
        for placeholder, value in fill.items():
            command = command.replace(placeholder, value)
        if command.startswith("export "):
            for pair_text in command.split()[1:]:
                name, _, value = pair_text.partition("=")
                env[name] = value
            continue
        script = ravens + "{ " + command + "; } 2>&1"
        done = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True,
                              text=True, timeout=60, check=False)  # fmt: skip
        said = done.stdout.replace(node_url, "https://huginn.example.net:8470")
        said = said.replace(event, "<event id>")
        assert _same_shape(said).splitlines() == _same_shape("\n".join(shown)).splitlines(), (
            command,
            done.stdout,
        )
    # What the commands did is on the pair, from the other node too.
    audit = call(pair, "muninn", "GET", "/api/v1/admin/audit")[1]["audit"]
    assert {"add target", "change target", "add maintenance", "remove maintenance",
            "add silences", "acknowledge"} <= {r["action"] for r in audit}  # fmt: skip
