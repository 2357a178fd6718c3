"""ntfy's action buttons as its server reads them (server/actions.go, 2.13):
the JSON array of a JSON publish or an ``Actions`` header, or the header's
simple form. The test server refuses what ntfy refuses, so a message it
accepts is one ntfy accepts.
"""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

MAX_ACTIONS = 3
KINDS = ("view", "broadcast", "http")
ID_CHARS = 10
ID_ALPHABET = string.ascii_letters + string.digits
BOOLEAN_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


class ActionsInvalid(ValueError):
    """ntfy's 400 with code 40018; the text says what was wrong."""


class ActionsUnparsable(ValueError):
    """A JSON publish whose actions do not decode: ntfy's 40024."""


def from_json(value: object) -> list[dict[str, Any]]:
    """The actions of a JSON publish, checked and given their ids."""
    if not isinstance(value, list):
        raise ActionsUnparsable("actions: expected an array")
    actions = []
    for item in value:
        if not isinstance(item, dict):
            raise ActionsUnparsable("actions: expected objects")
        actions.append(_typed(item))
    return checked(actions)


def from_header(text: str) -> list[dict[str, Any]]:
    """The ``Actions`` header: a JSON array, or the simple form."""
    if text.lstrip().startswith("["):
        try:
            return from_json(json.loads(text))
        except (ValueError, ActionsUnparsable) as exc:
            raise ActionsInvalid(f"actions: {exc}") from exc
    return checked([_simple(part) for part in _split(text, ";") if part.strip()])


def checked(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(actions) > MAX_ACTIONS:
        raise ActionsInvalid(f"too many actions: {len(actions)}, at most {MAX_ACTIONS}")
    out = []
    for action in actions:
        kind = str(action.get("action", "")).lower()
        if kind not in KINDS:
            raise ActionsInvalid(f"parameter 'action' cannot be {kind!r}")
        if not action.get("label"):
            raise ActionsInvalid("parameter 'label' is required")
        if kind in ("view", "http") and not action.get("url"):
            raise ActionsInvalid(f"parameter 'url' is required for action {kind!r}")
        method = str(action.get("method") or ("POST" if kind == "http" else "")).upper()
        if kind == "http" and method in ("GET", "HEAD") and action.get("body"):
            raise ActionsInvalid(f"parameter 'body' cannot be set if method is {method}")
        # The success JSON's order and omissions (Go's omitempty).
        found: dict[str, Any] = {
            "id": "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_CHARS)),
            "action": kind,
            "label": str(action["label"]),
            "clear": bool(action.get("clear", False)),
        }
        optional = {"url": action.get("url"), "method": method if kind == "http" else "",
                    "headers": action.get("headers"), "body": action.get("body")}  # fmt: skip
        found.update((name, value) for name, value in optional.items() if value)
        out.append(found)
    return out


def _typed(item: dict[str, Any]) -> dict[str, Any]:
    """Go decodes into typed fields: a wrong type fails the whole request."""
    for name in ("action", "label", "url", "method", "body", "intent"):
        if name in item and not isinstance(item[name], str):
            raise ActionsUnparsable(f"actions: {name} must be a string")
    if "clear" in item and not isinstance(item["clear"], bool):
        raise ActionsUnparsable("actions: clear must be a boolean")
    headers = item.get("headers")
    if headers is not None and not (
        isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())
    ):
        raise ActionsUnparsable("actions: headers must be an object of strings")
    return item


def _simple(part: str) -> dict[str, Any]:
    """``http, Label, https://url, method=POST, body=..., clear=true``."""
    fields = [f.strip() for f in _split(part, ",")]
    action: dict[str, Any] = {}
    positional = ["action", "label", "url"]
    for field in fields:
        name, sep, value = field.partition("=")
        if sep and name.strip() and " " not in name.strip() and "://" not in field.split("=")[0]:
            key = name.strip().lower()
            if key.startswith("headers."):
                action.setdefault("headers", {})[name.strip()[8:]] = _unquote(value)
            elif key == "clear":
                if value.strip().lower() not in BOOLEAN_WORDS:
                    raise ActionsInvalid(f"parameter 'clear' cannot be {value!r}")
                action["clear"] = BOOLEAN_WORDS[value.strip().lower()]
            else:
                action[key] = _unquote(value)
        elif positional:
            action[positional.pop(0)] = _unquote(field)
        else:
            raise ActionsInvalid(f"term {field!r} unknown")
    return action


def _split(text: str, sep: str) -> list[str]:
    """Split on sep outside single or double quotes."""
    parts, current, quote = [], "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == sep:
            parts.append(current)
            current = ""
            continue
        current += char
    if quote:
        raise ActionsInvalid("unclosed quote")
    return [*parts, current]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value
