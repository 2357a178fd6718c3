"""What each key prefix of the log holds: one table from prefix to the
reader of its value. An entry is merged only when its prefix is in the
table and its reader takes its value, so nothing the core later reads
from the log can fail there (and no node writes another's facts)."""

from __future__ import annotations

from collections.abc import Callable

from consensus import keys
from consensus.agreement import AgreedRecord
from consensus.errors import InvalidEntry
from consensus.events import Event
from consensus.health import Health
from consensus.history import AgreedMove
from consensus.lww import Entry, JsonValue
from consensus.peers import PeerRecord
from consensus.verdict import Verdict


def node_of(value: JsonValue) -> str | None:
    """The node a claim or a sent record names."""
    if isinstance(value, dict):
        node = value.get("node")
        return node if isinstance(node, str) else None
    return None


def _view(entry: Entry) -> None:
    if keys.split_obs(entry.key) is not None:
        Verdict.from_value(entry.value)


def _move(entry: Entry) -> None:
    split = keys.split_move(entry.key)
    if split is None or split[1] != entry.hlc.encode():
        raise InvalidEntry(f"entry {entry.key}: expected move/<target>/<its own hlc>")
    AgreedMove.from_value(split[0], entry.hlc, entry.value)


def _heartbeat(entry: Entry) -> None:
    value = entry.value
    if not (isinstance(value, dict) and isinstance(value.get("at_ms"), int)):
        raise InvalidEntry(f"entry {entry.key}: expected an object with at_ms")


def _names_a_node(entry: Entry) -> None:
    if node_of(entry.value) is None:
        raise InvalidEntry(f"entry {entry.key}: expected an object with a node name")


def _names_a_hook_delivery(entry: Entry) -> None:
    rest = entry.key.partition("/")[2]
    if keys.split_hook_delivery(rest) is None:
        raise InvalidEntry(f"entry {entry.key[:80]}: expected <prefix>/<hook>/<event id>")
    _names_a_node(entry)


def _an_object(entry: Entry) -> None:
    # The shell validates the fields (a target's kind, a window's times).
    if not isinstance(entry.value, dict):
        raise InvalidEntry(f"entry {entry.key}: expected an object")


# Each reader raises InvalidEntry for a value it cannot take; what it returns is unused.
READERS: dict[str, Callable[[Entry], object]] = {
    keys.OBS: _view,
    keys.HEALTH: lambda e: Health.from_value(e.value),
    keys.STATE: lambda e: AgreedRecord.from_value(e.value),
    keys.PEER: lambda e: PeerRecord.from_value(e.value),
    keys.EVENT: lambda e: Event.from_value(e.key[len(keys.EVENT) :], e.value),
    keys.CLAIM: _names_a_node,
    keys.SENT: _names_a_node,
    keys.HOOK_CLAIM: _names_a_hook_delivery,
    keys.HOOK_SENT: _names_a_hook_delivery,
    keys.PUSH: _heartbeat,
    keys.MOVE: _move,
    **dict.fromkeys(keys.ADMIN_PREFIXES, _an_object),
}


def validate_value(entry: Entry) -> None:
    """Refuse a value that the core would fail to read later, a key no
    node writes, and a node's own facts written in another's name."""
    key = entry.key
    prefix = next((p for p in READERS if key.startswith(p)), None)
    if prefix is None:
        raise InvalidEntry(f"entry {key[:80]}: not a key the nodes write")
    owner = keys.owner(key)
    if owner is not None and owner != entry.origin:
        raise InvalidEntry(f"entry {key}: only {owner} writes it, not {entry.origin}")
    if not entry.tombstone:
        READERS[prefix](entry)
