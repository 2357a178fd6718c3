"""A node's own health as replicated under ``health/<node>``: the heartbeat,
whether its canaries (its own network) pass, and whether it can deliver to
ntfy (a claim to post is good only while its holder can)."""

from __future__ import annotations

from dataclasses import dataclass

from consensus.errors import InvalidEntry
from consensus.events import HOOK_NAME_CHARS, MAX_HOOKS
from consensus.hlc import Hlc
from consensus.lww import JsonValue


@dataclass(frozen=True, slots=True)
class Health:
    canaries_ok: bool | None = None
    # The last time the canaries passed, on the node's own clock.
    canary_pass: Hlc | None = None
    # False while its last attempt to reach ntfy failed (no connection, a
    # timeout, a 5xx); None before it tried.
    ntfy_ok: bool | None = None
    # The node's wall clock when it wrote this: a true reading, unlike the
    # entry's hlc, which may stand after an older stamp from a clock step.
    wall_ms: int | None = None
    # What its targets' servers say to add to that clock for true time
    # (reference.py); carried over the node's restarts.
    clock_error_ms: int | None = None
    # Its outbox: posts waiting for ntfy, and posts ntfy refused (a wrong
    # token, a reserved topic): told so the peer can say so too.
    outbox_waiting: int | None = None
    outbox_refused: int | None = None
    # The webhooks its last attempt did not reach (no connection, a
    # timeout, a 5xx): its claims to deliver to them are good only while not.
    hooks_failing: tuple[str, ...] = ()

    def to_value(self) -> JsonValue:
        return {
            "canaries_ok": self.canaries_ok,
            "canary_pass": None if self.canary_pass is None else self.canary_pass.encode(),
            "ntfy_ok": self.ntfy_ok,
            "wall_ms": self.wall_ms,
            "clock_error_ms": self.clock_error_ms,
            "outbox_waiting": self.outbox_waiting,
            "outbox_refused": self.outbox_refused,
            "hooks_failing": list(self.hooks_failing),
        }

    @classmethod
    def from_value(cls, value: JsonValue) -> Health:
        if not isinstance(value, dict):
            raise InvalidEntry(f"health: expected an object, got {value!r}")
        ok = value.get("canaries_ok")
        passed = value.get("canary_pass")
        ntfy_ok = value.get("ntfy_ok")
        for name, flag in (("canaries_ok", ok), ("ntfy_ok", ntfy_ok)):
            if flag is not None and not isinstance(flag, bool):
                raise InvalidEntry(f"health.{name}: expected true, false or null, got {flag!r}")
        wall = _millis(value, "wall_ms")
        error = _millis(value, "clock_error_ms")
        passed_hlc = Hlc.decode(passed) if isinstance(passed, str) else None
        waiting, refused = _count(value, "outbox_waiting"), _count(value, "outbox_refused")
        failing = _names(value.get("hooks_failing"))
        return cls(ok, passed_hlc, ntfy_ok, wall, error, waiting, refused, failing)  # type: ignore[arg-type]


def _names(found: JsonValue) -> tuple[str, ...]:
    if found is None:
        return ()
    if not (
        isinstance(found, list)
        and len(found) <= MAX_HOOKS
        and all(isinstance(n, str) and 0 < len(n) <= HOOK_NAME_CHARS for n in found)
    ):
        raise InvalidEntry(f"health.hooks_failing: expected webhook names, got {found!r:.80}")
    return tuple(str(n) for n in found)


def _count(value: dict[str, JsonValue], name: str) -> int | None:
    found = value.get(name)
    if found is None:
        return None
    if isinstance(found, bool) or not isinstance(found, int) or not 0 <= found < 2**31:
        raise InvalidEntry(f"health.{name}: expected a count, got {found!r}")
    return found


def _millis(value: dict[str, JsonValue], name: str) -> int | None:
    found = value.get(name)
    if found is None:
        return None
    if isinstance(found, bool) or not isinstance(found, int) or not -(2**53) < found < 2**53:
        raise InvalidEntry(f"health.{name}: expected milliseconds, got {found!r}")
    return found
