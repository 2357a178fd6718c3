"""The status page in a real browser, served by a running pair: states,
bars, escaping, no console errors, a screenshot; and a thousand targets."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.browser import needs_browser, visit
from tests.integration.processes import Pair, listening_socket, running
from tests.integration.test_pair import Behaviour
from watchers.demo import serve_target

ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "artifacts"
SCRIPT_NAME = "<script>alert(1)</script> & co"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Pair]:
    behaviour = Behaviour()
    behaviour.down_for = "muninn"
    one_sided = serve_target(behaviour, time.time())
    healthy = serve_target(Behaviour(), time.time())
    with listening_socket() as canary:
        targets = f"""
[[targets]]
id = "blog"
name = "blog.example.com"
kind = "http"
url = "http://127.0.0.1:{healthy.server_address[1]}/"

[[targets]]
id = "shop"
name = "{SCRIPT_NAME}"
kind = "http"
url = "http://127.0.0.1:{one_sided.server_address[1]}/"

[[targets]]
id = "db"
kind = "tcp"
host = "127.0.0.1"
port = 9
"""
        with running(Pair(tmp_path, targets, canary_port=canary), one_sided, healthy) as pair:
            yield pair


def test_pages_and_badges_carry_security_headers(world: Pair) -> None:
    pair = world
    with urllib.request.urlopen(pair.url("huginn", "/"), timeout=10) as resp:
        page, headers = resp.read().decode(), resp.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    policy = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
    # The page's one script runs by its hash, as the page is served.
    (script,) = re.findall(r"<script>(.*?)</script>", page, re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}';" in policy
    with urllib.request.urlopen(pair.url("huginn", "/badge/blog/status.svg"), timeout=10) as resp:
        assert (
            resp.headers["Content-Security-Policy"]
            == "default-src 'none'; style-src 'unsafe-inline'"
        )
        assert resp.headers["X-Content-Type-Options"] == "nosniff"


@needs_browser
def test_the_harness_sees_console_errors() -> None:
    broken = visit("data:text/html,<p>x</p><script>undefinedFn()</script>")
    assert any("undefinedFn is not defined" in line for line in broken.console), broken.console


@needs_browser
def test_the_status_page_renders_states_bars_and_escapes_names(world: Pair) -> None:
    pair = world
    wanted = {"blog": "UP", "db": "DOWN", "shop": "PARTIAL"}

    def settled() -> bool:
        return all(pair.state("huginn", t) == state for t, state in wanted.items())

    pair.wait(settled, "UP, DOWN and PARTIAL", 60)
    shot = ARTIFACTS / "status-page.png"
    page = visit(pair.url("huginn", "/"), screenshot=shot)
    assert page.console == [], page.console
    assert shot.stat().st_size > 10_000
    dom = page.dom
    for target, state in (("blog", "UP"), ("db", "DOWN"), ("shop", "PARTIAL")):
        assert f'href="/t/{target}"' in dom
        assert f'<span class="state s-{state}">{state}</span>' in dom
    assert dom.count('<svg class="bar"') == 3
    assert dom.count('<rect role="listitem" tabindex="0"') >= 6  # no data, then today
    assert "to " + time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86_400)) + ": no data" in dom
    assert ": 100.000% up, 0 s down, 0 incidents" in dom
    assert html.escape(SCRIPT_NAME, quote=False) in dom
    assert "<script>alert" not in dom
    assert dom.count("<script>") == 1, "only the page's own refresh script"
    plain = visit(pair.url("huginn", "/t/shop?theme=plain"), screenshot=ARTIFACTS / "target.png")
    assert plain.console == [] and 'class="plain"' in plain.dom
    assert "status 503" in plain.dom and "muninn" in plain.dom
    # Alone on the target's page, the 90-day bar spans the page like the
    # tables around it (in the status page's table, its column fits it).
    (alone,) = re.findall(r"<svg class=\"bar[^>]*>", plain.dom)
    assert 'class="bar full" width="100%"' in alone and 'preserveAspectRatio="none"' in alone
    assert dom.count('<svg class="bar" width="359"') == 3
    # Response time: three charts, each node's hourly p50 and p95 drawn (the
    # hour under way is computed from the raw checks, the peer's over sync).
    for theme_dom in (plain.dom, visit(pair.url("huginn", "/t/blog")).dom):
        assert theme_dom.count('<svg class="latency"') == 3
        for name, index in (("huginn", 0), ("muninn", 1)):
            for kind in ("p50", "p95"):
                assert f'<path class="line n{index} {kind}"' in theme_dom, (name, kind)
        assert "where the time went" in theme_dom and "first byte" in theme_dom


@needs_browser
def test_a_thousand_targets_still_render(tmp_path: Path) -> None:
    with listening_socket() as port:
        targets = "".join(
            f'\n[[targets]]\nid = "t{i:04d}"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {port}\n'
            f"interval_s = 3600\n"
            for i in range(1000)
        )
        pair = Pair(tmp_path, targets, canary_port=port)
        try:
            pair.start("huginn")
            with urllib.request.urlopen(pair.url("huginn", "/"), timeout=60) as response:
                size = len(response.read())
            page = visit(pair.url("huginn", "/"), screenshot=ARTIFACTS / "thousand.png")
        finally:
            pair.stop_all()
    assert page.console == []
    assert page.dom.count('<tr class="target"') == 1000
    assert size < 3_000_000, f"{size} bytes for 1,000 targets"
