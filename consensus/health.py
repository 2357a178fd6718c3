"""A node's own health as replicated under ``health/<node>``: the heartbeat
and whether its canaries (its own network) pass."""

from __future__ import annotations

from dataclasses import dataclass

from consensus.errors import InvalidEntry
from consensus.hlc import Hlc
from consensus.lww import JsonValue


@dataclass(frozen=True, slots=True)
class Health:
    canaries_ok: bool | None = None
    # The last time the canaries passed, on the node's own clock.
    canary_pass: Hlc | None = None

    def to_value(self) -> JsonValue:
        return {
            "canaries_ok": self.canaries_ok,
            "canary_pass": None if self.canary_pass is None else self.canary_pass.encode(),
        }

    @classmethod
    def from_value(cls, value: JsonValue) -> Health:
        if not isinstance(value, dict):
            raise InvalidEntry(f"health: expected an object, got {value!r}")
        ok = value.get("canaries_ok")
        passed = value.get("canary_pass")
        if ok is not None and not isinstance(ok, bool):
            raise InvalidEntry(f"health.canaries_ok: expected true, false or null, got {ok!r}")
        return cls(ok, Hlc.decode(passed) if isinstance(passed, str) else None)
