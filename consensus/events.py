"""Events: agreed transitions with an id both nodes compute alike."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from consensus.agreement import Mode, Notice
from consensus.errors import InvalidEntry
from consensus.hlc import Hlc
from consensus.lww import JsonValue

ID_HEX_CHARS = 24
# The webhooks an event goes to, as its deciding node named them: at most
# this many names, each at most HOOK_NAME_CHARS long.
MAX_HOOKS = 16
HOOK_NAME_CHARS = 32


def event_id(
    subject: str, notice: Notice, state: str, anchor: Hlc | None, mode: Mode, extra: str = ""
) -> str:
    """Hash of what decides the transition, never of who noticed it or when.

    ``extra`` tells apart notices of one state (the n-th reminder, a
    certificate's threshold). Also a valid ntfy sequence id (letters and digits)."""
    anchor_text = "-" if anchor is None else anchor.encode()
    parts = (subject, notice.value, state, anchor_text, mode.value, *((extra,) if extra else ()))
    material = "\x1f".join(parts)
    return hashlib.sha256(material.encode()).hexdigest()[:ID_HEX_CHARS]


@dataclass(frozen=True, slots=True)
class Event:
    """An agreed transition worth a notification (key ``event/<id>``).

    ``subject`` is a target id, or ``node:<name>`` for node-level notices."""

    id: str
    subject: str
    notice: Notice
    state: str
    previous: str
    anchor: Hlc | None
    mode: Mode
    voters: tuple[str, ...]
    # What each node saw when the move was made: state, reason, latency.
    views: Mapping[str, Mapping[str, JsonValue]] = field(default_factory=dict)
    suppressed: bool = False
    # When the previous agreed state began: an UP says how long the outage lasted.
    previous_since_ms: int | None = None
    # What a notice needs beyond the move: the reminder's number, a
    # certificate's expiry and the threshold it crossed.
    detail: Mapping[str, JsonValue] = field(default_factory=dict)
    # The webhooks it goes to: named when it is decided, so a webhook added
    # later never gets old events, and every node delivers the same ones.
    hooks: tuple[str, ...] = ()

    @property
    def at_ms(self) -> int | None:
        return None if self.anchor is None else self.anchor.wall_ms

    def to_value(self) -> JsonValue:
        hooks: dict[str, JsonValue] = {"hooks": list(self.hooks)} if self.hooks else {}
        return {
            "subject": self.subject,
            "notice": self.notice.value,
            "state": self.state,
            "previous": self.previous,
            "anchor": None if self.anchor is None else self.anchor.encode(),
            "mode": self.mode.value,
            "voters": list(self.voters),
            "views": {node: dict(view) for node, view in self.views.items()},
            "suppressed": self.suppressed,
            "previous_since_ms": self.previous_since_ms,
            "detail": dict(self.detail),
            **hooks,
        }

    @classmethod
    def from_value(cls, id_: str, value: JsonValue) -> Event:
        if not isinstance(value, dict):
            raise InvalidEntry(f"event {id_}: expected an object, got {value!r}")
        try:
            anchor = value.get("anchor")
            voters = value.get("voters")
            views = value.get("views")
            return cls(
                id=id_,
                subject=str(value["subject"]),
                notice=Notice(str(value["notice"])),
                state=str(value["state"]),
                previous=str(value.get("previous", "")),
                anchor=Hlc.decode(anchor) if isinstance(anchor, str) else None,
                mode=Mode(str(value["mode"])),
                voters=tuple(str(v) for v in voters) if isinstance(voters, list) else (),
                views={str(k): dict(v) for k, v in views.items() if isinstance(v, dict)}
                if isinstance(views, dict)
                else {},
                suppressed=bool(value.get("suppressed", False)),
                previous_since_ms=_int(value.get("previous_since_ms")),
                detail=dict(detail) if isinstance(detail := value.get("detail"), dict) else {},
                hooks=_hooks(id_, value.get("hooks")),
            )
        except (KeyError, ValueError) as exc:
            raise InvalidEntry(f"event {id_}: {exc}") from exc


def _hooks(id_: str, value: JsonValue) -> tuple[str, ...]:
    if value is None:
        return ()
    names_ok = isinstance(value, list) and all(
        isinstance(name, str) and 0 < len(name) <= HOOK_NAME_CHARS and "/" not in name
        for name in value
    )
    if not names_ok or len(value) > MAX_HOOKS:  # type: ignore[arg-type]
        raise InvalidEntry(
            f"event {id_}.hooks: expected at most {MAX_HOOKS} webhook names, got {value!r:.80}"
        )
    return tuple(str(name) for name in value)  # type: ignore[union-attr]


def _int(value: JsonValue) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
