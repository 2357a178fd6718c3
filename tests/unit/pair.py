"""Links NodeCore copies through a fake network that a test steps by hand,
as h11's tests link two peers (tests/helpers.py there)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from consensus.agreement import AgreedState
from consensus.commands import Publish, Push, Recheck, Step, Warn
from consensus.events import Event
from consensus.node import NodeCore
from consensus.settings import Settings

START_MS = 1_700_000_000_000


@dataclass
class Net:
    names: tuple[str, ...]
    targets: tuple[str, ...]
    settings: Settings = field(default_factory=Settings)
    now_ms: int = START_MS
    # Posts are acknowledged by ntfy at once unless a test says otherwise
    # (for every node, or for the nodes cut off from it).
    ntfy_up: bool = True
    ntfy_cut: set[str] = field(default_factory=set)
    # How far each node's wall clock is from the true time (ms; default 0).
    offsets: dict[str, int] = field(default_factory=dict)
    # The webhook receiver: answering everyone, and the nodes cut from it.
    hook_up: bool = True
    hook_cut: set[str] = field(default_factory=set)
    # Nodes whose posts reach ntfy but whose answer has not come back yet
    # (kept in `flying` until `land`).
    slow_answers: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.cores = {
            n: NodeCore(n, self.names, self.targets, self.settings, self.at(n)) for n in self.names
        }
        self.inbox: list[tuple[str, str, Push]] = []
        self.cut: set[frozenset[str]] = set()
        self.posts: list[tuple[str, Event]] = []
        # (node, webhook, event) the receiver accepted; and each node's
        # deliveries that got no answer, kept as its outbox keeps them.
        self.hook_posts: list[tuple[str, str, Event]] = []
        self.hook_waiting: dict[str, list[tuple[str, Event]]] = {n: [] for n in self.names}
        # Each event id in the order the pair first wrote it: when it was decided.
        self.decided: dict[str, int] = {}
        self.rechecks: list[tuple[str, str, int]] = []
        self.warnings: list[Warn] = []
        self.flying: list[tuple[str, Event]] = []

    def at(self, node: str) -> int:
        """What the node's own clock reads now."""
        return self.now_ms + self.offsets.get(node, 0)

    # -- wiring ---------------------------------------------------------------

    def linked(self, a: str, b: str) -> bool:
        return frozenset((a, b)) not in self.cut

    def partition(self, a: str, b: str) -> None:
        self.cut.add(frozenset((a, b)))

    def heal(self) -> None:
        self.cut.clear()

    def run(self, node: str, step: Step) -> None:
        for entry in step.to_commit:
            if entry.key.startswith("event/"):
                self.decided.setdefault(entry.key.removeprefix("event/"), len(self.decided))
        for command in step.commands:
            if isinstance(command, Push):
                for other in self.names:
                    if other != node and self.linked(node, other) and command.entries:
                        self.inbox.append((node, other, command))
            elif isinstance(command, Publish) and command.hook is not None:
                self.hook_waiting[node].append((command.hook, command.event))
                self.deliver_hooks(node)
            elif isinstance(command, Publish):
                core = self.cores[node]
                reached = self.ntfy_up and node not in self.ntfy_cut
                # The outbox tells the core whether ntfy answered.
                self.run(node, core.delivery_observed(reached, self.at(node)))
                if reached:
                    self.posts.append((node, command.event))
                    if node in self.slow_answers:
                        self.flying.append((node, command.event))
                    else:
                        self.run(node, core.publish_succeeded(command.event.id, self.at(node)))
            elif isinstance(command, Recheck):
                self.rechecks.append((node, command.target, command.delay_ms))
            elif isinstance(command, Warn):
                self.warnings.append(command)

    def land(self) -> None:
        """ntfy's answers to the posts in flight come back."""
        flying, self.flying = self.flying, []
        for node, event in flying:
            self.run(node, self.cores[node].publish_succeeded(event.id, self.at(node)))
        self.deliver()

    def deliver_hooks(self, node: str) -> None:
        """One pass of the node's webhook courier over what it holds: in
        order, asking the core before each attempt, stopping at a failure."""
        core = self.cores[node]
        for hook, event in list(self.hook_waiting[node]):
            if (hook, event) not in self.hook_waiting[node]:
                continue  # delivered by a pass this one set off
            if core.hook_sent_elsewhere(hook, event.id) or core.hook_superseded(hook, event.id):
                self.hook_waiting[node].remove((hook, event))
                continue
            if not core.should_deliver(hook, event.id):
                continue
            reached = self.hook_up and node not in self.hook_cut
            self.run(node, core.hook_observed(hook, reached, self.at(node)))
            if not reached:
                return
            self.hook_waiting[node].remove((hook, event))
            self.hook_posts.append((node, hook, event))
            self.run(node, core.hook_delivered(hook, event.id, self.at(node)))

    def deliver(self) -> None:
        while self.inbox:
            src, dst, push = self.inbox.pop(0)
            if not self.linked(src, dst):
                continue
            self.run(dst, self.cores[dst].entries_received(src, push.entries, self.at(dst)))
            for claimed in push.claims_by(src).values():
                self.run(src, self.cores[src].claim_acknowledged(claimed, self.at(src)))

    def sync(self) -> None:
        """A full pull in every direction that is linked."""
        for a in self.names:
            for b in self.names:
                if a == b or not self.linked(a, b):
                    continue
                cursor = None
                while True:
                    vector = dict(self.cores[a].log.vector)
                    page = self.cores[b].delta_requested(a, vector, self.at(b), cursor, limit=50)
                    step = self.cores[a].entries_received(
                        b, page.entries, self.at(a), page.covered, page.next_cursor is None
                    )
                    self.run(a, step)
                    if page.next_cursor is None:
                        break
                    cursor = page.next_cursor
        self.deliver()

    # -- facts ----------------------------------------------------------------

    def start(self) -> None:
        for name in self.names:
            self.canaries(name, True)
        self.sync()
        self.tick()

    def advance(self, ms: int) -> None:
        """Time passes; the periodic pull runs at the end of it, then a tick."""
        self.now_ms += ms
        self.sync()
        self.tick()

    def tick(self) -> None:
        for name in self.names:
            self.run(name, self.cores[name].tick(self.at(name)))
            self.deliver_hooks(name)
        self.deliver()

    def canaries(self, node: str, ok: bool) -> None:
        self.run(node, self.cores[node].canaries_observed(ok, self.at(node)))
        self.deliver()

    def check(self, node: str, target: str, ok: bool, reason: str = "") -> None:
        reason = reason or ("status 200" if ok else "status 503")
        self.run(node, self.cores[node].check_observed(target, ok, reason, 12.0, self.at(node)))
        self.deliver()

    def round(self, target: str, results: dict[str, bool], gap_ms: int = 10_000) -> None:
        """Every named node checks target once, then time moves on."""
        for node, ok in results.items():
            self.check(node, target, ok)
        self.advance(gap_ms)

    def rounds(self, target: str, results: dict[str, bool], count: int) -> None:
        for _ in range(count):
            self.round(target, results)

    # -- reading --------------------------------------------------------------

    def state(self, target: str, node: str | None = None) -> AgreedState:
        return self.cores[node or self.names[0]].record(target).state

    def notices(self, subject: str | None = None) -> list[str]:
        return [e.notice.value for _, e in self.posts if subject in (None, e.subject)]

    def all_equal(self) -> bool:
        digests = {self.cores[n].log.digest() for n in self.names}
        return len(digests) == 1


def results(names: Iterable[str], ok: bool) -> dict[str, bool]:
    return dict.fromkeys(names, ok)


def started(
    names: tuple[str, ...], targets: tuple[str, ...], offsets: dict[str, int] | None = None
) -> Net:
    """A linked pair (or more) that has seen every target UP."""
    net = Net(names, targets, offsets=offsets or {})
    net.start()
    for target in targets:
        net.rounds(target, results(names, True), 2)
    return net
