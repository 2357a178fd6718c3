"""The simulator's report: what the pair noticed against what really happened.

Definitions that bind it:

- an outage shorter than the confirmation time need not be detected; one
  that lasts longer is judged, and must be detected or it is ``missed``,
  whenever some node could watch it for the confirmation time (alive, its
  own network up): with one node crashed or cut off, the other decides
  alone within the single-vantage bound. Outages that no node could watch
  that long are ``exempt``, counted by reason;
- what users read is judged too: each node's derived agreed history against
  the scenario's outages (``uptime_error_s``, seconds of DOWN reported as
  anything else or the reverse, per target-week; the time a node alone had
  a failing path to a target, from the scenario, is judged apart in
  ``alone_on_failing_path``, as single-vantage false alarms are), whether the nodes tell
  the same history at the end (``history_mismatch``), and whether each
  target's notifications arrived in the order they were decided
  (``order_violations``) with a recovery for every paged outage
  (``missed_recoveries``);
- a DOWN announced with no real outage is a false alarm: counted in
  ``single_vantage_false_alarms`` when a node decided alone (its message says
  so), in ``false_alarms`` otherwise;
- copies are counted per transition: per real outage and direction, else
  per event id.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from consensus.agreement import Mode, Notice
from consensus.core_state import STALE_INTERVALS, STALE_SLACK_MS
from consensus.events import Event
from consensus.history import Stretch
from consensus.settings import Settings
from consensus.simulation.runner import CHECK_INTERVAL_MS, Record
from consensus.simulation.scenario import (
    Crash,
    HostOutage,
    HostPath,
    Isolation,
    NtfyCut,
    Outage,
    Scenario,
    Window,
)
from consensus.simulation.world import Post

WEEK_MS = 7 * 86_400_000
# Notices that are no move of a state and keep no order: a threshold
# crossed, a node's clock stepping (an instant fact about the node, told
# apart from its peers' lost and back, which are moves and keep theirs).
UNORDERED = frozenset({Notice.TLS_EXPIRING, Notice.DOMAIN_EXPIRING, Notice.CLOCK_JUMPED})

# After an outage ends the pair may still announce it this late (checks in
# flight, messages on the way).
DOWN_SLACK_MS = 3 * 60_000
# A recovery is announced within this long after the outage ends.
UP_SLACK_MS = 15 * 60_000
# Events of one subject, notice and state decided this close together by
# different nodes are one move (a check interval: each node's next check).
TWIN_MS = 60_000


def confirmation_ms(settings: Settings) -> int:
    """The longest a visible outage may take to be confirmed, single vantage
    included: a check interval, the peer timeout, the single-vantage streak
    of fast retries, and a margin for checks and canaries in flight."""
    return (
        CHECK_INTERVAL_MS
        + settings.peer_timeout_ms
        + settings.single_vantage_fail_threshold * settings.retry_interval_ms
        + 60_000
    )


def _is_down(event: Event) -> bool:
    return event.notice is Notice.DOWN or (
        event.notice is Notice.FLAPPING_SETTLED and event.state == "DOWN"
    )


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 1)


class _Truth:
    """Matches what the pair announced against what really happened."""

    def __init__(self, scenario: Scenario, record: Record) -> None:
        self.scenario = scenario
        self.record = record
        self.outages = list(scenario.outages)
        # Whole families in trouble (a host down for all, or out of one
        # node's reach): the scenario's own windows, and each member outage's.
        self.family_of = {t: f.name for f in scenario.families for t in f.members}
        self.episodes: list[HostOutage | HostPath] = [
            *scenario.host_outages,
            *scenario.host_paths,
        ]
        self.host_of = {
            i: h
            for i, o in enumerate(self.outages)
            for h, host in enumerate(scenario.host_outages)
            if self.family_of.get(o.target) == host.family
            and (o.start_ms, o.end_ms) == (host.start_ms, host.end_ms)
        }

    def episode(self, event: Event, at_ms: int) -> tuple[str, int] | None:
        """Which family episode a family member's event tells of, and which
        way: trouble (DOWN, a note) or back (UP)."""
        family = self.family_of.get(event.subject)
        if family is None:
            return None
        way = "back" if event.notice is Notice.UP else "trouble"
        slack_ms = UP_SLACK_MS if way == "back" else DOWN_SLACK_MS
        for index, window in enumerate(self.episodes):
            if window.family == family and window.start_ms <= at_ms <= window.end_ms + slack_ms:
                return way, index
        return None

    def family_posts(self) -> Counter[tuple[str, str, int]]:
        """Posts per node, way and family episode."""
        found: Counter[tuple[str, str, int]] = Counter()
        for post in self.record.posts:
            episode = self.episode(post.event, self.decided_at(post.event, post.at_ms))
            if episode is not None:
                found[(post.node, *episode)] += 1
        return found

    def watchable_ms(self, outage: Outage) -> int:
        """The longest stretch of the outage during which some node could watch."""
        away = {n: _away(self.scenario, n) for n in self.scenario.nodes}
        edges = {outage.start_ms, outage.end_ms}
        for window in itertools.chain(*away.values()):
            edges |= {t for t in (window.start_ms, window.end_ms) if outage.holds(t)}
        cuts = sorted(edges)
        longest = run = 0
        for lo, hi in itertools.pairwise(cuts):
            if any(not any(w.holds(lo) for w in ws) for ws in away.values()):
                run += hi - lo
                longest = max(longest, run)
            else:
                run = 0
        return longest

    def decided_at(self, event: Event, fallback_ms: int) -> int:
        return self.record.decided.get(event.id, (fallback_ms, event))[0]

    def outage_of(self, event: Event, at_ms: int, ends: bool) -> int | None:
        """The outage a DOWN (or, with ends, an UP) decided at at_ms belongs to."""
        slack_ms = UP_SLACK_MS if ends else DOWN_SLACK_MS
        for i, outage in enumerate(self.outages):
            if outage.target != event.subject:
                continue
            lo = outage.end_ms if ends else outage.start_ms
            if lo <= at_ms <= outage.end_ms + slack_ms:
                return i
        return None

    def in_flap(self, event: Event, at_ms: int) -> bool:
        return any(
            f.target == event.subject and f.start_ms <= at_ms <= f.end_ms + DOWN_SLACK_MS
            for f in self.scenario.flaps
        )

    def detections(self) -> tuple[dict[int, int], int, int]:
        """First DOWN decision per outage; false alarms, quorum and single vantage."""
        detected: dict[int, int] = {}
        false_alarms = single_false = 0
        for at_ms, event in self.record.decided.values():
            if not _is_down(event):
                continue
            index = self.outage_of(event, at_ms, ends=False)
            if index is not None:
                detected[index] = min(detected.get(index, at_ms), at_ms)
            elif self.in_flap(event, at_ms):
                continue
            elif event.mode is Mode.SINGLE_VANTAGE:
                single_false += 1
            else:
                false_alarms += 1
        return detected, false_alarms, single_false

    def deliveries(self) -> dict[int, int]:
        """First DOWN post ntfy accepted per outage. A host's page delivers
        the outage of every target on it: one page tells of them all."""
        delivered: dict[int, int] = {}
        for post in self.record.posts:
            if _is_down(post.event):
                at_ms = self.decided_at(post.event, post.at_ms)
                index = self.outage_of(post.event, at_ms, ends=False)
                if index is not None:
                    delivered[index] = min(delivered.get(index, post.at_ms), post.at_ms)
        by_host: dict[int, int] = {}
        for index, at_ms in delivered.items():
            if index in self.host_of:
                host = self.host_of[index]
                by_host[host] = min(by_host.get(host, at_ms), at_ms)
        for index, host in self.host_of.items():
            if host in by_host:
                delivered[index] = by_host[host]
        return delivered

    def transition(self, post: Post) -> tuple[object, ...]:
        """Which transition a post announced: an outage and its direction,
        else the event's own id."""
        return self.transition_of(post.event, self.decided_at(post.event, post.at_ms))

    def transition_of(self, event: Event, at_ms: int) -> tuple[object, ...]:
        index = None
        if _is_down(event):
            index = self.outage_of(event, at_ms, ends=False)
            direction = "down"
        elif event.notice is Notice.UP:
            index = self.outage_of(event, at_ms, ends=True)
            direction = "up"
        return ("event", event.id) if index is None else (direction, index)

    def episode_of(self, event: Event, at_ms: int) -> tuple[object, ...]:
        """For a flapping note: the scenario's flapping episode it tells of
        and which edge (else the event's own id)."""
        edge = {Notice.FLAPPING_STARTED: "flap-start", Notice.FLAPPING_SETTLED: "flap-end"}
        if event.notice in edge:
            for i, flap in enumerate(self.scenario.flaps):
                during = flap.start_ms <= at_ms <= flap.end_ms + UP_SLACK_MS
                if flap.target == event.subject and during:
                    return (edge[event.notice], i)
        return ("event", event.id)

    def copies(self) -> Counter[tuple[object, ...]]:
        """Posts per transition."""
        return Counter(self.transition(post) for post in self.record.posts)

    def copies_per_node(self) -> Counter[tuple[object, ...]]:
        """Posts per transition and node: what one side sent of each."""
        return Counter((post.node, *self.transition(post)) for post in self.record.posts)

    def missed_recoveries(self) -> int:
        """Outages that were paged DOWN but whose recovery never arrived."""
        paged: dict[int, int] = {}
        for post in self.record.posts:
            if _is_down(post.event):
                at_ms = self.decided_at(post.event, post.at_ms)
                index = self.outage_of(post.event, at_ms, ends=False)
                if index is not None:
                    paged.setdefault(index, at_ms)
        # A family's recovery told once tells of every member in it.
        back = {index for _, way, index in self.family_posts() if way == "back"}
        missed = 0
        for index, down_ms in paged.items():
            target = self.outages[index].target
            if self.host_of.get(index) in back:
                continue
            recovered = any(
                post.event.subject == target
                and post.event.notice
                in (Notice.UP, Notice.FLAPPING_STARTED, Notice.FLAPPING_SETTLED)
                and self.decided_at(post.event, post.at_ms) > down_ms
                for post in self.record.posts
            )
            missed += not recovered
        return missed

    def lost(self) -> int:
        """Events decided long enough before the end that nobody ever posted.
        A note about a lasting state (PARTIAL, a reminder) that something
        newer of its target overtook is moot, not lost: it must not go out late.
        An event whose outage's move was posted (the other side of a cut
        decided it too) was told, not lost."""
        posted = {p.event.id for p in self.record.posts}
        told = set(self.copies()) | {
            self.episode_of(p.event, self.decided_at(p.event, p.at_ms)) for p in self.record.posts
        }
        # A family's trouble told once tells of every member in it.
        told_families = {(way, index) for _, way, index in self.family_posts()}
        # Two nodes that decide one move at once each make an event of it
        # (twins); one posted tells it, inside a flapping episode as well.
        posted_moves = [
            (p.event.subject, p.event.notice, p.event.state, self.decided_at(p.event, p.at_ms))
            for p in self.record.posts
        ]

        def twin_told(event: Event, at_ms: int) -> bool:
            return any(
                (subject, notice, state) == (event.subject, event.notice, event.state)
                and abs(decided - at_ms) <= TWIN_MS
                for subject, notice, state, decided in posted_moves
            )

        moot = (Notice.PARTIAL_LASTING, Notice.STILL_DOWN)
        overtaken = self.overtaken_unheard()
        return sum(
            1
            for event_id, (at_ms, event) in self.record.decided.items()
            if not event.suppressed
            and event_id not in posted
            and event_id not in overtaken
            and self.transition_of(event, at_ms) not in told
            and self.episode_of(event, at_ms) not in told
            and self.episode(event, at_ms) not in told_families
            and not self._unheard_trouble(event, at_ms, told_families)
            and not self._no_note_heard(event, at_ms, posted_moves)
            and not twin_told(event, at_ms)
            and not self._already_heard(event, at_ms)
            and self.scenario.duration_ms - at_ms > 45 * 60_000
            and not (event.notice in moot and self._overtaken(event_id, event.subject, at_ms))
        )

    def _already_heard(self, event: Event, at_ms: int) -> bool:
        """Users hold this news already: the last message about its subject
        posted before it was decided says the same (a move decided again
        after a stale view brought the old state back, with no message)."""
        subject = event.subject
        before = [p for p in self.record.posts if p.event.subject == subject and p.at_ms <= at_ms]
        if not before:
            return False
        last = max(before, key=lambda p: p.at_ms).event
        return (last.notice, last.state) == (event.notice, event.state)

    @staticmethod
    def _no_note_heard(
        event: Event, at_ms: int, posted: list[tuple[str, Notice, str, int]]
    ) -> bool:
        """An UP ending trouble seen from one side whose note nobody posted
        (overtaken before it went out): users heard of no trouble, so the
        all-clear is moot. Judged by what was posted, not by why."""
        if event.notice is not Notice.UP or event.previous != "PARTIAL":
            return False
        began = event.previous_since_ms or 0
        return not any(
            subject == event.subject and notice is Notice.PARTIAL_LASTING and began <= at <= at_ms
            for subject, notice, _, at in posted
        )

    def _unheard_trouble(self, event: Event, at_ms: int, told: set[tuple[str, int]]) -> bool:
        """The recovery of a family nobody was told was in trouble: moot."""
        episode = self.episode(event, at_ms)
        return episode is not None and episode[0] == "back" and ("trouble", episode[1]) not in told

    def overtaken_unheard(self) -> set[str]:
        """Unposted events whose node could not reach ntfy (crashed, cut
        off, or cut from ntfy) from their decision until a post of an event
        of the same target decided after them: posted after it, they would
        break the target's order, so they can only be dropped. Counted apart
        from lost events (a node cut off that decides alone what nobody
        hears is the fault, not the pair's)."""
        posted = {p.event.id for p in self.record.posts}
        found = set()
        for event_id, (at_ms, event) in self.record.decided.items():
            node = self.record.decided_by.get(event_id)
            if event_id in posted or node is None or event.notice in UNORDERED:
                continue
            later_posts = [
                p.at_ms
                for p in self.record.posts
                if p.event.subject == event.subject
                and p.event.notice not in UNORDERED
                and self.decided_at(p.event, p.at_ms) > at_ms
            ]
            if later_posts and self._unheard(node, at_ms, min(later_posts)):
                found.add(event_id)
        return found

    def _unheard(self, node: str, start_ms: int, end_ms: int) -> bool:
        """The node could not reach ntfy at any time from start_ms to end_ms."""
        cut = _cut_from_ntfy(self.scenario, node) + list(self.scenario.ntfy)
        edges = sorted(
            {
                start_ms,
                end_ms,
                *(t for w in cut for t in (w.start_ms, w.end_ms) if start_ms < t < end_ms),
            }
        )
        return all(any(w.holds(lo) for w in cut) for lo, _ in itertools.pairwise(edges))

    def _overtaken(self, event_id: str, subject: str, at_ms: int) -> bool:
        return any(
            other_id != event_id
            and other.subject == subject
            and other_at >= at_ms
            and other.notice not in UNORDERED
            for other_id, (other_at, other) in self.record.decided.items()
        )


def _spread(values: Sequence[float]) -> dict[str, float | None]:
    return {
        "p50": _percentile(values, 0.5),
        "p95": _percentile(values, 0.95),
        "max": _percentile(values, 1.0),
    }


def _judged_windows(scenario: Scenario, exempt: list[Outage]) -> list[Window]:
    """Time not judged for uptime: flapping episodes (their own state) and
    outages that no node could watch, with the slack to decide after them."""
    skip = [Window(f.start_ms, f.end_ms + DOWN_SLACK_MS) for f in scenario.flaps]
    skip += [Window(o.start_ms, o.end_ms + UP_SLACK_MS) for o in exempt]
    return skip


def _down_ms(windows: list[tuple[int, int]], lo: int, hi: int) -> int:
    return sum(max(0, min(b, hi) - max(a, lo)) for a, b in windows)


def _away(scenario: Scenario, node: str) -> list[Window]:
    """When a node could watch nothing: crashed, cut off from the world, or
    stalled (its scheduler ran no checks)."""
    found = [Window(c.start_ms, c.end_ms) for c in scenario.crashes if c.node == node]
    found += [Window(s.start_ms, s.end_ms) for s in scenario.stalls if s.node == node]
    found += [Window(i.start_ms, i.end_ms) for i in scenario.isolations if i.node == node]
    return found


def _blind(scenario: Scenario, node: str) -> list[Window]:
    """When a node could not vote: away, or partitioned from the others."""
    return _away(scenario, node) + list(scenario.partitions)


def alone_on_a_failing_path(scenario: Scenario, target: str) -> list[Window]:
    """When the only node that could vote on target had a failing path to it
    (from the scenario alone): it calls the target DOWN by itself, the
    single-vantage false alarm no pair can avoid, until the others return
    (and, with slack, until they are heard again)."""
    found: list[Window] = []
    for path in scenario.paths:
        if path.target != target:
            continue
        others = [n for n in scenario.nodes if n != path.node]
        # Cut points where any other node's blindness starts or ends.
        blind = {n: _blind(scenario, n) for n in others}
        edges = sorted(
            {
                path.start_ms,
                path.end_ms,
                *(
                    t
                    for ws in blind.values()
                    for w in ws
                    for t in (w.start_ms, w.end_ms)
                    if path.start_ms < t < path.end_ms
                ),
            }
        )
        for lo, hi in itertools.pairwise(edges):
            if all(any(w.holds(lo) for w in blind[n]) for n in others):
                found.append(Window(lo, min(path.end_ms, hi + DOWN_SLACK_MS)))
    return found


def uptime_errors(
    scenario: Scenario,
    histories: dict[str, dict[str, list[Stretch]]],
    exempt: list[Outage],
    alone: dict[str, list[Window]] | None = None,
) -> list[float]:
    """Per node and target: seconds of DOWN reported as anything else, or
    anything else reported as DOWN, per target-week of judged time. Time in
    ``alone`` (per target) is judged apart: see ``alone_errors``."""
    alone = alone or {}
    end = scenario.duration_ms
    errors: list[float] = []
    for history in histories.values():
        for target in scenario.targets:
            skip = _judged_windows(scenario, exempt) + alone.get(target, [])
            truth = [(o.start_ms, o.end_ms) for o in scenario.outages if o.target == target]
            told = [
                (s.start_ms, end if s.end_ms is None else s.end_ms)
                for s in history.get(target, [])
                if s.state == "DOWN"
            ]
            edges = {t for w in skip for t in (w.start_ms, w.end_ms) if 0 < t < end}
            cuts = sorted({0, end, *(t for w in truth + told for t in w), *edges})
            wrong = judged = 0
            for lo, hi in itertools.pairwise(cuts):
                # Cuts include every skipped window's edges: a piece is wholly in or out.
                if any(w.holds(lo) for w in skip):
                    continue
                judged += hi - lo
                if (_down_ms(truth, lo, hi) > 0) != (_down_ms(told, lo, hi) > 0):
                    wrong += hi - lo
            if judged > 0:
                errors.append(wrong / 1000 * WEEK_MS / judged)
    return errors


def alone_errors(
    scenario: Scenario,
    histories: dict[str, dict[str, list[Stretch]]],
    alone: dict[str, list[Window]],
) -> float:
    """Seconds, over all nodes and targets, that the history called DOWN
    while the target answered, inside the single-vantage windows."""
    end = scenario.duration_ms
    wrong = 0
    for history in histories.values():
        for target, windows in alone.items():
            truth = [(o.start_ms, o.end_ms) for o in scenario.outages if o.target == target]
            told = [
                (s.start_ms, end if s.end_ms is None else s.end_ms)
                for s in history.get(target, [])
                if s.state == "DOWN"
            ]
            for w in windows:
                inside = (t for x in truth + told for t in x if w.start_ms < t < w.end_ms)
                cuts = sorted({w.start_ms, w.end_ms, *inside})
                for a, b in itertools.pairwise(cuts):
                    if (_down_ms(truth, a, b) > 0) != (_down_ms(told, a, b) > 0):
                        wrong += b - a
    return wrong / 1000


def outage_errors(
    scenario: Scenario, histories: dict[str, dict[str, list[Stretch]]], judged: list[Outage]
) -> list[float]:
    """Per node and judged outage: seconds of error around that outage alone
    (from the slack before it to the slack after it)."""
    end = scenario.duration_ms
    errors: list[float] = []
    for history in histories.values():
        for outage in judged:
            lo, hi = outage.start_ms - DOWN_SLACK_MS, min(end, outage.end_ms + UP_SLACK_MS)
            told = [
                (s.start_ms, end if s.end_ms is None else s.end_ms)
                for s in history.get(outage.target, [])
                if s.state == "DOWN"
            ]
            truth = [(outage.start_ms, outage.end_ms)]
            cuts = sorted({lo, hi, *(t for w in truth + told for t in w if lo < t < hi)})
            wrong = sum(
                b - a
                for a, b in itertools.pairwise(cuts)
                if (_down_ms(truth, a, b) > 0) != (_down_ms(told, a, b) > 0)
            )
            errors.append(wrong / 1000)
    return errors


def _fault_windows(scenario: Scenario, outage: Outage) -> dict[str, list[Window]]:
    """Every fault window that can touch an outage's notification, by kind."""
    return {
        "partition": list(scenario.partitions),
        "isolation": list(scenario.isolations),
        "path": [p for p in scenario.paths if p.target == outage.target],
        "crash": list(scenario.crashes),
        "ntfy": list(scenario.ntfy),
        "ntfy_cut": list(scenario.ntfy_cuts),
        "clock_step": list(scenario.clock_steps),
        "stall": list(scenario.stalls),
    }


def latency_by_fault(
    scenario: Scenario, outages: Sequence[Outage], delivered: dict[int, int], must: Sequence[int]
) -> dict[str, dict[str, float | int | None]]:
    """Outage start to the first DOWN ntfy accepted, per fault kind that
    overlapped the outage before it was paged ("none": no fault at all)."""
    by_kind: dict[str, list[float]] = {}
    for i in must:
        if i not in delivered:
            continue
        outage = outages[i]
        paged = delivered[i]
        latency = (paged - outage.start_ms) / 1000
        kinds = [
            kind
            for kind, windows in _fault_windows(scenario, outage).items()
            if any(w.overlaps(outage.start_ms, paged) for w in windows)
        ]
        for kind in kinds or ["none"]:
            by_kind.setdefault(kind, []).append(latency)
    return {
        kind: {
            "outages": len(values),
            "p95": _percentile(values, 0.95),
            "max": round(max(values), 1),
        }
        for kind, values in sorted(by_kind.items())
    }


def _cut_from_ntfy(scenario: Scenario, node: str) -> list[Window]:
    """When the node alone could not post: crashed, cut off from the world,
    or cut from ntfy by itself."""
    own: list[Crash | Isolation | NtfyCut] = [
        *scenario.crashes,
        *scenario.isolations,
        *scenario.ntfy_cuts,
    ]
    return [w for w in own if w.node == node]


def ntfy_unreachable(scenario: Scenario) -> list[Window]:
    """When no node could post (from the scenario alone): ntfy itself in
    trouble, or every node cut from it."""
    blocked = {n: _cut_from_ntfy(scenario, n) for n in scenario.nodes}
    found = [Window(t.start_ms, t.end_ms) for t in scenario.ntfy]
    edges = sorted({t for ws in blocked.values() for w in ws for t in (w.start_ms, w.end_ms)})
    for lo, hi in itertools.pairwise(edges):
        if all(any(w.holds(lo) for w in ws) for ws in blocked.values()):
            found.append(Window(lo, hi))
    return found


def reachable_since(unreachable: Sequence[Window], start_ms: int, paged_ms: int) -> int:
    """From when a page could be on its way: the outage's start, or the end
    of the last time before the page that no node could reach ntfy."""
    ends = [min(w.end_ms, paged_ms) for w in unreachable if w.overlaps(start_ms, paged_ms)]
    return max([start_ms, *ends])


def _reachable_waits(
    scenario: Scenario, outages: Sequence[Outage], delivered: dict[int, int], must: Sequence[int]
) -> list[int]:
    """Per paged outage: ms from when some node could reach ntfy to the page."""
    unreachable = ntfy_unreachable(scenario)
    return [
        delivered[i] - reachable_since(unreachable, outages[i].start_ms, delivered[i])
        for i in must
        if i in delivered
    ]


def reachable_latency_max(
    scenario: Scenario, outages: Sequence[Outage], delivered: dict[int, int], must: Sequence[int]
) -> float | None:
    """The longest page, in seconds, counted from when some node could reach ntfy."""
    waits = _reachable_waits(scenario, outages, delivered, must)
    return round(max(waits) / 1000, 1) if waits else None


def late_pages(
    scenario: Scenario,
    outages: Sequence[Outage],
    delivered: dict[int, int],
    must: Sequence[int],
    bound_ms: int,
) -> int:
    """Outages paged later than bound_ms after they began, or after the last
    time meanwhile that no node could reach ntfy (a down ntfy, or one cut
    from every node, holds every page until it is back)."""
    return sum(
        1 for wait in _reachable_waits(scenario, outages, delivered, must) if wait > bound_ms
    )


def group_figures(truth: _Truth) -> dict[str, Any]:
    """Whole families in trouble: a host down for every node, or out of one
    node's reach. Each should be one message of trouble and one of
    recovery per side, whatever the number of targets on the host; a host
    down for all must be paged."""
    posts = truth.family_posts()
    outages = truth.scenario.host_outages
    paged = {index for (_, way, index) in posts if way == "trouble"}
    judged = [
        i
        for i, h in enumerate(outages)
        if truth.scenario.duration_ms - h.end_ms > 45 * 60_000 and h.length_ms > 3 * 60_000
    ]
    return {
        "group_outages": len(outages),
        "group_paths": len(truth.scenario.host_paths),
        "group_messages": sum(posts.values()),
        "group_messages_per_side_max": {
            way: max((n for (_, w, _), n in posts.items() if w == way), default=0)
            for way in ("trouble", "back")
        },
        "group_outages_unpaged": sum(1 for i in judged if i not in paged),
        # Host outages told with exactly one message each way in all.
        "group_outages_once_each_way": sum(
            1
            for i in judged
            if all(
                sum(n for (_, w, j), n in posts.items() if (w, j) == (way, i)) == 1
                for way in ("trouble", "back")
            )
        ),
        "group_outages_judged": len(judged),
        "group_outages_judged_by": dict(Counter(outages[i].family for i in judged)),
    }


def history_mismatch(scenario: Scenario, histories: dict[str, dict[str, list[Stretch]]]) -> int:
    """Targets whose derived history differs between the live nodes."""
    views = list(histories.values())
    return sum(1 for t in scenario.targets if any(v.get(t) != views[0].get(t) for v in views[1:]))


def _twins(record: Record, one: tuple[int, Event], other: tuple[int, Event]) -> bool:
    """Two events (each with when it was decided) that are one move decided
    on both sides of a cut: alike, by different nodes, within TWIN_MS."""
    (one_ms, a), (other_ms, b) = one, other
    return (
        (a.subject, a.notice, a.state) == (b.subject, b.notice, b.state)
        and record.decided_by.get(a.id) != record.decided_by.get(b.id)
        and abs(one_ms - other_ms) <= TWIN_MS
    )


def unseen(scenario: Scenario, target: str, within: Window) -> list[Window]:
    """Stretches of ``within`` in which no node could see the target as it
    was: each node crashed, stalled, cut off from the world, or on a
    failing path to it (from the scenario alone)."""
    hidden = {
        node: _away(scenario, node)
        + [p for p in scenario.paths if (p.node, p.target) == (node, target)]
        for node in scenario.nodes
    }
    inner = {t for ws in hidden.values() for w in ws for t in (w.start_ms, w.end_ms)}
    edges = sorted({within.start_ms, within.end_ms} | {t for t in inner if within.holds(t)})
    found: list[Window] = []
    for lo, hi in itertools.pairwise(edges):
        if all(any(w.holds(lo) for w in ws) for ws in hidden.values()):
            joined = found.pop().start_ms if found and found[-1].end_ms == lo else lo
            found.append(Window(joined, hi))
    return found


def flap_sightings(scenario: Scenario) -> int:
    """Flapping episodes as the pair could see them. An episode in which no
    node saw the target for longer than a view stays fresh (the design's
    stale views stop voting) may be told settled and started again after:
    whoever still votes saw no flapping. Each such stretch is one more."""
    stale_ms = STALE_INTERVALS * CHECK_INTERVAL_MS + STALE_SLACK_MS
    return sum(
        1 + sum(1 for w in unseen(scenario, flap.target, flap) if w.length_ms >= stale_ms)
        for flap in scenario.flaps
    )


def flapping_starts(record: Record) -> int:
    """FLAPPING_STARTED moves posted. Both sides of a cut may decide the same
    start and post a copy each: twins count once, as copies of one move;
    starts by one node always count."""
    starts = sorted(
        (
            (record.decided.get(post.event.id, (post.at_ms, post.event))[0], post.event)
            for post in record.posts
            if post.event.notice is Notice.FLAPPING_STARTED
        ),
        key=lambda start: start[0],
    )
    moves: list[tuple[int, Event]] = []
    for start in starts:
        if not any(_twins(record, start, move) for move in moves):
            moves.append(start)
    return len(moves)


def order_violations(record: Record) -> int:
    """Posts of a target that arrived after a post of a later decision. A
    copy of the same move from the other side of a cut (its twin) says
    nothing out of order."""
    latest: dict[str, tuple[int, Event]] = {}
    violations = 0
    for post in record.posts:
        event = post.event
        if event.notice in UNORDERED:
            continue
        decided = record.decided.get(event.id, (post.at_ms, event))[0]
        seen = latest.get(event.subject)
        if seen is not None and seen[1].id != event.id and decided < seen[0]:
            violations += not _twins(record, seen, (decided, event))
        if seen is None or decided > seen[0]:
            latest[event.subject] = (decided, event)
    return violations


def hook_figures(scenario: Scenario, record: Record) -> dict[str, int]:
    """The webhook receiver's deliveries, by the judge of ntfy's posts. A
    second copy of one event (its webhook-id seen again, after a crash lost
    the first one's answer) is dropped by the receiver, as the convention
    says, and counted apart."""
    first: dict[str, Post] = {}
    for post in record.hook_posts:
        first.setdefault(post.event.id, post)
    delivered = replace(record, posts=list(first.values()))
    truth = _Truth(scenario, delivered)
    copies = truth.copies()
    return {
        "delivered": len(first),
        "second_copies": len(record.hook_posts) - len(first),
        "duplicates": sum(1 for c in copies.values() if c > 1),
        "max_copies": max(copies.values(), default=0),
        "copies_per_node_max": max(truth.copies_per_node().values(), default=0),
        "lost_events": truth.lost(),
        "order_violations": order_violations(delivered),
        "missed_recoveries": truth.missed_recoveries(),
    }


def build(scenario: Scenario, record: Record, settings: Settings) -> dict[str, Any]:
    confirm = confirmation_ms(settings)
    truth = _Truth(scenario, record)
    outages = truth.outages
    detected, false_alarms, single_false = truth.detections()
    delivered = truth.deliveries()
    confirmable = [i for i, o in enumerate(outages) if o.length_ms > confirm]
    must = [i for i in confirmable if truth.watchable_ms(outages[i]) > confirm]
    exempt = [outages[i] for i in confirmable if i not in must]
    copies = truth.copies()
    per_node = truth.copies_per_node()
    alone = {t: alone_on_a_failing_path(scenario, t) for t in scenario.targets}
    alone = {t: ws for t, ws in alone.items() if ws}
    errors = uptime_errors(scenario, record.histories, exempt, alone)
    latency = [(detected[i] - outages[i].start_ms) / 1000 for i in must if i in detected]
    delivery = [(delivered[i] - outages[i].start_ms) / 1000 for i in must if i in delivered]
    convergence = max(record.convergence_ms, default=0)
    page_bound = settings.failover_ms + confirm + CHECK_INTERVAL_MS
    return {
        "outages": len(outages),
        "must_detect": len(must),
        "judged": len(must),
        "exempt": len(exempt),
        "exempt_why": {"no node could watch for the confirmation time": len(exempt)},
        "detected": len(detected),
        "missed": sum(1 for i in must if i not in detected),
        "false_alarms": false_alarms,
        "single_vantage_false_alarms": single_false,
        "duplicates": sum(1 for c in copies.values() if c > 1),
        "max_copies": max(copies.values(), default=0),
        "detection_latency_s": _spread(latency),
        "delivery_latency_s": _spread(delivery),
        "convergence_s": round(convergence / 1000, 1),
        "heals": len(record.convergence_ms) + record.unconverged,
        "unconverged": record.unconverged,
        "lost_events": truth.lost(),
        "overtaken_unheard": len(truth.overtaken_unheard()),
        "uptime_error_s": _spread(errors),
        "outage_error_s": _spread(
            outage_errors(scenario, record.histories, [outages[i] for i in must])
        ),
        # Judged apart: a node alone on a failing path (partition, crash or
        # cut-off peer) calls the target DOWN by itself; how much of that
        # time the history told wrong, in seconds over all nodes.
        "alone_on_failing_path": {
            "windows": sum(len(ws) for ws in alone.values()),
            "seconds": round(sum(w.length_ms for ws in alone.values() for w in ws) / 1000, 1),
            "error_s": round(alone_errors(scenario, record.histories, alone), 1),
        },
        "history_mismatch": history_mismatch(scenario, record.histories),
        "order_violations": order_violations(record),
        "missed_recoveries": truth.missed_recoveries(),
        "copies_per_node_max": max(per_node.values(), default=0),
        "lookups_failed": record.lookups_failed,
        "lookups_found": record.lookups_found,
        # Outage start to the first DOWN on ntfy, per fault kind met on the
        # way; the worst of it counted from when some node could reach ntfy
        # again; late_pages: over failover + confirmation + one interval so.
        "notification_latency_s": latency_by_fault(scenario, outages, delivered, must),
        "notification_latency_reachable_s": reachable_latency_max(
            scenario, outages, delivered, must
        ),
        "notification_bound_s": page_bound / 1000,
        "late_pages": late_pages(scenario, outages, delivered, must, page_bound),
        "notifications": dict(sorted(Counter(p.event.notice.value for p in record.posts).items())),
        "webhooks": hook_figures(scenario, record),
        "flap_episodes": len(scenario.flaps),
        "flap_sightings": flap_sightings(scenario),
        "flapping_starts": flapping_starts(record),
        **group_figures(truth),
        "warnings": dict(sorted(record.warnings.items())),
        "sync_bytes": dict(sorted(record.sync_bytes.items())),
        "confirmation_s": confirm / 1000,
        "checks": record.checks,
        "sim_seconds": scenario.duration_ms // 1000,
    }
