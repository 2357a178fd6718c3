"""The node core end to end over the fake network: agreement as a function of
the log, one post per transition, restarts, bad input, skew."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus import keys
from consensus.agreement import AgreedState
from consensus.commands import Warn
from consensus.dispatch import designated_sender
from consensus.errors import InvalidEntry
from consensus.hlc import Hlc
from consensus.lww import Entry
from consensus.node import NodeCore
from tests.unit.pair import Net, results
from tests.unit.pair import started as started_pair

PAIR = ("huginn", "muninn")
TARGETS = ("blog", "shop")


def started() -> Net:
    return started_pair(PAIR, TARGETS)


rounds = st.lists(
    st.tuples(st.sampled_from(TARGETS), st.booleans(), st.booleans()), min_size=1, max_size=40
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rounds)
def test_equal_logs_give_equal_agreed_states_and_event_ids(plan: list) -> None:
    net = started()
    for target, huginn_ok, muninn_ok in plan:
        net.round(target, {"huginn": huginn_ok, "muninn": muninn_ok})
    net.advance(5_000)
    net.sync()
    assert net.all_equal()
    h, m = net.cores["huginn"], net.cores["muninn"]
    for target in TARGETS:
        assert h.record(target) == m.record(target)
        assert h.assessment(target, net.now_ms) == m.assessment(target, net.now_ms)
    ids = [e.id for _, e in net.posts]
    assert len(ids) == len(set(ids)), "an event was posted twice"
    for event_id in ids:
        assert h.event(event_id) == m.event(event_id) is not None


def test_a_sender_that_dies_before_posting_posts_once_after_restart() -> None:
    net = started()
    net.ntfy_up = False
    net.rounds("blog", results(PAIR, False), 2)
    assert net.posts == []
    event_id = net.cores["huginn"].record("blog").event
    assert event_id is not None
    claim = net.cores["huginn"].log.get(keys.claim(event_id))
    assert claim is not None
    sender = claim.origin
    # kill -9 and restart from what is on disk: the log and the clock.
    core = net.cores[sender]
    net.cores[sender] = NodeCore(
        sender, PAIR, TARGETS, net.settings, net.now_ms, log=core.log, clock_last=core.clock.last
    )
    net.ntfy_up = True
    net.canaries(sender, True)
    net.sync()
    net.advance(15_000)
    assert [(n, e.notice.value) for n, e in net.posts] == [(sender, "DOWN")]
    # A second restart finds sent in the log and posts nothing.
    core = net.cores[sender]
    net.cores[sender] = NodeCore(
        sender, PAIR, TARGETS, net.settings, net.now_ms, log=core.log, clock_last=core.clock.last
    )
    net.canaries(sender, True)
    net.advance(net.settings.failover_ms * 2)
    assert len(net.posts) == 1


def test_while_ntfy_is_down_the_standby_respects_a_live_claim() -> None:
    net = started()
    net.ntfy_up = False
    net.rounds("blog", results(PAIR, False), 2)
    for _ in range(5):
        net.advance(net.settings.failover_ms)
    assert net.posts == []
    event_id = net.cores["huginn"].record("blog").event or ""
    claimants = {
        net.cores[n].log.get(keys.claim(event_id)).origin  # type: ignore[union-attr]
        for n in PAIR
    }
    assert len(claimants) == 1, "the standby claimed too"


def test_a_sender_whose_disk_is_full_leaves_the_post_to_the_standby() -> None:
    net = started()
    sender = designated_sender("blog", PAIR)
    standby = next(n for n in PAIR if n != sender)
    net.cores[sender].storage_observed(False)
    net.rounds("blog", results(PAIR, False), 2)
    event_id = net.cores[standby].record("blog").event or ""
    assert net.cores[sender].log.get(keys.claim(event_id)) is None
    for _ in range(4):
        net.advance(net.settings.failover_ms // 2)
    assert [(n, e.id) for n, e in net.posts] == [(standby, event_id)]
    net.cores[sender].storage_observed(True)
    net.advance(net.settings.failover_ms * 2)
    assert [(n, e.id) for n, e in net.posts] == [(standby, event_id)], "no second copy"


def test_the_standby_takes_over_when_the_sender_is_gone() -> None:
    net = started()
    net.ntfy_up = False
    net.rounds("blog", results(PAIR, False), 2)
    event_id = net.cores["huginn"].record("blog").event or ""
    sender = net.cores["huginn"].log.get(keys.claim(event_id))
    assert sender is not None
    standby = next(n for n in PAIR if n != sender.origin)
    del net.cores[sender.origin]
    net.names = (standby,)
    net.ntfy_up = True
    for _ in range(4):
        net.advance(net.settings.failover_ms // 2)
    assert [(n, e.id) for n, e in net.posts] == [(standby, event_id)]


def test_a_bad_batch_merges_nothing() -> None:
    net = started()
    core = net.cores["huginn"]
    before = core.log.digest()
    good = Entry("target/new", {"kind": "tcp"}, Hlc(net.now_ms, 0, "muninn"), "muninn", 999)
    bad = Entry("state/blog", {"state": "SIDEWAYS"}, Hlc(net.now_ms, 1, "muninn"), "muninn", 1000)
    with pytest.raises(InvalidEntry, match="agreed state"):
        core.entries_received("muninn", [good, bad], net.now_ms)
    assert core.log.digest() == before
    with pytest.raises(InvalidEntry, match="unknown node 'mallory'"):
        core.entries_received("mallory", [good], net.now_ms)
    with pytest.raises(InvalidEntry, match="unknown target 'nope'"):
        core.check_observed("nope", True, "", None, net.now_ms)


def test_a_node_writes_only_its_own_facts_and_only_known_keys() -> None:
    """Muninn holds the secret, but cannot speak for Huginn (its view, its
    health, its audit trail), nor fill the log with keys no node writes."""
    net = started()
    core = net.cores["huginn"]
    before = core.log.digest()
    at = Hlc(net.now_ms, 0, "muninn")
    forged = [
        (Entry("obs/huginn/blog", {"state": "DOWN"}, at, "muninn", 900), "only huginn writes it"),
        (Entry("health/huginn", {"canaries_ok": False}, at, "muninn", 901), "only huginn"),
        (Entry("audit/huginn/1.0.huginn", {"who": "x"}, at, "muninn", 902), "only huginn"),
        (Entry("junk/overflow", {"x": 1}, at, "muninn", 903), "not a key the nodes write"),
        (Entry("junk/gone", None, at, "muninn", 904, tombstone=True), "not a key the nodes"),
    ]
    for entry, refused in forged:
        with pytest.raises(InvalidEntry, match=refused):
            core.entries_received("muninn", [entry], net.now_ms)
    assert core.log.digest() == before
    # Muninn's own view, and a shared key, merge as before.
    own = Entry("obs/muninn/blog", core.view("muninn", "blog").to_value(), at, "muninn", 905)
    core.entries_received("muninn", [own], net.now_ms)


def test_an_entry_stamped_beyond_the_future_limit_refuses_its_batch() -> None:
    net = started()
    core = net.cores["huginn"]
    before = core.log.digest()
    limit = net.settings.max_future_ms
    near = Entry("target/x", {"kind": "tcp"}, Hlc(net.now_ms + limit, 0, "muninn"), "muninn", 500)
    far = Entry("target/y", {"kind": "tcp"}, Hlc(net.now_ms + limit + 1000, 0, "muninn"),
                "muninn", 501)  # fmt: skip
    refused = f"target/y: stamped {limit // 1000 + 1} s in the future"
    with pytest.raises(InvalidEntry, match=refused):
        core.entries_received("muninn", [near, far], net.now_ms)
    assert core.log.digest() == before
    core.entries_received("muninn", [near], net.now_ms)
    assert core.log.get("target/x") is not None


def test_a_peer_far_ahead_is_merged_warned_about_and_does_not_drag_the_clock() -> None:
    net = started()
    core = net.cores["huginn"]
    ahead = 5 * 60_000
    entry = Entry("target/x", {"kind": "tcp"}, Hlc(net.now_ms + ahead, 0, "muninn"), "muninn", 500)
    step = core.entries_received("muninn", [entry], net.now_ms)
    assert core.log.get("target/x") is not None
    assert core.clock.last.wall_ms <= net.now_ms
    warnings = [c for c in step.commands if getattr(c, "what", "") == "clock_skew"]
    assert len(warnings) == 1 and warnings[0].detail["offset_ms"] == ahead
    # Said once, not for every entry, nor again when an answer shows the same skew.
    entry2 = Entry("target/y", {}, Hlc(net.now_ms + ahead, 1, "muninn"), "muninn", 501)
    again = core.entries_received("muninn", [entry2], net.now_ms + 1000)
    assert not [c for c in again.commands if getattr(c, "what", "") == "clock_skew"]
    told = core.peer_clock_observed("muninn", net.now_ms + 2000 + ahead, net.now_ms + 2000)
    assert not told.commands and core.peer_offset_ms["muninn"] == ahead


def test_a_peer_clock_seen_in_its_answers_is_kept_and_told_once_past_the_bound() -> None:
    net = started()
    core = net.cores["huginn"]
    bound = net.settings.max_skew_ms
    assert not core.peer_clock_observed("muninn", net.now_ms + bound, net.now_ms).commands
    assert core.peer_offset_ms["muninn"] == bound
    behind = core.peer_clock_observed("muninn", net.now_ms - bound - 1, net.now_ms)
    (warning,) = behind.commands
    assert isinstance(warning, Warn) and warning.what == "clock_skew"
    assert warning.detail["offset_ms"] == -bound - 1 and warning.detail["peer"] == "muninn"
    quiet = core.peer_clock_observed("muninn", net.now_ms - bound - 1, net.now_ms + 60_000)
    assert not quiet.commands, "at most every ten minutes"
    later = net.now_ms + 10 * 60_000
    assert core.peer_clock_observed("muninn", later - bound - 1, later).commands
    core.time_stepped(30_000)
    assert core.peer_offset_ms["muninn"] == -bound - 1 - 30_000, "our clock moved, not its"


def test_a_skewed_peers_decision_does_not_pin_the_agreed_state() -> None:
    """Muninn's clock runs five minutes ahead; Huginn's later decision must
    still win the multi-writer state key, on both nodes."""
    net = started_pair(PAIR, TARGETS, offsets={"muninn": 300_000})
    assert net.cores["muninn"].clock.last.wall_ms >= net.now_ms + 300_000, "muninn is ahead"
    net.rounds("blog", results(PAIR, False), 2)
    assert net.state("blog", "huginn") is AgreedState.DOWN
    net.rounds("blog", results(PAIR, True), 2)
    net.sync()
    assert net.state("blog", "huginn") is AgreedState.UP
    assert net.state("blog", "muninn") is AgreedState.UP
    assert net.notices("blog") == ["DOWN", "UP"]


def test_restart_resumes_verdicts_from_the_log() -> None:
    net = started()
    net.rounds("blog", results(PAIR, False), 2)
    core = net.cores["huginn"]
    again = NodeCore("huginn", PAIR, TARGETS, net.settings, net.now_ms, log=core.log)
    assert again.verdicts["blog"].fails == core.verdicts["blog"].fails
    assert again.clock.last >= core.clock.last
    # The last saved check is not the last one made: the first streak after
    # the restart has no check before it to bound when it began.
    again.check_observed("blog", True, "status 200", 12.0, net.now_ms + 600_000)
    assert again.verdicts["blog"].before_streak_ms is None
    core.check_observed("blog", True, "status 200", 12.0, net.now_ms + 600_000)
    assert core.verdicts["blog"].before_streak_ms is not None, "without a restart, it does"


def test_a_push_heartbeat_on_either_node_reaches_both() -> None:
    net = started()
    assert net.cores["huginn"].last_heartbeat_ms("blog") is None
    net.run("muninn", net.cores["muninn"].heartbeat_received("blog", net.now_ms))
    net.deliver()
    assert net.cores["huginn"].last_heartbeat_ms("blog") == net.now_ms
    with pytest.raises(InvalidEntry, match="unknown target 'nope'"):
        net.cores["huginn"].heartbeat_received("nope", net.now_ms)
    bad = Entry("push/blog", {"at": "noon"}, Hlc(net.now_ms + 1, 0, "muninn"), "muninn", 10_000)
    with pytest.raises(InvalidEntry, match="expected an object with at_ms"):
        net.cores["huginn"].entries_received("muninn", [bad], net.now_ms)


def test_checks_that_recover_before_the_canaries_reach_the_log_at_once() -> None:
    """Cut off before its canaries noticed: a DOWN view reached the log, the
    checks recovered while the node still counted itself cut off (memory
    only). The first check after the canaries pass must bring the log's view
    up to date, or the stale DOWN votes on and the pair stays PARTIAL."""
    net = started()
    net.check("huginn", "blog", False)
    net.check("huginn", "blog", False)
    huginn = net.cores["huginn"]
    assert huginn.view("huginn", "blog").state.value == "DOWN"
    net.canaries("huginn", False)
    # Enough checks that the success streak reaches its cap: no field of the
    # verdict moves any more when the canaries pass.
    for _ in range(6):
        net.advance(1_000)
        net.check("huginn", "blog", True)
    assert huginn.view("huginn", "blog").state.value == "DOWN", "the log lags while cut off"
    net.canaries("huginn", True)
    net.advance(1_000)
    net.check("huginn", "blog", True)
    net.advance(5_000)
    net.sync()
    assert huginn.view("huginn", "blog").state.value == "UP"
    assert net.state("blog", "huginn") == net.state("blog", "muninn") == AgreedState.UP


def test_an_up_answers_what_users_were_told_not_the_partial_on_the_way() -> None:
    net = started()
    net.rounds("blog", results(PAIR, False), 3)
    net.rounds("blog", {"huginn": True, "muninn": False}, 2)
    assert net.state("blog") is AgreedState.PARTIAL
    net.rounds("blog", results(PAIR, True), 3)
    (up,) = [e for _, e in net.posts if e.notice.value == "UP"]
    assert up.previous == "DOWN", "a recovery from the DOWN users were paged for"


def test_a_full_log_refuses_a_peer_s_additions_warns_first_and_keeps_its_own_writes() -> None:
    from dataclasses import replace

    from consensus.commands import Warn
    from consensus.settings import Settings

    net = Net(PAIR, TARGETS, Settings(max_log_entries=60))
    net.start()
    for target in TARGETS:
        net.rounds(target, results(PAIR, True), 2)
    core = net.cores["huginn"]
    warned: list[Warn] = []

    def targets_from_muninn(first: int, count: int) -> list[Entry]:
        return [Entry(f"target/t{first + i}", {"kind": "tcp"}, Hlc(net.now_ms, first + i, "muninn"),
                      "muninn", 10_000 + first + i) for i in range(count)]  # fmt: skip

    while len(core.log) < 48:  # 80 % of 60
        core.entries_received("muninn", targets_from_muninn(len(core.log), 1), net.now_ms)
    warned += [c for c in core.tick(net.now_ms).commands if isinstance(c, Warn)]
    warned += [c for c in core.tick(net.now_ms + 1).commands if isinstance(c, Warn)]
    assert [w.what for w in warned] == ["log_nearly_full"], "told once, before the cap"

    held = len(core.log)
    before = core.log.digest()
    with pytest.raises(InvalidEntry, match=f"log full: {held} entries"):
        core.entries_received("muninn", targets_from_muninn(1000, 60 - held + 1), net.now_ms)
    assert core.log.digest() == before, "nothing of the refused batch merged"
    core.entries_received("muninn", targets_from_muninn(2000, 60 - held), net.now_ms)
    assert len(core.log) == 60
    # An update of a held key adds no key and is still taken; our own writes go on.
    (update,) = targets_from_muninn(2000, 1)
    core.entries_received("muninn", [replace(update, hlc=Hlc(net.now_ms, 9_999, "muninn"),
                                             version=99_999)], net.now_ms)  # fmt: skip
    step = core.check_observed("blog", False, "connection refused", None, net.now_ms + 2)
    assert step.to_commit and len(core.log) >= 60
