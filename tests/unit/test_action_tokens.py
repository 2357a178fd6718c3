"""The tokens behind a page's buttons: what one grants, and that nothing
else does (another key, another action or incident, a changed character,
a late press)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notify.action_tokens import Action, TokenRefused, derive_key, issue, verify

KEY = derive_key("s" * 40)
INCIDENT = "0123456789abcdef01234567"
NOW_S = 1_900_000_000
incidents = st.text("0123456789abcdef", min_size=8, max_size=64)
actions = st.sampled_from(Action)


@given(actions, incidents, st.integers(1, 10**6))
def test_a_token_grants_its_action_on_its_incident_until_it_expires(
    action: Action, incident: str, ttl_s: int
) -> None:
    token = issue(KEY, action, incident, NOW_S + ttl_s)
    granted = verify(KEY, token, NOW_S)
    assert (granted.action, granted.incident) == (action, incident)
    assert verify(KEY, token, NOW_S + ttl_s - 1) == granted
    with pytest.raises(TokenRefused, match="expired") as late:
        verify(KEY, token, NOW_S + ttl_s)
    assert late.value.status == 403


@given(actions, incidents, st.data())
def test_any_changed_character_is_refused(
    action: Action, incident: str, data: st.DataObject
) -> None:
    token = issue(KEY, action, incident, NOW_S + 3600)
    at = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.sampled_from("0123456789abcdefABCXYZ._-").filter(lambda c: c != token[at]))
    changed = token[:at] + char + token[at + 1 :]
    with pytest.raises(TokenRefused) as refused:
        verify(KEY, changed, NOW_S)
    assert refused.value.status in (400, 403)


def test_what_one_token_proves_nothing_else_does() -> None:
    token = issue(KEY, Action.ACKNOWLEDGE, INCIDENT, NOW_S + 3600)
    _, incident, expires, mac = token.split(".")
    forged = {
        "another action": f"silence1h.{incident}.{expires}.{mac}",
        "another incident": f"ack.{'f' * 24}.{expires}.{mac}",
        "a later expiry": f"ack.{incident}.{int(expires) + 1}.{mac}",
        "another pair's key": issue(derive_key("t" * 40), Action.ACKNOWLEDGE, INCIDENT, NOW_S + 9),
    }
    for what, text in forged.items():
        with pytest.raises(TokenRefused, match="not issued by this pair") as refused:
            verify(KEY, text, NOW_S)
        assert refused.value.status == 403, what


NOT_TOKENS = ["", "ack", "ack.x.1.y", "drop.0123456789.1." + "a" * 22,
              "ack.0123456789." + "9" * 13 + "." + "a" * 22, "a" * 5000]  # fmt: skip


@pytest.mark.parametrize("text", NOT_TOKENS)
def test_what_is_not_a_token_is_a_400_that_says_so(text: str) -> None:
    with pytest.raises(TokenRefused, match="token") as refused:
        verify(KEY, text, NOW_S)
    assert refused.value.status == 400


def test_the_key_is_not_the_sync_secret() -> None:
    assert KEY != b"s" * 40 and len(KEY) == 32
