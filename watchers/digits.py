"""Whole numbers read from text that came from outside."""

from __future__ import annotations


def plain_digits(text: str, most: int) -> bool:
    """Whether text is 1 to ``most`` ASCII digits: what int() reads safely.

    str.isdigit() alone also passes Unicode digits such as "²", which int()
    refuses, and any length, which int() reads slowly or not at all."""
    return 0 < len(text) <= most and text.isascii() and text.isdigit()
