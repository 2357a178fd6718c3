"""The read token against a real node: the read API, the page and the
docs closed without it, and `ravens status` asking for it. (The admin API's
auth, targets, windows, silences and acknowledgements are judged on a pair
in process: test_admin_in_process.py.)"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.integration.processes import NAMES, Pair
from tests.integration.test_admin_in_process import ADMIN, BLOG
from tests.integration.test_pair import Behaviour
from watchers.demo import serve_target

TOKEN = secrets.token_hex(20)


def call(pair: Pair, name: str, method: str, path: str, body: Any = None,
         token: str | None = TOKEN) -> tuple[int, Any, Any]:  # fmt: skip
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(pair.url(name, path), data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, response.headers
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        headers = exc.headers
        exc.close()
        return exc.code, json.loads(raw) if raw else None, headers


def test_a_read_token_closes_the_read_api_and_the_page(tmp_path: Path) -> None:
    behaviour = Behaviour()
    site = serve_target(behaviour, time.time())
    read_token = secrets.token_hex(16)
    (tmp_path / "read-token").write_text(read_token)
    extra = f'\n[api]\nread_token_file = "{tmp_path / "read-token"}"\n'
    pair = Pair(tmp_path, extra, canary_port=site.server_address[1])
    try:
        pair.start("huginn")
        for path in ("/api/v1/targets", "/", "/metrics", "/api/v1/nodes", "/api/v1/openapi.json",
                     "/api/v1/docs"):  # fmt: skip
            assert call(pair, "huginn", "GET", path, token=None)[0] == 401, path
            assert call(pair, "huginn", "GET", path, token="wrong")[0] == 401, path
        for path in ("/api/v1/targets", "/api/v1/openapi.json"):
            assert call(pair, "huginn", "GET", path, token=read_token)[0] == 200, path
        bearer = {"Authorization": f"Bearer {read_token}"}
        docs = urllib.request.Request(pair.url("huginn", "/api/v1/docs"), headers=bearer)
        with urllib.request.urlopen(docs, timeout=10) as response:
            assert response.status == 200 and b"swagger" in response.read().lower()
        status = [sys.executable, "-m", "watchers", "status", "--node", pair.url("huginn", "")]
        refused = subprocess.run(status, check=False, capture_output=True, text=True, timeout=30)
        assert refused.returncode != 0 and "pass --token-file" in refused.stderr, refused.stderr
        with_token = [*status, "--token-file", str(tmp_path / "read-token")]
        shown = subprocess.run(with_token, check=False, capture_output=True, text=True, timeout=30)
        assert shown.returncode == 0 and "as seen by huginn" in shown.stdout, shown.stderr
        assert call(pair, "huginn", "GET", "/healthz", token=None)[0] == 200
    finally:
        pair.stop_all()
        site.shutdown()
        site.server_close()


class Held:
    """A target that holds each request until the test lets it go, and
    says which nodes (by User-Agent) have a check of it in flight."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.waiting: set[str] = set()

    def __call__(self, agent: str, _t: float) -> tuple[int, float]:
        node = next((n for n in NAMES if n in agent), agent)
        self.waiting.add(node)
        self.release.wait(timeout=60)
        return 200, 0.0


def test_a_target_removed_and_a_node_stopped_mid_check_log_no_traceback(tmp_path: Path) -> None:
    """Ordinary events are one INFO line: a check whose target the admin
    API removed while it was in flight, and checks in flight when a node
    stops (SIGTERM)."""
    shop, blog = Held(), Held()
    shop_site, blog_site = serve_target(shop, time.time()), serve_target(blog, time.time())
    (tmp_path / "admin-token").write_text(TOKEN)
    extra = ADMIN.format(token_file=tmp_path / "admin-token") + BLOG.format(
        port=blog_site.server_address[1]
    )
    pair = Pair(tmp_path, extra, canary_port=shop_site.server_address[1])
    try:
        blog.release.set()
        pair.start_all()
        body = {
            "id": "shop",
            "kind": "http",
            "url": f"http://127.0.0.1:{shop_site.server_address[1]}/",
        }
        assert call(pair, "huginn", "POST", "/api/v1/admin/targets", body)[0] == 201
        # Each node's first check of the shop is held: removed under it.
        pair.wait(lambda: shop.waiting == set(NAMES), "both nodes checking the shop", 30)
        assert call(pair, "muninn", "DELETE", "/api/v1/admin/targets/shop")[0] == 204
        pair.wait(lambda: all(pair.state(n, "shop") is None for n in NAMES),
                  "both dropped the shop", 30)  # fmt: skip
        shop.release.set()
        pair.wait(lambda: all("removed meanwhile" in log(tmp_path, n) for n in NAMES),
                  "both dropped the held check's result", 30)  # fmt: skip
        # Now hold the blog's checks, and stop both nodes under them.
        blog.release.clear()
        blog.waiting.clear()
        pair.wait(lambda: blog.waiting == set(NAMES), "both nodes checking the blog", 30)
        for name in NAMES:
            pair.kill(name, signal.SIGTERM)
    finally:
        shop.release.set()
        blog.release.set()
        pair.stop_all()
        for site in (shop_site, blog_site):
            site.shutdown()
            site.server_close()
    for name in NAMES:
        text = log(tmp_path, name)
        assert "stopped with the node" in text, text[-2000:]
        assert "Traceback" not in text and " ERROR " not in text, text[-4000:]


def log(root: Path, name: str) -> str:
    return (root / f"{name}.log").read_text()
