"""Webhook signatures: the Standard Webhooks convention's own example, and
what a receiver refuses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notify.signing import BadSecret, secret_key, signature, verify

# The example in the Standard Webhooks specification.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_specification_s_example_signs_as_it_says() -> None:
    assert signature(secret_key(SECRET), MSG_ID, TIMESTAMP, BODY) == EXPECTED


def test_a_receiver_accepts_it_and_refuses_any_change() -> None:
    key = secret_key(SECRET)
    stamp = str(TIMESTAMP)
    assert verify(key, MSG_ID, stamp, EXPECTED, BODY, TIMESTAMP + 10)
    assert verify(key, MSG_ID, stamp, f"v1,bm90IHRoaXM= {EXPECTED}", BODY, TIMESTAMP)
    assert not verify(key, MSG_ID, stamp, EXPECTED, BODY.replace(b"2", b"3"), TIMESTAMP)
    assert not verify(key, "msg_other", stamp, EXPECTED, BODY, TIMESTAMP)
    assert not verify(key, MSG_ID, str(TIMESTAMP + 1), EXPECTED, BODY, TIMESTAMP)
    assert not verify(b"another key", MSG_ID, stamp, EXPECTED, BODY, TIMESTAMP)
    # Replayed later than the tolerance, or a timestamp that is not one.
    assert not verify(key, MSG_ID, stamp, EXPECTED, BODY, TIMESTAMP + 301)
    assert not verify(key, MSG_ID, "16e8", EXPECTED, BODY, TIMESTAMP)


def test_a_plain_secret_is_its_bytes_and_a_bad_whsec_one_is_refused() -> None:
    assert secret_key("a plain secret of some length") == b"a plain secret of some length"
    with pytest.raises(BadSecret, match="base64"):
        secret_key("whsec_not base64!")


@given(st.binary(max_size=200), st.binary(max_size=200), st.integers(0, 10**12 - 1))
def test_every_body_verifies_under_its_own_key_only(body: bytes, other: bytes, at: int) -> None:
    key = b"k" * 32
    signed = signature(key, "e1", at, body)
    assert verify(key, "e1", str(at), signed, body, at)
    assert verify(key, "e1", str(at), signed, other, at) == (other == body)
