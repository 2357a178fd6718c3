"""A host and the 30 sites on it, on real processes: when the host falls
with everything on it, one page names the host and the 30, and one page
says it is back; a site on it failing alone pages on its own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from notify.inbox import Inbox, serve_in_thread
from tests.integration.notify_world import TOKEN, Switch, titles
from tests.integration.processes import Pair
from watchers.demo import serve_target

SITES = [f"site{i:02d}" for i in range(30)]


def targets(port: int, lonely_port: int) -> str:
    """The host answers on its own path; every site on it fails with it."""
    entry = '[[targets]]\nid = "{id}"\nkind = "http"\nurl = "{url}"\ninterval_s = 2\n{more}'
    parts = [entry.format(id="host", url=f"http://127.0.0.1:{port}/host", more="")]
    parts += [entry.format(id=s, url=f"http://127.0.0.1:{port}/{s}", more='parent = "host"\n')
              for s in SITES]  # fmt: skip
    parts.append(entry.format(id="lonely", url=f"http://127.0.0.1:{lonely_port}/",
                              more='parent = "host"\n'))  # fmt: skip
    return "\n".join(parts)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Pair, Inbox, Switch, Switch]]:
    host, lonely = Switch(), Switch()
    servers = [serve_target(host, time.time()), serve_target(lonely, time.time())]
    inbox = Inbox(token=TOKEN)
    (tmp_path / "ntfy-token").write_text(TOKEN)
    with serve_in_thread(inbox) as url:
        extra = f"""
[ntfy]
url = "{url}"
topic = "biphrost-status"
token_file = "{tmp_path / "ntfy-token"}"
group_window_s = 5

{targets(servers[0].server_address[1], servers[1].server_address[1])}
"""
        pair = Pair(tmp_path, extra, canary_port=servers[0].server_address[1])
        try:
            pair.start_all()
            yield pair, inbox, host, lonely
        finally:
            pair.stop_all()
            for server in servers:
                server.shutdown()
                server.server_close()


def test_a_host_falling_with_its_30_sites_pages_once_and_a_site_alone_pages_itself(
    world: tuple[Pair, Inbox, Switch, Switch],
) -> None:
    pair, inbox, host, lonely = world
    everything = ["host", *SITES, "lonely"]
    pair.wait(lambda: all(pair.both(t, "UP")() for t in everything), "all UP on both", 60)

    host.down = True
    pair.wait(lambda: all(pair.both(t, "DOWN")() for t in ["host", *SITES]),
              "both agree the host and its 30 sites are DOWN", 60)  # fmt: skip
    pair.wait(lambda: bool(titles(inbox)), "the host's page", 60)
    host.down = False
    pair.wait(lambda: all(pair.both(t, "UP")() for t in everything), "all UP again", 60)
    pair.wait(lambda: len(titles(inbox)) >= 2, "the host's recovery", 60)
    pair.rounds_pass("host", rounds=3)
    down, up = inbox.all()
    assert down["title"] == "host is DOWN with 30 of 31 targets on it"
    assert f"Down with it (30 of 31): {', '.join(SITES)}." in down["message"]
    assert up["title"] == "host is UP"
    assert "All 31 targets that depend on it are up." in up["message"]

    lonely.down = True
    pair.wait(lambda: "lonely is DOWN" in titles(inbox), "lonely's own page", 60)
    lonely.down = False
    pair.wait(lambda: "lonely is UP" in titles(inbox), "lonely's recovery", 60)
    pair.rounds_pass("lonely", rounds=3)
    assert titles(inbox)[2:] == ["lonely is DOWN", "lonely is UP"]
    # Both nodes recorded every site's outage all the same.
    for name in ("huginn", "muninn"):
        incidents = pair.api(name, "/api/v1/incidents?target=site17") or {}
        (incident,) = incidents.get("incidents", [])
        assert incident["notification"]["status"] == "covered", (name, incident)
        host = pair.api(name, "/api/v1/incidents?target=host") or {}
        assert incident["notification"]["by"] == host["incidents"][0]["event"]
