"""Node-level states: how one node sees each of its peers.

A peer is VOTING while it is heard from and its canaries pass; NODE_ISOLATED
when it is heard from but its own network fails; PEER_LOST when it has been
silent past the peer timeout. One low-priority note goes out when an absence
lasts past its grace, and one when the peer is back; nothing between.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from consensus.agreement import Notice
from consensus.errors import InvalidEntry
from consensus.hlc import Hlc
from consensus.lww import JsonValue
from consensus.settings import Settings


class NodeState(StrEnum):
    VOTING = "VOTING"
    NODE_ISOLATED = "NODE_ISOLATED"
    PEER_LOST = "PEER_LOST"


ABSENCE_NOTICE: dict[NodeState, Notice] = {
    NodeState.NODE_ISOLATED: Notice.NODE_ISOLATED,
    NodeState.PEER_LOST: Notice.PEER_LOST,
}


@dataclass(frozen=True, slots=True)
class PeerRecord:
    """Replicated under ``peer/<node>`` once a note about it went out."""

    state: NodeState = NodeState.VOTING
    since_ms: int = 0
    noted: bool = False
    anchor: Hlc | None = None

    def to_value(self) -> JsonValue:
        return {
            "state": self.state.value,
            "since_ms": self.since_ms,
            "noted": self.noted,
            "anchor": None if self.anchor is None else self.anchor.encode(),
        }

    @classmethod
    def from_value(cls, value: JsonValue) -> PeerRecord:
        if not isinstance(value, dict):
            raise InvalidEntry(f"peer record: expected an object, got {value!r}")
        try:
            anchor = value.get("anchor")
            return cls(
                NodeState(str(value["state"])),
                int(str(value.get("since_ms", 0))),
                bool(value.get("noted", False)),
                Hlc.decode(anchor) if isinstance(anchor, str) else None,
            )
        except (KeyError, ValueError) as exc:
            raise InvalidEntry(f"peer record: {exc}") from exc


def grace_ms(state: NodeState, settings: Settings) -> int:
    if state is NodeState.NODE_ISOLATED:
        return settings.isolated_note_after_ms
    return settings.peer_lost_note_after_ms


def observe_peer(
    record: PeerRecord,
    seen: NodeState,
    anchor: Hlc | None,
    now_ms: int,
    settings: Settings,
) -> tuple[PeerRecord, Notice | None]:
    """The peer record after looking at the peer now, and the note to send."""
    if seen is NodeState.VOTING:
        if record.state is NodeState.VOTING:
            return record, None
        back = PeerRecord(NodeState.VOTING, now_ms, False, anchor)
        return back, (Notice.PEER_BACK if record.noted else None)
    if record.state is not seen:
        # A new absence, or a lost peer found isolated: one note per absence.
        noted = record.noted and record.state is not NodeState.VOTING
        record = PeerRecord(seen, now_ms, noted, anchor)
    if not record.noted and now_ms - record.since_ms >= grace_ms(seen, settings):
        return replace(record, noted=True), ABSENCE_NOTICE[seen]
    return record, None
