"""Whole numbers from outside: only what int() reads safely."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from watchers.digits import plain_digits


def test_unicode_digits_and_long_numbers_are_not_plain() -> None:
    assert plain_digits("1764500000000", 16)
    for text in ("²", "١٢", "\uff11\uff12", "", "-1", "1.0", " 1", "9" * 17):
        assert not plain_digits(text, 16), text


@given(st.text(max_size=20))
def test_whatever_is_plain_reads_as_a_number(text: str) -> None:
    if plain_digits(text, 16):
        assert 0 <= int(text) < 10**16
