"""The admin API under /api/v1/admin: targets, maintenance windows and
silences at run time, acknowledgements, and the audit trail.

Every change is a log entry written with its audit record in one step, so it
reaches the peer like any other fact and either node answers the same.
Bearer tokens come from the config's [[api.admins]]; a missing or wrong
token is a 401 and the comparison takes the same time either way.
"""

import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from fastapi.responses import Response
from pydantic import ValidationError

from consensus import keys
from consensus.lww import JsonValue
from watchers.admin_shapes import TARGET_ADAPTER
from watchers.api import target_summary
from watchers.apply_plan import WINDOW_KINDS, Current, Refused, plan
from watchers.config_problems import describe_problem
from watchers.maintenance import MaintenanceWindow
from watchers.probes import KINDS, AnyTarget, refusal_for
from watchers.probes.parents import check_parents
from watchers.runtime import Node

JsonBody = Annotated[dict[str, Any], Body(description="a JSON object")]
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ravens admin"'}
Write = Callable[[str, JsonValue, str, str, str], Awaitable[None]]


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def token_owner(token: str | None, known: dict[str, str]) -> str | None:
    """The name behind token; every known token is compared, in constant time."""
    owner = None
    for candidate, name in known.items():
        if hmac.compare_digest(candidate.encode(), (token or "").encode()):
            owner = name
    return owner if token else None


async def admin_name(request: Request) -> str:
    """The admin behind the request's Bearer token, or a 401."""
    node: Node = request.app.state.node
    if not node.api.admins:
        raise HTTPException(
            401, "the admin API is off: no [[api.admins]] in this node's config", headers=CHALLENGE
        )
    token = bearer(request)
    if token is None:
        raise HTTPException(401, "send Authorization: Bearer <admin token>", CHALLENGE)
    who = token_owner(token, node.api.admins)
    if who is None:
        raise HTTPException(401, "admin token not accepted", CHALLENGE)
    return who


Admin = Annotated[str, Depends(admin_name)]


def admin_router(node: Node) -> APIRouter:
    api = APIRouter(prefix="/api/v1/admin", tags=["admin"])

    async def write(key: str, value: JsonValue, who: str, action: str, subject: str) -> None:
        audit: dict[str, JsonValue] = {"who": who, "action": action, "subject": subject}
        await node.apply(node.core.admin_write(key, value, node.clock.now_ms(), audit))

    _target_routes(api, node, write)
    _apply_routes(api, node)
    _window_routes(api, node, write, "maintenance", keys.MAINTENANCE)
    _window_routes(api, node, write, "silences", keys.SILENCE)
    _incident_routes(api, node, write)
    return api


def _problems(exc: ValidationError) -> HTTPException:
    """Pydantic's errors as the config file words them; a target's kind tag
    is not part of the key the caller wrote."""
    problems = []
    for error in exc.errors():
        loc = error["loc"]
        shown = {**error, "loc": loc[1:]} if loc and loc[0] in KINDS else error
        problems.append(describe_problem(shown))
    return HTTPException(400, "; ".join(problems))


def _target_routes(api: APIRouter, node: Node, write: Write) -> None:
    async def parse(body: dict[str, Any]) -> AnyTarget:
        try:
            target = TARGET_ADAPTER.validate_python(body)
        except ValidationError as exc:
            raise _problems(exc) from None
        if target.kind == "push":
            raise HTTPException(
                400, "kind: push targets need a token file; add them to the config file"
            )
        if target.kind == "http" and (target.header_file or target.header_env):
            # Read from this node's disk or environment and sent to the target:
            # only the operator's config file may do that.
            key = "header_file" if target.header_file else "header_env"
            raise HTTPException(
                400,
                f"{key}: secret headers are read only for targets in the "
                "config file; send the value in headers",
            )
        others = [t for t_id, t in node.targets.items() if t_id != target.id]
        try:
            check_parents([*others, target])
        except ValueError as exc:
            # The key is the target's own, not its place among the node's.
            raise HTTPException(400, f"parent: {str(exc).partition(': ')[2]}") from None
        # Judged before anything connects; each check judges it again (and
        # every redirect), as a name may point elsewhere later.
        refused = await refusal_for(node.reach, target)
        if refused is not None:
            raise HTTPException(400, f"{refused[0]}: {refused[1]}")
        return target

    def api_owned(target_id: str) -> None:
        if target_id in node.targets and node.source_of(target_id) == "config":
            raise HTTPException(
                409, f"target {target_id!r} is defined in the config file; change it there"
            )

    @api.post("/targets", status_code=201, summary="Add a target")
    async def add_target(body: JsonBody, who: Admin) -> dict[str, Any]:
        target = await parse(body)
        api_owned(target.id)
        if target.id in node.targets:
            raise HTTPException(409, f"target {target.id!r} exists; PUT to change it")
        await write(f"{keys.TARGET}{target.id}", {"target": body}, who, "add target", target.id)
        return target_summary(node, target.id)

    @api.put("/targets/{target_id}", summary="Change a target the API added")
    async def change_target(target_id: str, body: JsonBody, who: Admin) -> dict[str, Any]:
        body = {**body, "id": body.get("id", target_id)}
        target = await parse(body)
        if target.id != target_id:
            raise HTTPException(400, f"id: the body says {target.id!r}, the path {target_id!r}")
        api_owned(target_id)
        if target_id not in node.targets:
            raise HTTPException(404, f"no target with id {target_id!r}")
        await write(f"{keys.TARGET}{target_id}", {"target": body}, who, "change target", target_id)
        return target_summary(node, target_id)

    @api.delete("/targets/{target_id}", status_code=204, summary="Remove a target the API added")
    async def remove_target(target_id: str, who: Admin) -> Response:
        api_owned(target_id)
        if target_id not in node.targets:
            raise HTTPException(404, f"no target with id {target_id!r}")
        await write(f"{keys.TARGET}{target_id}", None, who, "remove target", target_id)
        return Response(status_code=204)


def _apply_routes(api: APIRouter, node: Node) -> None:
    @api.get("/targets", summary="Every target with where it comes from, and the applied windows")
    async def list_targets(_who: Admin) -> dict[str, Any]:
        written = node.core.admin_targets()
        targets = []
        for target_id, target in sorted(node.targets.items()):
            source = node.source_of(target_id)
            stored = written.get(target_id) if source == "api" else None
            body = stored.get("target") if isinstance(stored, dict) else None
            targets.append(
                {
                    "id": target_id,
                    "kind": target.kind,
                    "source": source,
                    "tags": list(target.tags),
                    "target": body,
                }
            )
        windows = {
            kind: [
                {
                    "id": window_id,
                    "applied": by_apply,
                    "window": window.model_dump(mode="json", by_alias=True, exclude_defaults=True),
                }
                for window_id, (window, by_apply) in current_windows(node, kind).items()
            ]
            for kind in WINDOW_KINDS
        }
        return {"targets": targets, **windows}

    @api.post("/apply", summary="Make the run-time targets and applied windows match a document")
    async def apply_document(body: JsonBody, who: Admin, dry_run: bool = False) -> dict[str, Any]:
        current = Current(
            api_targets={i: t for i, t in node.targets.items() if node.source_of(i) == "api"},
            config_targets={i: t for i, t in node.targets.items() if node.source_of(i) == "config"},
            windows={kind: current_windows(node, kind) for kind in WINDOW_KINDS},
        )
        try:
            planned = plan(body, current, lambda: secrets.token_hex(6))
        except Refused as exc:
            raise HTTPException(400, str(exc)) from None
        ids = [t.get("id") if isinstance(t, dict) else None for t in body.get("targets", [])]
        for target in planned.to_judge:
            # Judged before anything is written: one refusal changes nothing.
            refused = await refusal_for(node.reach, target)
            if refused is not None:
                raise HTTPException(
                    400, f"targets[{ids.index(target.id)}].{refused[0]}: {refused[1]}"
                )
        if planned.writes and not dry_run:
            changes: list[tuple[str, JsonValue, dict[str, JsonValue]]] = [
                (key, value, {"who": who, "action": action, "subject": subject})
                for key, value, action, subject in planned.writes
            ]
            await node.apply(node.core.admin_writes(changes, node.clock.now_ms()))
        return {"dry_run": dry_run, "changes": [c.to_value() for c in planned.changes]}


def current_windows(node: Node, kind: str) -> dict[str, tuple[MaintenanceWindow, bool]]:
    """The windows of a kind the admin API added, by id, each with whether
    `apply` made it; a value no longer valid is left out."""
    found = {}
    for window_id, written in node.core.admin_windows(silences=kind == "silences").items():
        if not isinstance(written, dict):
            continue
        try:
            window = MaintenanceWindow.model_validate(written.get("window"))
        except ValidationError:
            continue
        found[window_id] = (window, written.get("applied") is True)
    return found


def _window_routes(api: APIRouter, node: Node, write: Write, kind: str, prefix: str) -> None:
    @api.post(f"/{kind}", status_code=201, summary=f"Add a {kind} window")
    async def add_window(body: JsonBody, who: Admin) -> dict[str, Any]:
        try:
            window = MaintenanceWindow.model_validate(body)
        except ValidationError as exc:
            raise _problems(exc) from None
        window_id = secrets.token_hex(6)
        await write(f"{prefix}{window_id}", {"window": body}, who, f"add {kind}", window_id)
        return {"id": window_id, "window": window.model_dump(mode="json", by_alias=True)}

    @api.get(f"/{kind}", summary=f"{kind.capitalize()} windows, from the config and the API")
    async def list_windows(_who: Admin) -> dict[str, Any]:
        from_config = getattr(node.config, kind)
        return {
            "config": [w.model_dump(mode="json", by_alias=True) for w in from_config],
            "api": node.core.admin_windows(silences=kind == "silences"),
        }

    @api.delete(f"/{kind}/{{window_id}}", status_code=204, summary=f"End a {kind} window")
    async def remove_window(window_id: str, who: Admin) -> Response:
        if window_id not in node.core.admin_windows(silences=kind == "silences"):
            raise HTTPException(404, f"no {kind} window {window_id!r} added by the API")
        await write(f"{prefix}{window_id}", None, who, f"remove {kind}", window_id)
        return Response(status_code=204)


def _incident_routes(api: APIRouter, node: Node, write: Write) -> None:
    @api.post("/incidents/{event_id}/ack", summary="Acknowledge an incident: no more reminders")
    async def acknowledge(
        event_id: str, who: Admin, body: JsonBody | None = None
    ) -> dict[str, Any]:
        if node.core.event(event_id) is None:
            raise HTTPException(404, f"no event {event_id!r}")
        note = (body or {}).get("note", "")
        if not isinstance(note, str) or len(note) > 500:
            raise HTTPException(400, "note: expected text of at most 500 characters")
        value: dict[str, JsonValue] = {"by": who, "note": note, "at_ms": node.clock.now_ms()}
        await write(keys.ack(event_id), value, who, "acknowledge", event_id)
        return {"event": event_id, "acknowledged": value}

    @api.get("/audit", summary="Every admin change, newest first, from both nodes")
    async def audit(_who: Admin) -> dict[str, Any]:
        records = node.core.audit_records()
        records.sort(key=lambda r: (-_int(r.get("at_ms")), str(r.get("key"))))
        return {"audit": records}


def _int(value: JsonValue) -> int:
    return value if isinstance(value, int) else 0
