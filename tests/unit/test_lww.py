"""The replicated log: merge laws, deltas in pages, tombstones."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.errors import InvalidEntry
from consensus.hlc import Hlc
from consensus.lww import Entry, LwwMap

NODES = ("huginn", "muninn", "node3")
KEYS = ("target/blog", "state/blog", "claim/e1", "obs/huginn/blog")


@st.composite
def histories(draw: st.DrawFn) -> list[Entry]:
    """Writes as real origins make them: versions count up, hlcs grow."""
    writes = draw(
        st.lists(
            st.tuples(st.sampled_from(NODES), st.sampled_from(KEYS), st.integers(0, 9)),
            max_size=25,
        )
    )
    version = dict.fromkeys(NODES, 0)
    wall = dict.fromkeys(NODES, 0)
    out = []
    for node, key, value in writes:
        version[node] += 1
        wall[node] += draw(st.integers(0, 3))
        hlc = Hlc(wall[node], version[node], node)
        out.append(Entry(key, value, hlc, node, version[node], tombstone=value == 0))
    return out


def merged(entries: list[Entry]) -> LwwMap:
    log = LwwMap("observer")
    log.merge_all(entries)
    return log


def union(a: LwwMap, b: LwwMap) -> LwwMap:
    out = a.copy()
    out.merge_all(list(b.entries()))
    return out


@given(histories(), st.randoms())
def test_merge_is_commutative(history: list[Entry], rnd: object) -> None:
    shuffled = list(history)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert merged(history).digest() == merged(shuffled).digest()


@given(histories())
def test_merge_is_idempotent(history: list[Entry]) -> None:
    assert merged(history + history).digest() == merged(history).digest()


@given(histories(), histories(), histories())
def test_merge_is_associative(a: list[Entry], b: list[Entry], c: list[Entry]) -> None:
    ma, mb, mc = merged(a), merged(b), merged(c)
    assert union(union(ma, mb), mc).digest() == union(ma, union(mb, mc)).digest()


@given(histories())
def test_merge_keeps_the_largest_hlc_per_key(history: list[Entry]) -> None:
    log = merged(history)
    for key in KEYS:
        writes = [e for e in history if e.key == key]
        held = log.raw(key)
        if writes:
            assert held is not None
            assert held.hlc == max(e.hlc for e in writes)
        else:
            assert held is None


@st.composite
def replicas(draw: st.DrawFn) -> tuple[LwwMap, LwwMap]:
    """Two replicas that wrote on their own, with their own clocks."""
    pair = (LwwMap("huginn"), LwwMap("muninn"))
    for log in pair:
        wall = 0
        for i, key in enumerate(draw(st.lists(st.sampled_from(KEYS), max_size=15))):
            wall += draw(st.integers(1, 1000))
            log.write(key, i, Hlc(wall, 0, log.node))
    return pair


def pull(into: LwwMap, source: LwwMap, limit: int) -> int:
    """A full paged pull; the number of pages it took."""
    cursor, pages = None, 0
    while True:
        page = source.delta_since(dict(into.vector), limit, cursor)
        into.merge_all(page.entries)
        into.advance(page.covered)
        pages += 1
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


@given(replicas(), st.integers(1, 7))
def test_paged_delta_sync_makes_both_sides_equal(pair: tuple[LwwMap, LwwMap], limit: int) -> None:
    a, b = pair
    pull(a, b, limit)
    pull(b, a, limit)
    assert a.digest() == b.digest()
    assert a.vector == b.vector
    # Nothing more to send once both are equal.
    assert a.delta_since(b.vector).entries == ()


def test_pages_hold_at_most_the_limit_and_cover_only_what_was_sent() -> None:
    source = LwwMap("huginn")
    for i in range(10):
        source.write(f"k{i}", i, Hlc(1000 + i, 0, "huginn"))
    page = source.delta_since({}, limit=4)
    assert len(page.entries) == 4
    assert page.covered == {"huginn": 4}
    assert page.next_cursor == ("huginn", 4)
    rest = source.delta_since({}, limit=100, cursor=page.next_cursor)
    assert [e.version for e in rest.entries] == list(range(5, 11))
    assert rest.next_cursor is None


def test_a_pushed_entry_past_a_gap_merges_but_does_not_move_the_vector() -> None:
    source = LwwMap("huginn")
    first = source.write("a", 1, Hlc(10, 0, "huginn"))
    second = source.write("b", 2, Hlc(11, 0, "huginn"))
    sink = LwwMap("muninn")
    assert sink.merge(second)
    assert sink.vector.get("huginn", 0) == 0
    assert sink.merge(first)
    assert sink.vector["huginn"] == 1
    sink.advance({"huginn": 2})
    assert sink.vector["huginn"] == 2


def test_tombstones_go_only_once_every_peer_saw_them_and_the_ttl_passed() -> None:
    log = LwwMap("huginn")
    log.write("target/old", None, Hlc(1_000, 0, "huginn"), tombstone=True)
    assert log.get("target/old") is None
    assert log.raw("target/old") is not None
    ttl = 500
    assert log.collect_tombstones({"muninn": {}}, now_ms=10_000, ttl_ms=ttl) == []
    assert log.collect_tombstones({"muninn": {"huginn": 1}}, now_ms=1_200, ttl_ms=ttl) == []
    assert log.collect_tombstones({"muninn": {"huginn": 1}}, now_ms=10_000, ttl_ms=ttl) == [
        "target/old"
    ]
    assert log.raw("target/old") is None


def test_bad_entries_are_refused_with_the_reason() -> None:
    log = LwwMap("huginn")
    hlc = Hlc(5, 0, "muninn")
    cases = [
        (Entry("", 1, hlc, "muninn", 1), "expected 1 to 512 characters"),
        (Entry("k", 1, hlc, "muninn", 0), "version: expected 1 to"),
        (Entry("k", 1, hlc, "muninn", 2**63), "version: expected 1 to"),
        (Entry("k", 1, hlc, "huginn", 1), "differs from origin"),
        (Entry("k", 1, Hlc(-1, 0, "muninn"), "muninn", 1), "negative"),
        (Entry("k", 1, Hlc(5, 2**63, "muninn"), "muninn", 1), "logical at most"),
        (Entry("k", 1, Hlc(2**70, 0, "muninn"), "muninn", 1), "wall_ms at most"),
        (Entry("k", 1, Hlc(5, 0, "m" * 65), "m" * 65, 1), "origin: expected 1 to 64"),
        (Entry("k", {"n": 2**63}, hlc, "muninn", 1), "integer .* is over"),
        (Entry("k", {"n": float("nan")}, hlc, "muninn", 1), "not a JSON number"),
        (Entry("k", "x" * 70_000, hlc, "muninn", 1), "over 65536 bytes"),
    ]
    deep: list[object] = []
    for _ in range(5_000):
        deep = [deep]
    cases.append((Entry("k", deep, hlc, "muninn", 1), "nested deeper than 16"))  # type: ignore[arg-type]
    for entry, reason in cases:
        with pytest.raises(InvalidEntry, match=reason):
            log.merge(entry)
    assert len(log) == 0


def test_a_local_write_must_be_newer_than_what_the_key_holds() -> None:
    log = LwwMap("huginn")
    log.merge(Entry("state/blog", "DOWN", Hlc(50, 0, "muninn"), "muninn", 1))
    with pytest.raises(InvalidEntry, match="not newer"):
        log.write("state/blog", "UP", Hlc(40, 0, "huginn"))
    with pytest.raises(InvalidEntry, match="not from node huginn"):
        log.write("state/blog", "UP", Hlc(60, 0, "muninn"))


def test_our_own_entries_handed_back_keep_their_versions_unique() -> None:
    """A node whose data was lost gets its writes back from the peer and
    never reuses their version numbers."""
    old = LwwMap("huginn")
    entries = [old.write(f"k{i}", i, Hlc(100 + i, 0, "huginn")) for i in range(3)]
    fresh = LwwMap("huginn")
    fresh.merge_all(entries)
    assert fresh.vector["huginn"] == 3
    assert fresh.write("k9", 9, Hlc(200, 0, "huginn")).version == 4


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_three_replicas_converge_whatever_the_pull_order(order: tuple[int, ...]) -> None:
    logs = [LwwMap(n) for n in NODES]
    for i, log in enumerate(logs):
        for j in range(4):
            log.write(f"k{(i + j) % 5}", f"{log.node}{j}", Hlc(10 * j + i, 0, log.node))
    for _ in range(2):
        for i in order:
            for j in order:
                if i != j:
                    pull(logs[i], logs[j], 2)
    assert len({log.digest() for log in logs}) == 1


def _held_bytes(log: LwwMap) -> int:
    """The size the cap counts, from its definition: key plus value as JSON."""
    import json

    return sum(len(e.key) + len(json.dumps(e.value, sort_keys=True, separators=(",", ":")))
               for e in log.entries())  # fmt: skip


@given(
    st.lists(
        st.tuples(
            st.sampled_from(NODES), st.sampled_from(KEYS), st.text(max_size=40),
            st.sampled_from(["merge", "merge", "forget", "gc"]),
        ),
        max_size=40,
    )
)  # fmt: skip
def test_the_log_s_size_is_what_it_holds_through_merges_forgets_and_gc(
    ops: list[tuple[str, str, str, str]],
) -> None:
    log = LwwMap("observer")
    version = dict.fromkeys(NODES, 0)
    for step, (node, key, text, op) in enumerate(ops):
        if op == "forget":
            log.forget(key)
        elif op == "gc":
            log.collect_tombstones({}, now_ms=10**9, ttl_ms=1)
        else:
            version[node] += 1
            entry = Entry(key, text, Hlc(step, 0, node), node, version[node], tombstone=not text)
            before = len(log)
            new_keys, _ = log.growth([(entry, entry.check())])
            log.merge(entry)
            assert len(log) - before == new_keys
        assert log.bytes == _held_bytes(log)
    assert log.copy().bytes == log.bytes
