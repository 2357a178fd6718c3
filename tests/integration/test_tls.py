"""A node can serve TLS itself; the pair then syncs over HTTPS, trusting the
certificate named in [sync] ca_file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.processes import Pair, listening_socket
from tests.integration.servers import tls_context


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    tls_context(tmp_path, days_left=30)  # writes cert30.pem and key30.pem
    with listening_socket() as port:
        targets = f'\n[[targets]]\nid = "db"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {port}\n'
        p = Pair(tmp_path, targets, canary_port=port,
                 tls=(tmp_path / "cert30.pem", tmp_path / "key30.pem"))  # fmt: skip
        try:
            p.start_all()
            yield p
        finally:
            p.stop_all()


def test_the_pair_agrees_over_https(pair: Pair) -> None:
    pair.wait(pair.both("db", "UP"), "both agree over HTTPS")

    def huginn_seen_from_muninn() -> bool:
        # Only sync can carry Huginn's own verdict to Muninn.
        views = pair.api("muninn")
        return views is not None and views["targets"][0]["views"]["huginn"]["verdict"] == "UP"

    pair.wait(huginn_seen_from_muninn, "huginn's verdict reaches muninn over HTTPS")


def test_a_certificate_near_expiry_is_announced_once_by_the_pair(tmp_path: Path) -> None:
    from notify.inbox import Inbox, serve_in_thread

    tls_context(tmp_path, days_left=30)
    inbox = Inbox()
    with listening_socket() as port, serve_in_thread(inbox) as ntfy:
        p = Pair(tmp_path, "", canary_port=port, defaults_toml="tls_expiry_days = [45, 10]\n",
                 tls=(tmp_path / "cert30.pem", tmp_path / "key30.pem"))  # fmt: skip
        # The target: Huginn's own HTTPS endpoint, whose certificate has 30 days left.
        p.targets_toml = f"""
[ntfy]
url = "{ntfy}"
topic = "biphrost-status"

[[targets]]
id = "site"
kind = "http"
url = "https://127.0.0.1:{p.ports["huginn"]}/healthz"
verify_tls = false
"""
        try:
            p.start_all()
            p.wait(p.both("site", "UP"), "both see the site UP")
            p.wait(lambda: len(inbox.all()) == 1, "the expiry notice")
            p.rounds_pass("site", 3)  # every check sees the certificate again: nothing more
            (notice,) = inbox.all()
        finally:
            p.stop_all()
    assert notice["title"] == "site: TLS certificate expires in 30 days"
    assert "(threshold: 45 days)" in notice["message"] and notice["tags"] == ["lock", "warning"]
