"""A claim to post is a lease: a sender that reaches its peer but not ntfy
hands its pages to the standby within the failover time, and no page is
posted twice on the way."""

from __future__ import annotations

from consensus.dispatch import designated_sender
from tests.unit.pair import Net, results
from tests.unit.pair import started as started_pair

PAIR = ("huginn", "muninn")
TARGETS = tuple(f"t{i:02d}" for i in range(8))
STEP_MS = 5_000


def started() -> Net:
    return started_pair(PAIR, TARGETS)


def senders(net: Net) -> dict[str, str]:
    return {t: designated_sender(t, PAIR) for t in TARGETS}


def outage(net: Net, ok: bool) -> dict[str, int]:
    """Every target fails (or answers) on both nodes until the pair agrees;
    when each target's agreed move was made."""
    decided: dict[str, int] = {}
    want = "UP" if ok else "DOWN"
    for _ in range(6):
        for target in TARGETS:
            net.check("huginn", target, ok)
            net.check("muninn", target, ok)
            if target not in decided and net.state(target).value == want:
                decided[target] = net.now_ms
        net.advance(STEP_MS)
    assert set(decided) == set(TARGETS), "the pair did not agree on every target"
    return decided


def wait_for_posts(net: Net, count: int, limit_ms: int) -> dict[str, int]:
    """Step time until count posts are out; when each event went out."""
    posted: dict[str, int] = {}
    end = net.now_ms + limit_ms
    while net.now_ms <= end:
        for _, event in net.posts:
            posted.setdefault(event.id, net.now_ms)
        if len(posted) >= count:
            break
        net.advance(STEP_MS)
    return posted


def test_a_sender_cut_off_from_ntfy_hands_its_pages_to_the_standby() -> None:
    net = started()
    by = senders(net)
    assert set(by.values()) == set(PAIR), "both nodes are senders for some targets"
    net.ntfy_cut.add("huginn")
    down_at = outage(net, ok=False)
    failover = net.settings.failover_ms
    posted = wait_for_posts(net, len(TARGETS), 3 * failover)
    assert len(posted) == len(TARGETS)
    assert len(net.posts) == len(TARGETS), "a DOWN was posted twice"
    for node, event in net.posts:
        assert node == "muninn" and event.notice.value == "DOWN"
        # On time: the failover time after the decision, plus a step or two.
        assert posted[event.id] - down_at[event.subject] <= failover + 2 * STEP_MS, event.subject
    health = net.cores["muninn"].health_of("huginn")
    assert health.ntfy_ok is False, "the peer knows huginn cannot deliver"

    # ntfy comes back for huginn (its outbox probe says so); recoveries go
    # out from each target's own sender again, once each.
    net.ntfy_cut.clear()
    net.run("huginn", net.cores["huginn"].delivery_observed(True, net.now_ms))
    net.deliver()
    net.posts.clear()
    outage(net, ok=True)
    posted = wait_for_posts(net, len(TARGETS), 3 * failover)
    assert sorted(e.subject for _, e in net.posts) == sorted(TARGETS), "one UP per target"
    assert {(n, e.subject) for n, e in net.posts} == {(by[t], t) for t in TARGETS}


def test_a_taker_that_fails_too_hands_the_page_back() -> None:
    net = started()
    target = next(t for t, s in senders(net).items() if s == "huginn")
    net.ntfy_cut.add("huginn")
    for _ in range(3):
        net.check("huginn", target, False)
        net.check("muninn", target, False)
        net.advance(STEP_MS)
    event_id = net.cores["muninn"].record(target).event
    assert event_id is not None
    # Before the standby's deadline, muninn loses ntfy too and huginn gets
    # it back: whoever can deliver ends up posting it, once.
    net.ntfy_cut = {"muninn"}
    failover = net.settings.failover_ms
    net.advance(failover)
    net.run("huginn", net.cores["huginn"].delivery_observed(True, net.now_ms))
    net.deliver()
    wait_for_posts(net, 1, 3 * failover)
    assert [(n, e.id) for n, e in net.posts] == [("huginn", event_id)]
    net.advance(3 * failover)
    assert len(net.posts) == 1, "no second copy"


def test_a_claim_held_by_a_node_that_delivers_is_respected() -> None:
    net = started()
    net.ntfy_up = False
    target = TARGETS[0]
    for _ in range(3):
        net.check("huginn", target, False)
        net.check("muninn", target, False)
        net.advance(STEP_MS)
    # ntfy is down for both: a claim moves at most once, to a node that had
    # not tried yet, and no node posts.
    claims = set()
    event_id = net.cores["huginn"].record(target).event or ""
    for _ in range(6):
        net.advance(net.settings.failover_ms)
        claim = net.cores["huginn"].log.get(f"claim/{event_id}")
        assert claim is not None
        claims.add(claim.origin)
    assert net.posts == []
    assert len(claims) <= 2


def seen_from_one_side_until_noted(net: Net, target: str) -> None:
    """Muninn sees target fail, Huginn sees it answer, until a note is
    posted (at most twice the time a note takes)."""
    one_sided = {"huginn": True, "muninn": False}
    for _ in range(2 * net.settings.partial_note_after_ms // STEP_MS):
        net.round(target, one_sided, STEP_MS)
        if net.notices(target):
            break


def test_a_recovery_is_told_while_the_note_it_ends_is_still_on_its_way() -> None:
    """The standby posts a target's note of trouble seen from one side; the
    target recovers before ntfy's answer is back. The sender, seeing the
    note claimed but not yet sent, must not take the UP for the end of a
    trouble nobody heard of: users got the note, so they get the all-clear."""
    net = started()
    target = next(t for t, by in senders(net).items() if by == "huginn")
    net.ntfy_cut.add("huginn")
    seen_from_one_side_until_noted(net, target)
    assert net.notices(target) == ["PARTIAL_LASTING"]
    assert [node for node, _ in net.posts] == ["muninn"], "the standby posted the note"
    sent = net.cores["muninn"].log.get(f"sent/{net.posts[0][1].id}")
    assert sent is not None, "a note answered at once is marked sent"

    # The same again, but ntfy's answer to the note is slow: the target is
    # back before it comes.
    net = started()
    net.ntfy_cut.add("huginn")
    net.slow_answers.add("muninn")
    seen_from_one_side_until_noted(net, target)
    assert net.notices(target) == ["PARTIAL_LASTING"] and net.flying, "the note is in flight"
    for _ in range(12):
        net.round(target, results(PAIR, True), STEP_MS)
        if net.state(target).value == "UP":
            break
    assert net.state(target).value == "UP"
    net.slow_answers.clear()
    net.land()
    posted = wait_for_posts(net, 2, 3 * net.settings.failover_ms)
    assert net.notices(target) == ["PARTIAL_LASTING", "UP"], posted
