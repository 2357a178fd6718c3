"""What the admin API writes to the log, read back as typed values: the
targets and windows either node added."""

from __future__ import annotations

import logging

from pydantic import TypeAdapter, ValidationError

from consensus.lww import JsonValue
from consensus.node import NodeCore
from watchers.maintenance import MaintenanceWindow
from watchers.probes import AnyTarget, Target

log = logging.getLogger("ravens")
TARGET_ADAPTER: TypeAdapter[AnyTarget] = TypeAdapter(Target)


def api_targets(written_by_id: dict[str, JsonValue]) -> dict[str, AnyTarget]:
    """Targets the admin API added, as the log holds them (either node's)."""
    found: dict[str, AnyTarget] = {}
    for target_id, written in written_by_id.items():
        value = written.get("target") if isinstance(written, dict) else None
        try:
            target = TARGET_ADAPTER.validate_python(value)
        except ValidationError:
            log.warning("log entry target/%s: not a valid target; ignored", target_id)
            continue
        found[target.id] = target
    return found


def api_windows(core: NodeCore, silences: bool) -> list[MaintenanceWindow]:
    """Maintenance windows or silences the admin API added."""
    found = []
    for window_id, written in core.admin_windows(silences).items():
        value = written.get("window") if isinstance(written, dict) else None
        try:
            found.append(MaintenanceWindow.model_validate(value))
        except ValidationError:
            log.warning("admin window %s: not a valid window; ignored", window_id)
    return found
