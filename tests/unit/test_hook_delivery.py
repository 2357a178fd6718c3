"""Webhook deliveries in the core, over the fake network: each agreed event
to each webhook once, in order per target, by one node, with the standby
taking over from a node that is gone or cannot reach the webhook."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus import keys
from consensus.dispatch import designated_sender
from consensus.node import NodeCore
from tests.unit.pair import Net, results, started

PAIR = ("huginn", "muninn")
TARGETS = ("blog", "shop")
EVERYTHING: dict[str, frozenset[str] | None] = {"api": None}


def with_hooks(hooks: dict[str, frozenset[str] | None] | None = None) -> Net:
    net = started(PAIR, TARGETS)
    for name in PAIR:
        net.run(name, net.cores[name].set_hooks(hooks or EVERYTHING, net.at(name)))
    return net


def outage(net: Net, target: str = "blog") -> None:
    net.rounds(target, results(PAIR, False), 3)
    net.rounds(target, results(PAIR, True), 3)


def told(net: Net, hook: str = "api") -> list[tuple[str, str]]:
    return [(e.subject, e.notice.value) for _, h, e in net.hook_posts if h == hook]


def test_each_agreed_event_goes_to_the_webhook_once_in_order_from_the_sender() -> None:
    net = with_hooks()
    outage(net)
    outage(net, "shop")
    net.advance(net.settings.failover_ms * 2)
    assert told(net) == [("blog", "DOWN"), ("blog", "UP"), ("shop", "DOWN"), ("shop", "UP")]
    senders = {(e.subject, n) for n, _, e in net.hook_posts}
    assert senders == {(t, designated_sender(t, PAIR)) for t in TARGETS}
    # ntfy heard the same, apart from the webhook.
    assert [(e.subject, e.notice.value) for _, e in net.posts] == told(net)


def test_a_webhook_failing_for_both_nodes_gets_everything_once_in_order_when_back() -> None:
    net = with_hooks()
    net.hook_up = False
    outage(net)
    for _ in range(4):
        net.advance(net.settings.failover_ms)
    assert net.hook_posts == []
    event_id = net.cores["huginn"].record("blog").event or ""
    # One claim, the same on both nodes: whoever holds it keeps trying.
    claims = {_origin(net, n, event_id) for n in PAIR}
    assert len(claims) == 1 and None not in claims
    net.hook_up = True
    for name in PAIR:
        net.deliver_hooks(name)
    net.advance(net.settings.failover_ms)
    assert told(net) == [("blog", "DOWN"), ("blog", "UP")]
    assert len({e.id for _, _, e in net.hook_posts}) == 2


def test_a_sender_that_cannot_reach_the_webhook_leaves_it_to_the_standby() -> None:
    net = with_hooks()
    sender = designated_sender("blog", PAIR)
    standby = next(n for n in PAIR if n != sender)
    net.hook_cut = {sender}
    net.rounds("blog", results(PAIR, False), 3)
    assert net.hook_posts == []
    assert net.cores[standby].health_of(sender).hooks_failing == ("api",)
    for _ in range(3):
        net.advance(net.settings.failover_ms // 2)
    assert [(n, e.notice.value) for n, _, e in net.hook_posts] == [(standby, "DOWN")]
    # ntfy's post stayed with the sender, which reaches ntfy.
    assert [(n, e.notice.value) for n, e in net.posts] == [(sender, "DOWN")]
    net.hook_cut = set()
    net.advance(net.settings.failover_ms * 2)
    assert len(net.hook_posts) == 1, "no second copy"


def test_the_standby_delivers_when_the_sender_is_gone() -> None:
    net = with_hooks()
    net.hook_up = False
    net.rounds("blog", results(PAIR, False), 3)
    event_id = net.cores["huginn"].record("blog").event or ""
    claim = net.cores["huginn"].log.get(keys.hook_claim("api", event_id))
    assert claim is not None
    standby = next(n for n in PAIR if n != claim.origin)
    del net.cores[claim.origin]
    net.names = (standby,)
    net.hook_up = True
    for _ in range(6):
        net.advance(net.settings.failover_ms // 2)
    delivered = [(n, e.id) for n, _, e in net.hook_posts if e.subject == "blog"]
    assert delivered == [(standby, event_id)]
    # The standby's own note that its peer is gone went out too.
    assert [e.notice.value for _, _, e in net.hook_posts][1:] == ["PEER_LOST"]


def test_a_restarted_sender_delivers_what_it_owed_once() -> None:
    net = with_hooks()
    net.hook_up = False
    net.ntfy_up = False
    net.rounds("blog", results(PAIR, False), 3)
    sender = designated_sender("blog", PAIR)
    core = net.cores[sender]
    net.cores[sender] = NodeCore(
        sender, PAIR, TARGETS, net.settings, net.now_ms, log=core.log, clock_last=core.clock.last
    )
    net.hook_waiting[sender] = []  # its outbox rows are on disk; the core re-hands them
    net.run(sender, net.cores[sender].set_hooks(EVERYTHING, net.at(sender)))
    net.hook_up = net.ntfy_up = True
    net.canaries(sender, True)
    net.advance(15_000)
    net.advance(net.settings.failover_ms * 2)
    assert [(n, e.notice.value) for n, _, e in net.hook_posts] == [(sender, "DOWN")]


def test_a_webhook_gets_only_the_notices_it_asked_for_and_nothing_older_than_itself() -> None:
    net = started(PAIR, TARGETS)
    outage(net, "shop")  # before any webhook was configured
    hooks: dict[str, frozenset[str] | None] = {"api": None, "pager": frozenset({"DOWN"})}
    for name in PAIR:
        net.run(name, net.cores[name].set_hooks(hooks, net.at(name)))
    outage(net)
    net.advance(net.settings.failover_ms * 2)
    assert told(net, "api") == [("blog", "DOWN"), ("blog", "UP")]
    assert told(net, "pager") == [("blog", "DOWN")]


def test_a_suppressed_event_goes_to_no_webhook() -> None:
    net = with_hooks()
    for name in PAIR:
        net.cores[name].maintenance = {"blog"}
    outage(net)
    net.advance(net.settings.failover_ms * 2)
    assert net.hook_posts == []


def _origin(net: Net, node: str, event_id: str) -> str | None:
    claim = net.cores[node].log.get(keys.hook_claim("api", event_id))
    return None if claim is None else claim.origin


steps = st.lists(
    st.tuples(
        st.sampled_from(TARGETS),
        st.booleans(),  # huginn's check passes
        st.booleans(),  # muninn's check passes
        st.booleans(),  # the receiver answers
        st.sampled_from((None, *PAIR)),  # a node cut from the receiver
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_whatever_the_receiver_does_each_transition_arrives_once_in_order(plan: list) -> None:
    net = with_hooks()
    for target, huginn_ok, muninn_ok, hook_up, cut in plan:
        net.hook_up = hook_up
        net.hook_cut = {cut} if cut else set()
        net.round(target, {"huginn": huginn_ok, "muninn": muninn_ok})
    net.hook_up, net.hook_cut = True, set()
    for _ in range(4):
        net.advance(net.settings.failover_ms)
        for name in PAIR:
            net.deliver_hooks(name)
    delivered = [e for _, _, e in net.hook_posts]
    ids = [e.id for e in delivered]
    assert len(ids) == len(set(ids)), "an event went to the webhook twice"
    # In the order decided, target by target.
    for target in TARGETS:
        decided = [net.decided[e.id] for e in delivered if e.subject == target]
        assert decided == sorted(decided), target
    # Every DOWN and UP users were told, the webhook was told too.
    told = {e.id for _, e in net.posts if e.notice.value in ("DOWN", "UP")}
    assert told <= set(ids)
