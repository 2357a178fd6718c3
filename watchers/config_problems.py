"""A validation error, told as an operator reads a config: the dotted key
(``targets.2.url``), what was expected, and what was found."""

from __future__ import annotations

from typing import Any

from watchers.probes import KINDS

# An unknown key with one of these in its name was probably meant as a secret.
SECRET_WORDS = ("secret", "token", "password", "key")


def describe_problem(error: Any) -> str:
    key = _dotted(error["loc"])
    message = str(error["msg"])
    kind = error["type"]
    if kind == "extra_forbidden":
        hint = ""
        if any(word in key.rsplit(".", 1)[-1] for word in SECRET_WORDS):
            hint = " (secrets come from a *_file or *_env key, never inline)"
        return f"{key}: unknown key{hint}"
    if kind == "missing":
        return f"{key}: required key missing"
    if kind == "union_tag_invalid":
        return (
            f"{key}.kind: unknown kind {error['ctx']['tag']!r}; expected one of {', '.join(KINDS)}"
        )
    if error["loc"] and error["loc"][-1] == "[key]":
        # A table whose keys are a fixed set: name the key, not "[key]".
        key = _dotted(error["loc"][:-2])
        return f"{key}: unknown key {error.get('input')!r}; expected one of " + (
            str(error.get("ctx", {}).get("expected", "")).replace("'", "")
        )
    message = _EXPECTED.get(kind, message).format(**error.get("ctx", {}))
    message = message.removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, dict | list):
        return f"{key}: {message}" if key else message
    return f"{key}: {message}, got {value!r}" if key else f"{message}, got {value!r}"


# Pydantic's wording, turned into what the key expected.
_EXPECTED = {
    "greater_than": "expected a number above {gt:g}",
    "greater_than_equal": "expected a number of at least {ge:g}",
    "less_than": "expected a number below {lt:g}",
    "less_than_equal": "expected a number of at most {le:g}",
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected text",
    "string_too_short": "expected at least {min_length} characters",
    "string_too_long": "expected at most {max_length} characters",
    "string_pattern_mismatch": "expected text matching {pattern}",
    "literal_error": "expected one of {expected}",
    "url_parsing": "expected a URL ({error})",
    "url_scheme": "expected a URL with scheme {expected_schemes}",
    "ip_any_address": "expected an IPv4 or IPv6 address",
    "tuple_type": "expected a list",
    "dict_type": "expected a table",
    "model_type": "expected a table",
}


def _dotted(loc: tuple[Any, ...]) -> str:
    """('targets', 3, 'tcp', 'port') -> 'targets[3].port' (the kind tag dropped)."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif i > 0 and loc[0] == "targets" and part in KINDS and isinstance(loc[i - 1], int):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out
