"""The simulator's judge of what users read can fail: each measure is shown
a record that breaks it, built by hand against a hand-made truth."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from consensus.agreement import Mode, Notice
from consensus.events import Event
from consensus.history import Stretch
from consensus.hlc import Hlc
from consensus.simulation.report import (
    _Truth,
    alone_on_a_failing_path,
    flap_sightings,
    flapping_starts,
    history_mismatch,
    late_pages,
    latency_by_fault,
    order_violations,
    outage_errors,
    reachable_latency_max,
    uptime_errors,
)
from consensus.simulation.runner import Record
from consensus.simulation.scenario import (
    Crash,
    Flap,
    Isolation,
    Outage,
    PathFailure,
    Scenario,
    Stall,
    Window,
)
from consensus.simulation.world import Post

MIN = 60_000
WEEK = 7 * 24 * 60 * MIN
OUTAGE = Outage(100 * MIN, 130 * MIN, "web")
SCENARIO = Scenario(("huginn", "muninn"), ("web",), 7 * 24 * 60 * MIN, frozenset(),
                    outages=(OUTAGE,))  # fmt: skip


def told(down_from_ms: int, down_to_ms: int) -> list[Stretch]:
    return [
        Stretch("web", "UP", "quorum", 0, down_from_ms),
        Stretch("web", "DOWN", "quorum", down_from_ms, down_to_ms),
        Stretch("web", "UP", "quorum", down_to_ms, None),
    ]


def event(notice: Notice, at_ms: int) -> Event:
    anchor = Hlc(at_ms, 0, "huginn")
    return Event(f"{notice.value}-{at_ms}", "web", notice, notice.value, "", anchor, Mode.QUORUM,
                 ("huginn", "muninn"))  # fmt: skip


def test_a_true_history_has_no_error_and_a_late_one_is_counted() -> None:
    exact = {"huginn": {"web": told(OUTAGE.start_ms, OUTAGE.end_ms)}}
    assert uptime_errors(SCENARIO, exact, []) == [0.0]
    # Told 1 minute late at each end: 2 minutes wrong.
    late = {"huginn": {"web": told(OUTAGE.start_ms + MIN, OUTAGE.end_ms + MIN)}}
    assert uptime_errors(SCENARIO, late, []) == [120.0]
    assert outage_errors(SCENARIO, late, [OUTAGE]) == [120.0]
    # An outage never told is wrong for its whole length.
    missed = {"huginn": {"web": [Stretch("web", "UP", "quorum", 0, None)]}}
    assert uptime_errors(SCENARIO, missed, []) == [30 * 60.0]


def test_two_nodes_that_tell_different_histories_are_a_mismatch() -> None:
    same = told(OUTAGE.start_ms, OUTAGE.end_ms)
    assert history_mismatch(SCENARIO, {"huginn": {"web": same}, "muninn": {"web": same}}) == 0
    other = told(OUTAGE.start_ms, OUTAGE.end_ms + 1)
    assert history_mismatch(SCENARIO, {"huginn": {"web": same}, "muninn": {"web": other}}) == 1


def test_a_recovery_posted_before_its_outage_is_an_order_violation() -> None:
    down, up = event(Notice.DOWN, OUTAGE.start_ms), event(Notice.UP, OUTAGE.end_ms)
    record = Record()
    record.decided = {down.id: (OUTAGE.start_ms, down), up.id: (OUTAGE.end_ms, up)}
    record.posts = [Post(OUTAGE.end_ms, "muninn", up), Post(OUTAGE.end_ms + 5, "huginn", down)]
    assert order_violations(record) == 1
    record.posts.reverse()
    assert order_violations(record) == 0


def test_a_twin_from_the_other_side_of_a_cut_posted_late_is_no_order_violation() -> None:
    # Both sides of a cut decided the recovery, 20 s apart; the later went
    # out first. A second copy of one move, not news out of order; an UP
    # of Huginn's 5 minutes before Muninn's would be another move.
    up_h, up_m = event(Notice.UP, OUTAGE.end_ms), event(Notice.UP, OUTAGE.end_ms + 20_000)
    up_m = replace(up_m, id="up-muninn")
    record = Record()
    record.decided = {up_h.id: (OUTAGE.end_ms, up_h), up_m.id: (OUTAGE.end_ms + 20_000, up_m)}
    record.decided_by = {up_h.id: "huginn", up_m.id: "muninn"}
    record.posts = [
        Post(OUTAGE.end_ms + 21_000, "muninn", up_m),
        Post(OUTAGE.end_ms + 80_000, "huginn", up_h),
    ]
    assert order_violations(record) == 0
    record.decided[up_m.id] = (OUTAGE.end_ms + 5 * MIN, up_m)
    assert order_violations(record) == 1


def test_a_clock_jump_keeps_no_order_with_a_peer_lost_but_peer_back_does() -> None:
    # Across a cut, Muninn decided Huginn lost; Huginn, its clock stepped,
    # told of the jump first. Two facts, no move between them.
    def about_huginn(notice: Notice, at_ms: int) -> Event:
        return replace(event(notice, at_ms), subject="huginn")

    lost, jumped = (
        about_huginn(Notice.PEER_LOST, 124 * MIN),
        about_huginn(Notice.CLOCK_JUMPED, 125 * MIN),
    )
    record = Record()
    record.decided = {lost.id: (124 * MIN, lost), jumped.id: (125 * MIN, jumped)}
    record.posts = [Post(125 * MIN, "huginn", jumped), Post(126 * MIN, "muninn", lost)]
    assert order_violations(record) == 0
    back = about_huginn(Notice.PEER_BACK, 125 * MIN)
    record.decided = {lost.id: (124 * MIN, lost), back.id: (125 * MIN, back)}
    record.posts = [Post(125 * MIN, "huginn", back), Post(126 * MIN, "muninn", lost)]
    assert order_violations(record) == 1


def test_copies_of_one_flapping_start_from_both_sides_of_a_cut_count_once() -> None:
    def start(at_ms: int, by: str) -> tuple[Event, Post]:
        found = replace(event(Notice.FLAPPING_STARTED, at_ms), id=f"start-{by}-{at_ms}")
        record.decided[found.id] = (at_ms, found)
        record.decided_by[found.id] = by
        return found, Post(at_ms + 1_000, by, found)

    record = Record()
    # Each side of a cut decided the start 10 s apart and posted it.
    record.posts = [start(300 * MIN, "muninn")[1], start(300 * MIN + 10_000, "huginn")[1]]
    assert flapping_starts(record) == 1
    # One node starting the same flapping twice is two starts, as is a
    # start by the other node long after.
    record.posts.append(start(310 * MIN, "muninn")[1])
    assert flapping_starts(record) == 2
    record.posts.append(start(320 * MIN, "huginn")[1])
    assert flapping_starts(record) == 3


def _flapping(**faults: Any) -> Scenario:
    """Web flaps for two hours (a minute down in every three) among faults."""
    downs = tuple(Window(t, t + MIN) for t in range(100 * MIN, 220 * MIN, 3 * MIN))
    flap = Flap(100 * MIN, 220 * MIN, "web", downs)
    return Scenario(("huginn", "muninn"), ("web",), WEEK, frozenset(), flaps=(flap,), **faults)


def test_a_flapping_episode_nobody_saw_for_long_may_be_started_again() -> None:
    # One episode, seen by someone throughout: one start allowed.
    assert flap_sightings(_flapping()) == 1
    # Muninn's path fails for half an hour and Huginn stalls for six
    # minutes inside it: nobody saw the flapping, longer than a view stays
    # fresh. Whoever voted saw none: it may settle, then start again.
    path = (PathFailure(130 * MIN, 160 * MIN, "muninn", "web"),)
    stall = Stall(140 * MIN, 146 * MIN, "huginn")
    assert flap_sightings(_flapping(paths=path, stalls=(stall,))) == 2
    # Unseen as long, pieced from a stall, a crash and an isolation.
    pieced = _flapping(
        paths=path,
        stalls=(Stall(140 * MIN, 142 * MIN, "huginn"),),
        crashes=(Crash(142 * MIN, 144 * MIN, "huginn"),),
        isolations=(Isolation(144 * MIN, 146 * MIN, "huginn", True),),
    )
    assert flap_sightings(pieced) == 2
    # Unseen for two minutes only: the views stayed fresh, one start.
    short = Stall(140 * MIN, 142 * MIN, "huginn")
    assert flap_sightings(_flapping(paths=path, stalls=(short,))) == 1
    # Huginn stalled alone, or Muninn's path to another target failing:
    # someone saw, one start.
    assert flap_sightings(_flapping(stalls=(stall,))) == 1
    other = (PathFailure(130 * MIN, 160 * MIN, "muninn", "api"),)
    assert flap_sightings(_flapping(paths=other, stalls=(stall,))) == 1
    # Unseen outside the episode does not count.
    late = Stall(230 * MIN, 240 * MIN, "huginn")
    after = (PathFailure(225 * MIN, 250 * MIN, "muninn", "web"),)
    assert flap_sightings(_flapping(paths=after, stalls=(late,))) == 1


def test_a_stalled_node_watches_nothing_so_an_outage_it_alone_could_see_is_unwatched() -> None:
    outage = Outage(100 * MIN, 108 * MIN, "web")
    # Muninn is cut off from the world throughout; Huginn's scheduler
    # stalls until 30 s before the end: 30 s watched, under a confirmation.
    cut_off = Isolation(99 * MIN, 120 * MIN, "muninn", False)
    stalled = Stall(95 * MIN, 107 * MIN + 30_000, "huginn")
    scenario = Scenario(
        ("huginn", "muninn"),
        ("web",),
        WEEK,
        frozenset(),
        outages=(outage,),
        isolations=(cut_off,),
        stalls=(stalled,),
    )
    assert _Truth(scenario, Record()).watchable_ms(outage) == 30_000
    # Without the stall, Huginn watched all of it.
    assert _Truth(replace(scenario, stalls=()), Record()).watchable_ms(outage) == 8 * MIN


def test_a_paged_outage_without_its_recovery_is_counted() -> None:
    down = event(Notice.DOWN, OUTAGE.start_ms + MIN)
    record = Record()
    record.decided = {down.id: (OUTAGE.start_ms + MIN, down)}
    record.posts = [Post(OUTAGE.start_ms + MIN, "huginn", down)]
    assert _Truth(SCENARIO, record).missed_recoveries() == 1
    up = event(Notice.UP, OUTAGE.end_ms + MIN)
    record.decided[up.id] = (OUTAGE.end_ms + MIN, up)
    record.posts.append(Post(OUTAGE.end_ms + MIN, "huginn", up))
    assert _Truth(SCENARIO, record).missed_recoveries() == 0


def test_a_note_overtaken_by_a_recovery_is_moot_but_a_lost_down_is_lost() -> None:
    end = SCENARIO.duration_ms
    note = event(Notice.PARTIAL_LASTING, 10 * MIN)
    up = event(Notice.UP, 10 * MIN + 5)
    record = Record()
    record.decided = {note.id: (10 * MIN, note), up.id: (10 * MIN + 5, up)}
    record.posts = [Post(10 * MIN + 6, "huginn", up)]
    assert _Truth(SCENARIO, record).lost() == 0
    down = event(Notice.DOWN, end - 60 * MIN)
    record.decided[down.id] = (end - 60 * MIN, down)
    assert _Truth(SCENARIO, record).lost() == 1


def _muninn_path_fails(**away: Any) -> tuple[Scenario, list[Window]]:
    """Muninn's path to web fails 200-260 min, with Huginn away as given:
    the scenario, and the windows in which Muninn is alone on that path."""
    path = PathFailure(200 * MIN, 260 * MIN, "muninn", "web")
    scenario = Scenario(("huginn", "muninn"), ("web",), 7 * 24 * 60 * MIN, frozenset(),
                        paths=(path,), **away)  # fmt: skip
    return scenario, alone_on_a_failing_path(scenario, "web")


def test_time_alone_on_a_failing_path_is_judged_apart_from_the_scenario() -> None:
    # Muninn's path fails while Huginn is crashed for ten minutes inside it:
    # only then is Muninn alone (and the slack after Huginn returns).
    crashed = Crash(210 * MIN, 220 * MIN, "huginn")
    scenario, (window,) = _muninn_path_fails(crashes=(crashed,))
    assert window.start_ms == crashed.start_ms and window.end_ms == crashed.end_ms + 3 * MIN
    assert isinstance(window, Window)
    # Without anyone away, the peer outvotes the failing path: nothing apart.
    assert _muninn_path_fails()[1] == []
    # A history that says DOWN there is wrong only there, and counted apart.
    wrong = {"huginn": {"web": told(crashed.start_ms, crashed.end_ms)}}
    alone = {"web": [window]}
    assert uptime_errors(scenario, wrong, [], alone) == [0.0]
    assert uptime_errors(scenario, wrong, []) == [10 * 60.0]


def test_a_stalled_peer_leaves_a_node_alone_on_its_failing_path() -> None:
    # Huginn's scheduler runs no checks for ten minutes while Muninn's path
    # to the target fails: Muninn is alone there, as with a crashed peer.
    stalled = Stall(210 * MIN, 220 * MIN, "huginn")
    _, (window,) = _muninn_path_fails(stalls=(stalled,))
    assert window.start_ms == stalled.start_ms and window.end_ms == stalled.end_ms + 3 * MIN


def test_an_event_whose_move_another_event_told_is_not_lost() -> None:
    # Both sides of a cut decided the recovery; one was posted.
    up_here, up_there = event(Notice.UP, 130 * MIN + 30_000), event(Notice.UP, 130 * MIN + 40_000)
    record = Record()
    record.decided = {up_here.id: (130 * MIN + 30_000, up_here),
                      up_there.id: (130 * MIN + 40_000, up_there)}  # fmt: skip
    record.posts = [Post(130 * MIN + 41_000, "huginn", up_there)]
    assert _Truth(SCENARIO, record).lost() == 0
    record.posts = []
    assert _Truth(SCENARIO, record).lost() == 2


def test_a_move_decided_again_with_nothing_told_between_is_not_lost() -> None:
    # A PARTIAL's note and its UP went out; a stale view brought PARTIAL
    # back without a message, and the UP was decided again 20 minutes on.
    # Users already hold that news. A DOWN posted in between would make the
    # second UP news again: then it is lost.
    note, up = event(Notice.PARTIAL_LASTING, 300 * MIN), event(Notice.UP, 310 * MIN)
    again = event(Notice.UP, 330 * MIN)
    record = Record()
    record.decided = {e.id: (e.anchor.wall_ms, e) for e in (note, up, again)}
    record.posts = [Post(300 * MIN, "muninn", note), Post(310 * MIN, "muninn", up)]
    assert _Truth(SCENARIO, record).lost() == 0
    down = event(Notice.DOWN, 320 * MIN)
    record.decided[down.id] = (320 * MIN, down)
    record.posts.append(Post(320 * MIN, "huginn", down))
    assert _Truth(SCENARIO, record).lost() == 1


def test_a_page_later_than_the_bound_is_late_unless_no_node_could_reach_ntfy() -> None:
    from dataclasses import replace

    from consensus.simulation.scenario import NtfyCut, NtfyTrouble

    bound = 5 * MIN
    on_time = {0: OUTAGE.start_ms + 2 * MIN}
    held = {0: OUTAGE.start_ms + 12 * MIN}
    assert late_pages(SCENARIO, [OUTAGE], on_time, [0], bound) == 0
    assert late_pages(SCENARIO, [OUTAGE], held, [0], bound) == 1
    # One node cut from ntfy does not excuse it: its peer could have posted.
    cut = replace(SCENARIO, ntfy_cuts=(NtfyCut(OUTAGE.start_ms, OUTAGE.start_ms + 11 * MIN,
                                              "huginn"),))  # fmt: skip
    assert late_pages(cut, [OUTAGE], held, [0], bound) == 1
    # ntfy down for everyone holds every page; that is not the pair's doing.
    down = replace(SCENARIO, ntfy=(NtfyTrouble(OUTAGE.start_ms, OUTAGE.start_ms + 11 * MIN,
                                               None),))  # fmt: skip
    assert late_pages(down, [OUTAGE], held, [0], bound) == 0
    # ...but only until it is back: the page is owed within the bound after.
    short = replace(SCENARIO, ntfy=(NtfyTrouble(OUTAGE.start_ms, OUTAGE.start_ms + 6 * MIN,
                                                None),))  # fmt: skip
    assert late_pages(short, [OUTAGE], held, [0], bound) == 1
    # ntfy cut from both nodes at once is as good as down; each cut alone is not.
    both = replace(SCENARIO, ntfy_cuts=(
        NtfyCut(OUTAGE.start_ms, OUTAGE.start_ms + 11 * MIN, "huginn"),
        NtfyCut(OUTAGE.start_ms + MIN, OUTAGE.start_ms + 9 * MIN, "muninn"),
    ))  # fmt: skip
    assert late_pages(both, [OUTAGE], held, [0], bound) == 0
    assert reachable_latency_max(both, [OUTAGE], held, [0]) == 180.0, "from 9 min to 12 min"
    apart = replace(SCENARIO, ntfy_cuts=(
        NtfyCut(OUTAGE.start_ms, OUTAGE.start_ms + 5 * MIN, "huginn"),
        NtfyCut(OUTAGE.start_ms + 5 * MIN, OUTAGE.start_ms + 11 * MIN, "muninn"),
    ))  # fmt: skip
    assert late_pages(apart, [OUTAGE], held, [0], bound) == 1
    # One node crashed while the other is cut from ntfy: nobody could post.
    muninn_crashed = Crash(OUTAGE.start_ms, OUTAGE.start_ms + 10 * MIN, "muninn")
    crashed = replace(both, ntfy_cuts=both.ntfy_cuts[:1], crashes=(muninn_crashed,))
    assert late_pages(crashed, [OUTAGE], held, [0], bound) == 0
    # An outage never paged is a miss, counted elsewhere, not a late page.
    assert late_pages(SCENARIO, [OUTAGE], {}, [0], bound) == 0

    by_kind = latency_by_fault(cut, [OUTAGE], held, [0])
    assert by_kind == {"ntfy_cut": {"outages": 1, "p95": 720.0, "max": 720.0}}
    assert latency_by_fault(SCENARIO, [OUTAGE], on_time, [0])["none"]["max"] == 120.0


def test_a_down_decided_by_a_node_cut_off_then_overtaken_is_counted_apart() -> None:
    """Huginn, cut off, decides a DOWN nobody can hear; Muninn tells the
    target's later UP. The DOWN can no longer go out in order: it is not
    lost but overtaken. Had Huginn been able to reach ntfy meanwhile, it
    would be lost."""
    from dataclasses import replace

    from consensus.simulation.scenario import Isolation

    down = event(Notice.DOWN, 100 * MIN)
    up = event(Notice.UP, 102 * MIN)
    record = Record()
    record.decided = {down.id: (100 * MIN, down), up.id: (102 * MIN, up)}
    record.decided_by = {down.id: "huginn", up.id: "muninn"}
    record.posts = [Post(102 * MIN + 1, "muninn", up)]
    cut_off = replace(SCENARIO, isolations=(Isolation(99 * MIN, 110 * MIN, "huginn", True),))
    assert _Truth(cut_off, record).overtaken_unheard() == {down.id}
    assert _Truth(cut_off, record).lost() == 0
    back_early = replace(SCENARIO, isolations=(Isolation(99 * MIN, 101 * MIN, "huginn", True),))
    assert _Truth(back_early, record).overtaken_unheard() == set()
    assert _Truth(back_early, record).lost() == 1
