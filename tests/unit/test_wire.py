"""Signed sync requests: fresh, new, and answers bound to their request."""

from __future__ import annotations

import pytest

from watchers import wire

SECRET = "s" * 64
NOW = 1_764_500_000_000
BODY = b'{"entries": []}'


def request(stamp: int = NOW, node: str = "muninn") -> dict[str, str]:
    headers = wire.signed_headers(SECRET, node, stamp, "POST", "/sync/push", BODY)
    return {k.lower(): v for k, v in headers.items()}


def verify(headers: dict[str, str], nonces: wire.Nonces, now: int = NOW) -> str:
    return wire.verify(SECRET, ["muninn"], headers, "POST", "/sync/push", BODY, now,
                       nonces=nonces)  # fmt: skip


def test_a_request_is_accepted_once_and_its_replay_refused() -> None:
    nonces = wire.Nonces()
    headers = request()
    assert verify(headers, nonces) == "muninn"
    with pytest.raises(wire.WireError, match="replayed") as refused:
        verify(headers, nonces, NOW + 1_000)
    assert refused.value.status == 401
    # Past twice the window the nonce is forgotten, and the stamp is too old anyway.
    with pytest.raises(wire.WireError, match="s off"):
        verify(headers, nonces, NOW + 2 * wire.WINDOW_MS + 1)
    assert verify(request(NOW + 2 * wire.WINDOW_MS + 1), nonces,
                  NOW + 2 * wire.WINDOW_MS + 1) == "muninn"  # fmt: skip


def test_the_window_is_seconds_either_way() -> None:
    nonces = wire.Nonces()
    for off in (-wire.WINDOW_MS - 1, wire.WINDOW_MS + 1, -14 * 60_000):
        with pytest.raises(wire.WireError, match="s off"):
            verify(request(NOW + off), nonces)
    assert verify(request(NOW - wire.WINDOW_MS), nonces) == "muninn"


def test_a_refused_request_leaves_no_nonce_behind() -> None:
    nonces = wire.Nonces()
    stale = request(NOW - 60_000)
    with pytest.raises(wire.WireError):
        verify(stale, nonces)
    tampered = {**request(), "x-ravens-signature": "0" * 64}
    with pytest.raises(wire.WireError, match="bad signature"):
        verify(tampered, nonces)
    assert len(nonces) == 0


def test_an_answer_fits_only_the_request_it_answers() -> None:
    asked = request()["x-ravens-nonce"]
    answer = wire.signed_headers(SECRET, "huginn", NOW - 300_000, "ANSWER", "/sync/push", BODY,
                                 asked)  # fmt: skip
    answer = {k.lower(): v for k, v in answer.items()}
    # Its time is the answerer's own clock, minutes off: no matter.
    assert wire.verify(SECRET, ["huginn"], answer, "ANSWER", "/sync/push", BODY, NOW,
                       answers=asked) == "huginn"  # fmt: skip
    with pytest.raises(wire.WireError, match="another request"):
        wire.verify(SECRET, ["huginn"], answer, "ANSWER", "/sync/push", BODY, NOW,
                    answers=wire.new_nonce())  # fmt: skip


def test_nonces_are_bounded() -> None:
    nonces = wire.Nonces(most=3)
    for i in range(3):
        nonces.admit(f"n{i}", NOW)
    with pytest.raises(wire.WireError) as full:
        nonces.admit("n3", NOW)
    assert full.value.status == 503
    nonces.admit("n3", NOW + 2 * wire.WINDOW_MS + 1)  # expired ones make room
    assert len(nonces) == 1
