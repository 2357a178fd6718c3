"""The replicated log: a last-writer-wins map with delta-state sync.

Each key holds one entry ``(value, hlc, origin, version)``. Merge keeps the
entry with the larger hlc, so it is commutative, associative and idempotent.
``version`` counts each origin's local writes; a version vector says, per
origin, up to which version everything arrived in order. A peer asks for
``delta_since(its_vector)`` and receives, page by page, every entry it may
lack together with how far each origin is now covered.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from consensus.errors import InvalidEntry
from consensus.hlc import Hlc

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]
VersionVector = dict[str, int]

# Bounds on what an entry may hold: every integer fits SQLite's int64 and a
# JSON reader's exact range, a value is small and shallow (the largest the
# node writes is a move or an event, a few KB).
MAX_SAFE_INT = 2**53 - 1
MAX_LOGICAL = 2**31
MAX_KEY_CHARS = 512
MAX_NAME_CHARS = 64
MAX_VALUE_BYTES = 64 * 1024
MAX_VALUE_DEPTH = 16


@dataclass(frozen=True, slots=True)
class Entry:
    """One replicated fact. ``tombstone`` marks a delete."""

    key: str
    value: JsonValue
    hlc: Hlc
    origin: str
    version: int
    tombstone: bool = False

    def rank(self) -> tuple[Hlc, str]:
        """Total order used by merge; the value breaks a tie that a correct
        clock never produces, so merge stays deterministic even then."""
        return (self.hlc, canonical(self.value))

    def beats(self, other: Entry) -> bool:
        """Whether merge keeps this entry over other (rank order, hlc first)."""
        if self.hlc != other.hlc:
            return self.hlc > other.hlc
        return canonical(self.value) > canonical(other.value)

    def check(self) -> int:
        """Refuse entries that break the log's rules before they are merged;
        the entry's size (key and value as JSON, in bytes) when it keeps them."""
        if not self.key or len(self.key) > MAX_KEY_CHARS:
            raise InvalidEntry(
                f"entry key {self.key[:80]!r}: expected 1 to {MAX_KEY_CHARS} characters"
            )
        if not 1 <= self.version <= MAX_SAFE_INT:
            raise InvalidEntry(
                f"entry {self.key}: version: expected 1 to {MAX_SAFE_INT}, got {self.version}"
            )
        if not self.origin or len(self.origin) > MAX_NAME_CHARS:
            raise InvalidEntry(
                f"entry {self.key}: origin: expected 1 to {MAX_NAME_CHARS} characters"
            )
        if self.hlc.node != self.origin:
            raise InvalidEntry(
                f"entry {self.key}: hlc node {self.hlc.node!r} differs from origin {self.origin!r}"
            )
        if self.hlc.wall_ms < 0 or self.hlc.logical < 0:
            raise InvalidEntry(f"entry {self.key}: hlc {self.hlc} has a negative part")
        if self.hlc.wall_ms > MAX_SAFE_INT or self.hlc.logical > MAX_LOGICAL:
            raise InvalidEntry(
                f"entry {self.key}: hlc: wall_ms at most {MAX_SAFE_INT}, "
                f"logical at most {MAX_LOGICAL}"
            )
        return len(self.key) + _check_value(self.key, self.value)


def _check_value(key: str, value: JsonValue) -> int:
    """A value within MAX_VALUE_DEPTH levels, integers within MAX_SAFE_INT,
    and at most MAX_VALUE_BYTES as JSON; walked without recursion, so a
    hostile depth cannot exhaust the stack."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, list | dict):
            if depth > MAX_VALUE_DEPTH:
                raise InvalidEntry(f"entry {key}: value: nested deeper than {MAX_VALUE_DEPTH}")
            children = item.values() if isinstance(item, dict) else item
            for child in children:
                # Plain strings, flags and small integers (most of any value)
                # are settled here, not pushed and popped.
                kind = type(child)
                if kind is str or kind is bool or child is None:
                    continue
                if kind is int and -MAX_SAFE_INT <= child <= MAX_SAFE_INT:
                    continue
                pending.append((child, depth + 1))
        else:
            _check_scalar(key, item)
    # The size canonical() would give: keys in another order take the same
    # bytes, and non-ASCII is escaped, so a character is a byte.
    size = len(_COMPACT.encode(value))
    if size > MAX_VALUE_BYTES:
        raise InvalidEntry(f"entry {key}: value: over {MAX_VALUE_BYTES} bytes as JSON")
    return size


def _check_scalar(key: str, item: object) -> None:
    if isinstance(item, bool) or item is None or isinstance(item, str):
        return
    if isinstance(item, int):
        if abs(item) > MAX_SAFE_INT:
            raise InvalidEntry(f"entry {key}: value: integer {item} is over {MAX_SAFE_INT}")
    elif isinstance(item, float):
        if not math.isfinite(item):
            raise InvalidEntry(f"entry {key}: value: {item} is not a JSON number")
    else:
        raise InvalidEntry(f"entry {key}: value: {type(item).__name__} is not JSON")


_COMPACT = json.JSONEncoder(separators=(",", ":"))


def canonical(value: JsonValue) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class DeltaPage:
    """One page of a delta: the entries, how far each origin is now covered,
    and where the next page starts (None when this is the last)."""

    entries: tuple[Entry, ...]
    covered: Mapping[str, int]
    next_cursor: tuple[str, int] | None


@dataclass
class LwwMap:
    """The latest entry per key, plus the version vector of what arrived in order."""

    node: str
    _entries: dict[str, Entry] = field(default_factory=dict)
    _by_origin: dict[str, dict[int, str]] = field(default_factory=dict)
    vector: VersionVector = field(default_factory=dict)
    # Each held entry's size (key and value as JSON), and their sum: what the
    # log's cap counts.
    _sizes: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    # The highest version ever held per origin: a peer already past it is
    # sent nothing of that origin without a scan of its versions.
    _top: dict[str, int] = field(default_factory=dict)

    # -- reading -------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        entry = self._entries.get(key)
        return None if entry is None or entry.tombstone else entry

    def raw(self, key: str) -> Entry | None:
        """The entry for key, tombstones included."""
        return self._entries.get(key)

    def items(self, prefix: str = "") -> Iterator[Entry]:
        for key, entry in self._entries.items():
            if key.startswith(prefix) and not entry.tombstone:
                yield entry

    def entries(self) -> Iterator[Entry]:
        """Every held entry, tombstones included."""
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def digest(self) -> frozenset[tuple[str, Hlc, str]]:
        """What two replicas must share to be equal."""
        return frozenset((e.key, e.hlc, canonical(e.value)) for e in self._entries.values())

    # -- writing -------------------------------------------------------------

    def write(self, key: str, value: JsonValue, hlc: Hlc, tombstone: bool = False) -> Entry:
        """A local write: the next version of this node's own origin."""
        if hlc.node != self.node:
            raise InvalidEntry(f"local write {key}: hlc {hlc} is not from node {self.node}")
        version = self.vector.get(self.node, 0) + 1
        entry = Entry(key, value, hlc, self.node, version, tombstone)
        size = entry.check()
        current = self._entries.get(key)
        if current is not None and not entry.beats(current):
            raise InvalidEntry(f"local write {key}: hlc {hlc} is not newer than {current.hlc}")
        self.vector[self.node] = version
        self._store(entry, size)
        return entry

    def merge(self, entry: Entry, size: int | None = None) -> bool:
        """Merge a remote entry; True when it replaced what we held. ``size``:
        what ``entry.check()`` returned, when the caller checked it already."""
        if size is None:
            size = entry.check()
        current = self._entries.get(entry.key)
        if current is not None and not entry.beats(current):
            return False
        self._store(entry, size)
        if entry.origin == self.node:
            # Our own write handed back by a peer (this node's data was lost and
            # restored): never reuse its version number.
            self.vector[self.node] = max(self.vector.get(self.node, 0), entry.version)
        elif entry.version == self.vector.get(entry.origin, 0) + 1:
            # A pushed entry moves the vector only when it leaves no gap.
            self.vector[entry.origin] = entry.version
        return True

    def merge_all(self, entries: Iterable[Entry]) -> list[Entry]:
        return [entry for entry in entries if self.merge(entry)]

    def advance(self, covered: Mapping[str, int]) -> None:
        """Record that a complete delta covered each origin up to a version."""
        for origin, version in covered.items():
            if origin == self.node:
                continue
            if version > self.vector.get(origin, 0):
                self.vector[origin] = version

    def _store(self, entry: Entry, size: int) -> None:
        old = self._entries.get(entry.key)
        if old is not None:
            self._by_origin.get(old.origin, {}).pop(old.version, None)
        self._entries[entry.key] = entry
        self._by_origin.setdefault(entry.origin, {})[entry.version] = entry.key
        if entry.version > self._top.get(entry.origin, 0):
            self._top[entry.origin] = entry.version
        self.bytes += size - self._sizes.get(entry.key, 0)
        self._sizes[entry.key] = size

    def _drop(self, key: str) -> Entry | None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._by_origin.get(entry.origin, {}).pop(entry.version, None)
            self.bytes -= self._sizes.pop(key, 0)
        return entry

    def growth(self, entries: Iterable[tuple[Entry, int]]) -> tuple[int, int]:
        """How many keys and bytes merging these (entry, size) pairs would add
        at most (an entry that loses its merge adds nothing)."""
        keys: set[str] = set()
        added = 0
        for entry, size in entries:
            if entry.key not in self._entries and entry.key not in keys:
                keys.add(entry.key)
            added += max(0, size - self._sizes.get(entry.key, 0))
        return len(keys), added

    def forget(self, key: str) -> None:
        """Drop an entry this node no longer keeps (history past its
        retention). Unlike a delete it is not replicated: every node drops
        by the same rule. The vector stays, so it is not asked for again."""
        self._drop(key)

    # -- sync ----------------------------------------------------------------

    def delta_since(
        self, vector: Mapping[str, int], limit: int = 500, cursor: tuple[str, int] | None = None
    ) -> DeltaPage:
        """What a peer holding ``vector`` may lack, at most ``limit`` entries a page."""
        if limit < 1:
            raise ValueError(f"limit: expected a positive number, got {limit}")
        out: list[Entry] = []
        covered: dict[str, int] = {}
        origins = sorted(set(self._by_origin) | set(self.vector))
        for origin in origins:
            if cursor is not None and origin < cursor[0]:
                continue
            start = vector.get(origin, 0)
            if cursor is not None and origin == cursor[0]:
                start = max(start, cursor[1])
            held = self._by_origin.get(origin, {})
            fresh = start < self._top.get(origin, 0)
            versions = sorted(v for v in held if v > start) if fresh else []
            for version in versions:
                if len(out) == limit:
                    last = out[-1]
                    # Cut inside this origin: cover only what was sent.
                    if last.origin == origin:
                        covered[origin] = min(last.version, self.vector.get(origin, 0))
                    return DeltaPage(tuple(out), covered, (last.origin, last.version))
                out.append(self._entries[self._by_origin[origin][version]])
            covered[origin] = self.vector.get(origin, 0)
        return DeltaPage(tuple(out), covered, None)

    # -- tombstones ----------------------------------------------------------

    def collect_tombstones(
        self, peer_vectors: Mapping[str, Mapping[str, int]], now_ms: int, ttl_ms: int
    ) -> list[str]:
        """Drop tombstones every peer has seen that are older than ttl_ms."""
        dropped = []
        for key, entry in list(self._entries.items()):
            if not entry.tombstone or now_ms - entry.hlc.wall_ms < ttl_ms:
                continue
            seen = all(v.get(entry.origin, 0) >= entry.version for v in peer_vectors.values())
            if seen:
                self._drop(key)
                dropped.append(key)
        return dropped

    def copy(self) -> LwwMap:
        clone = LwwMap(self.node)
        for key, entry in self._entries.items():
            clone._store(entry, self._sizes[key])
        clone.vector = dict(self.vector)
        return clone
