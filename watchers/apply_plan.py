"""`ravens targets apply`: what makes the pair's run-time targets and
windows match a file, as a list of changes and the log writes that make them.

Pure: the node's current targets and windows come in, the plan goes out,
and nothing is written unless every part of the file is valid. Targets are
compared as validated models (a key written out at its default equals a key
left out); windows have no name, so a window is the same window when every
field is, and `apply` touches only windows an earlier `apply` made, never
one started by hand (``ravens maintenance start``) or from the config.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError, model_validator

from consensus import keys
from consensus.lww import JsonValue
from watchers.config_problems import describe_problem
from watchers.maintenance import MaintenanceWindow
from watchers.probes import AnyTarget, Target
from watchers.probes.base import Strict
from watchers.probes.parents import check_parents

# What one file may hold: beyond this, split it (a request body is bounded too).
MAX_TARGETS = 5000
MAX_WINDOWS = 500
WINDOW_KINDS = {"maintenance": keys.MAINTENANCE, "silences": keys.SILENCE}


class ApplyFile(Strict):
    """The file `apply` reads: the config's [[targets]], [[maintenance]] and
    [[silences]] tables, nothing else."""

    targets: tuple[Target, ...] = ()
    maintenance: tuple[MaintenanceWindow, ...] = ()
    silences: tuple[MaintenanceWindow, ...] = ()

    @model_validator(mode="after")
    def _bounded_and_unique(self) -> ApplyFile:
        if len(self.targets) > MAX_TARGETS:
            raise ValueError(f"targets: at most {MAX_TARGETS} in one file")
        for kind in WINDOW_KINDS:
            if len(getattr(self, kind)) > MAX_WINDOWS:
                raise ValueError(f"{kind}: at most {MAX_WINDOWS} in one file")
        seen: dict[str, int] = {}
        for index, target in enumerate(self.targets):
            if target.id in seen:
                raise ValueError(
                    f"targets[{index}].id: {target.id!r} is also targets[{seen[target.id]}]"
                )
            seen[target.id] = index
        return self


class Refused(ValueError):
    """The file cannot be applied; the message names the key."""


@dataclass(frozen=True)
class Change:
    op: str  # "+", "~" or "-"
    kind: str  # "target", "maintenance" or "silence"
    name: str
    key: str | None = None
    old: JsonValue = None
    new: JsonValue = None

    def line(self) -> str:
        if self.op == "~":
            return f"~ {self.kind} {self.name} {self.key}: {_short(self.old)} -> {_short(self.new)}"
        return f"{self.op} {self.kind} {self.name}"

    def to_value(self) -> dict[str, JsonValue]:
        return {
            "op": self.op,
            "kind": self.kind,
            "name": self.name,
            "key": self.key,
            "old": self.old,
            "new": self.new,
            "line": self.line(),
        }


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    # (key, value, action, subject): what the admin API writes, with its audit words.
    writes: list[tuple[str, JsonValue, str, str]] = field(default_factory=list)
    # New and changed targets: the node judges their addresses before writing.
    to_judge: list[AnyTarget] = field(default_factory=list)


@dataclass(frozen=True)
class Current:
    """What the node has now."""

    api_targets: Mapping[str, AnyTarget]
    config_targets: Mapping[str, AnyTarget]
    # Per kind ("maintenance", "silences"): window id -> (window, made by apply).
    windows: Mapping[str, Mapping[str, tuple[MaintenanceWindow, bool]]]


def parse_file(document: Any) -> ApplyFile:
    if not isinstance(document, dict):
        raise Refused("expected a table of targets, maintenance and silences")
    try:
        return ApplyFile.model_validate(document)
    except ValidationError as exc:
        raise Refused("; ".join(describe_problem(e) for e in exc.errors())) from None


def plan(document: Any, current: Current, new_id: Callable[[], str]) -> Plan:
    """The changes that make the node's run-time targets and applied windows
    what the document says; raises Refused (naming the key) if any part of
    it cannot be applied, before anything is planned."""
    wanted = parse_file(document)
    raw_targets = document.get("targets", [])
    for index, target in enumerate(wanted.targets):
        if target.id in current.config_targets:
            raise Refused(
                f"targets[{index}].id: {target.id!r} is defined in the node's config "
                "file; apply manages only targets added at run time"
            )
        if target.kind == "push":
            raise Refused(
                f"targets[{index}].kind: push targets need a token file; "
                "add them to the config file"
            )
        if target.kind == "http" and (target.header_file or target.header_env):
            name = "header_file" if target.header_file else "header_env"
            raise Refused(
                f"targets[{index}].{name}: secret headers are read only for "
                "targets in the config file; send the value in headers"
            )
    try:
        check_parents(wanted.targets, known=current.config_targets)
    except ValueError as exc:
        raise Refused(str(exc)) from None
    result = Plan()
    _plan_targets(wanted, raw_targets, current, result)
    for kind, prefix in WINDOW_KINDS.items():
        _plan_windows(kind, prefix, getattr(wanted, kind), current, new_id, result)
    return result


def _plan_targets(wanted: ApplyFile, raw: list[Any], current: Current, result: Plan) -> None:
    wanted_ids = {t.id for t in wanted.targets}
    for target, body in zip(wanted.targets, raw, strict=True):
        value: JsonValue = {"target": body}
        old = current.api_targets.get(target.id)
        if old is None:
            result.changes.append(Change("+", "target", target.id))
            result.writes.append((keys.TARGET + target.id, value, "add target", target.id))
            result.to_judge.append(target)
            continue
        before, after = _dump(old), _dump(target)
        differing = [k for k in sorted({*before, *after}) if before.get(k) != after.get(k)]
        if not differing:
            continue
        for key in differing:
            result.changes.append(
                Change("~", "target", target.id, key, before.get(key), after.get(key))
            )
        result.writes.append((keys.TARGET + target.id, value, "change target", target.id))
        result.to_judge.append(target)
    for target_id in sorted(set(current.api_targets) - wanted_ids):
        result.changes.append(Change("-", "target", target_id))
        result.writes.append((keys.TARGET + target_id, None, "remove target", target_id))


def _plan_windows(
    kind: str,
    prefix: str,
    wanted: tuple[MaintenanceWindow, ...],
    current: Current,
    new_id: Callable[[], str],
    result: Plan,
) -> None:
    singular = "silence" if kind == "silences" else kind
    applied = {
        _identity(window): window_id
        for window_id, (window, by_apply) in current.windows.get(kind, {}).items()
        if by_apply
    }
    wanted_by_identity: dict[str, MaintenanceWindow] = {}
    for window in wanted:
        wanted_by_identity.setdefault(_identity(window), window)
    for identity, window in wanted_by_identity.items():
        if identity in applied:
            continue
        window_id = new_id()
        body = window.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        result.changes.append(Change("+", singular, describe_window(window)))
        result.writes.append(
            (prefix + window_id, {"window": body, "applied": True}, f"add {kind}", window_id)
        )
    for identity, window_id in sorted(applied.items(), key=lambda item: item[1]):
        if identity not in wanted_by_identity:
            window = current.windows[kind][window_id][0]
            result.changes.append(Change("-", singular, describe_window(window)))
            result.writes.append((prefix + window_id, None, f"remove {kind}", window_id))


def describe_window(window: MaintenanceWindow) -> str:
    """Which targets and when, in a few words: `blog, #rack3 sun 02:00-03:00 UTC`."""
    names = ", ".join([*window.targets, *(f"#{tag}" for tag in window.tags)])
    if window.start is not None and window.end is not None:
        when = f"{window.start.isoformat()} to {window.end.isoformat()}"
    else:
        assert window.from_utc is not None and window.to_utc is not None
        span = f"{window.from_utc.strftime('%H:%M')}-{window.to_utc.strftime('%H:%M')}"
        when = f"{','.join(window.days)} {span} UTC"
    reason = f" ({window.reason})" if window.reason else ""
    return f"{names} {when}{reason}"


def _dump(target: AnyTarget) -> dict[str, Any]:
    return target.model_dump(mode="json", by_alias=True)


def _identity(window: MaintenanceWindow) -> str:
    dumped = window.model_dump(mode="json", by_alias=True)
    # The same instant written with another offset is the same window.
    for edge in ("start", "end"):
        moment = getattr(window, edge)
        if moment is not None:
            dumped[edge] = moment.timestamp()
    return json.dumps(dumped, sort_keys=True)


def _short(value: JsonValue) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."
