"""The agreed history derived from moves: laws (hypothesis) and known cases."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from consensus.agreement import AgreedState, Mode
from consensus.history import AgreedMove, Stretch, derive, group_incidents, in_order
from consensus.hlc import Hlc

S = AgreedState
STATES = [S.UP, S.DOWN, S.PARTIAL, S.FLAPPING, S.MAINTENANCE]


def move(state: AgreedState, decided_ms: int, node: str = "huginn", logical: int = 0,
         down: tuple[int, ...] = (), up: tuple[int, ...] = (), flap: tuple[int, ...] = (),
         event: str | None = None) -> AgreedMove:  # fmt: skip
    return AgreedMove("web", state, Mode.QUORUM, Hlc(decided_ms, logical, node), down, up, flap,
                      event)  # fmt: skip


@st.composite
def moves(draw: st.DrawFn) -> list[AgreedMove]:
    count = draw(st.integers(min_value=0, max_value=12))
    found: dict[Hlc, AgreedMove] = {}
    for _ in range(count):
        decided = draw(st.integers(min_value=1, max_value=10_000))
        node = draw(st.sampled_from(["huginn", "muninn"]))
        hlc = Hlc(decided, draw(st.integers(0, 2)), node)
        times = st.lists(st.integers(min_value=0, max_value=decided), max_size=2)
        down, up, flap = (tuple(draw(times)) for _ in range(3))
        # Each voter's last check before its streak, some time before it.
        gaps = st.integers(min_value=0, max_value=2_000)
        down_after = tuple(t - draw(gaps) for t in down)
        up_after = tuple(t - draw(gaps) for t in up)
        found[hlc] = AgreedMove("web", draw(st.sampled_from(STATES)), Mode.QUORUM, hlc,
                                down, up, flap,
                                draw(st.none() | st.sampled_from(["e1", "e2"])),
                                down_after_ms=down_after, up_after_ms=up_after)  # fmt: skip
    return list(found.values())


@given(moves(), st.randoms())
def test_history_depends_on_the_set_of_moves_only(found: list[AgreedMove], rnd: random.Random):
    shuffled = list(found)
    rnd.shuffle(shuffled)
    assert derive(shuffled) == derive(found)


@given(moves())
def test_stretches_tile_time_without_gaps_or_repeats(found: list[AgreedMove]):
    history = derive(found)
    for before, after in itertools.pairwise(history):
        assert before.end_ms == after.start_ms
        assert before.start_ms < after.start_ms, "a stretch of no length was kept"
        assert before.state != after.state, "two stretches of one state in a row"
    if history:
        assert history[-1].end_ms is None
        latest = max(m.decided.wall_ms for m in found)
        assert history[-1].start_ms <= latest, "a stretch starts after every decision"


@given(moves())
def test_incidents_cover_every_down_second(found: list[AgreedMove]):
    history = derive(found)
    now = 20_000
    down = [s for s in history if s.state == "DOWN"]
    covered = group_incidents(history, now)
    for stretch in down:
        assert any(stretch in i.stretches for i in covered)
    for incident in covered:
        assert incident.stretches[0].start_ms == incident.start_ms
        assert incident.state in {s.state for s in incident.stretches}


def test_an_outage_is_down_from_the_first_failure_to_the_first_answer():
    # Truth: down from 100 s to 160 s. Huginn's failing streak began at
    # 100.2 s, Muninn's at 102 s; Huginn answered again at 160.5 s.
    found = [
        move(S.UP, 1_000, up=(500,)),
        move(S.PARTIAL, 100_300, down=(100_200,), up=(500,)),
        move(S.DOWN, 110_000, "muninn", down=(100_200, 102_000), event="down1"),
        move(S.PARTIAL, 161_000, down=(102_000,), up=(160_500,)),
        move(S.UP, 170_000, "muninn", up=(160_500, 163_000), event="up1"),
    ]
    assert derive(found) == [
        Stretch("web", "UP", "quorum", 500, 100_200, None),
        Stretch("web", "DOWN", "quorum", 100_200, 160_500, "down1"),
        Stretch("web", "UP", "quorum", 160_500, None, "up1"),
    ]


def test_both_nodes_making_the_same_moves_tell_one_history():
    huginn = [move(S.UP, 1_000, up=(900,)), move(S.DOWN, 50_000, down=(40_000, 41_000))]
    muninn = [move(S.UP, 1_200, "muninn", up=(900,)),
              move(S.DOWN, 50_100, "muninn", down=(40_000, 41_000))]  # fmt: skip
    assert (
        derive(huginn + muninn)
        == derive(huginn)
        == [
            Stretch("web", "UP", "quorum", 900, 40_000),
            Stretch("web", "DOWN", "quorum", 40_000, None),
        ]
    )


def test_a_lasting_partial_keeps_its_seconds():
    # Muninn alone sees the target fail from 100 s until 700 s.
    found = [
        move(S.UP, 1_000, up=(0,)),
        move(S.PARTIAL, 101_000, down=(100_000,), up=(0,)),
        move(S.UP, 701_000, up=(0, 700_000)),
    ]
    history = derive(found)
    assert [(s.state, s.start_ms, s.end_ms) for s in history] == [
        ("UP", 0, 100_000), ("PARTIAL", 100_000, 700_000), ("UP", 700_000, None)
    ]  # fmt: skip
    assert [i.state for i in group_incidents(history, 800_000)] == ["PARTIAL"]


def test_a_moment_of_disagreement_is_not_an_incident():
    found = [
        move(S.UP, 1_000, up=(0,)),
        move(S.PARTIAL, 101_000, down=(100_000,), up=(0,)),
        move(S.UP, 111_000, up=(0, 110_000)),
    ]
    history = derive(found)
    assert "PARTIAL" in {s.state for s in history}  # the seconds stay in the record
    assert group_incidents(history, 200_000) == []


def test_an_outage_ends_when_the_first_voter_sees_it_answer():
    # One side answers at 199 s, the other only at 390 s: the outage ended
    # at 199 s (visitors were served again); the tail is the pair agreeing.
    found = [
        move(S.UP, 1_000, up=(0,)),
        move(S.DOWN, 101_000, down=(100_000, 100_500), event="d"),
        move(S.PARTIAL, 200_000, down=(100_500,), up=(199_000,)),
        move(S.UP, 400_000, up=(199_000, 390_000), event="u"),
    ]
    (incident,) = group_incidents(derive(found), 500_000)
    assert (incident.state, incident.start_ms, incident.end_ms, incident.event) == (
        "DOWN", 100_000, 199_000, "d"
    )  # fmt: skip


def test_a_voter_leaving_ends_a_partial_when_it_was_decided():
    # Muninn saw it fail since 100 s, then stopped voting at 300 s.
    found = [
        move(S.UP, 1_000, up=(0,)),
        move(S.PARTIAL, 101_000, down=(100_000,), up=(0,)),
        move(S.UP, 300_000, up=(0,)),
    ]
    assert [(s.state, s.start_ms) for s in derive(found)] == [
        ("UP", 0), ("PARTIAL", 100_000), ("UP", 300_000)
    ]  # fmt: skip


def test_an_outage_starts_midway_between_the_last_answer_and_the_first_failure():
    # Truth: down from 40 s to 160 s. Huginn checks at 0, 60, 120, 180 s;
    # Muninn at 30, 90, 150, 210 s. Huginn last saw it answer at 0 s and
    # first saw it fail at 60 s; Muninn still saw it answer at 30 s. So it
    # went down between 30 and 60 s: the history says 45 s. Back: Muninn
    # saw it fail at 150 s, Huginn answer at 180 s: 165 s.
    found = [
        AgreedMove("web", S.UP, Mode.QUORUM, Hlc(1_000, 0, "huginn"), up_ms=(0,)),
        AgreedMove("web", S.DOWN, Mode.QUORUM, Hlc(100_000, 0, "muninn"),
                   down_ms=(60_000, 90_000), down_after_ms=(0, 30_000)),
        AgreedMove("web", S.UP, Mode.QUORUM, Hlc(215_000, 0, "huginn"),
                   up_ms=(180_000, 210_000), up_after_ms=(120_000, 150_000)),
    ]  # fmt: skip
    down = [s for s in derive(found) if s.state == "DOWN"]
    assert [(s.start_ms, s.end_ms) for s in down] == [(45_000, 165_000)]


def test_a_down_begins_after_every_voter_last_saw_it_answer():
    # Huginn's path failed from 60 s, but Muninn still saw the target
    # answer at 700 s and first saw it fail at 760 s: down for every voter
    # only from between those two, not from Huginn's first failure.
    found = [
        AgreedMove("web", S.UP, Mode.QUORUM, Hlc(1_000, 0, "huginn"), up_ms=(0,)),
        AgreedMove("web", S.PARTIAL, Mode.QUORUM, Hlc(70_000, 0, "huginn"),
                   down_ms=(60_000,), down_after_ms=(0,)),
        AgreedMove("web", S.DOWN, Mode.QUORUM, Hlc(800_000, 0, "muninn"),
                   down_ms=(60_000, 760_000), down_after_ms=(0, 700_000)),
    ]  # fmt: skip
    assert [(s.state, s.start_ms) for s in derive(found)] == [
        ("UP", 0), ("PARTIAL", 30_000), ("DOWN", 730_000)
    ]  # fmt: skip


def test_a_voter_whose_check_before_is_unknown_bounds_nothing():
    # Huginn restarted: its first check failed at 500 s, nothing known
    # before it. Muninn's bracket (40, 100] still says when.
    found = [
        AgreedMove("web", S.UP, Mode.QUORUM, Hlc(1_000, 0, "huginn"), up_ms=(0,)),
        AgreedMove("web", S.DOWN, Mode.QUORUM, Hlc(600_000, 0, "muninn"),
                   down_ms=(100_000, 500_000), down_after_ms=(40_000, 500_000)),
    ]  # fmt: skip
    assert derive(found)[-1].start_ms == 70_000


def test_a_move_without_the_checks_before_starts_at_the_first_failure():
    found = [
        AgreedMove("web", S.UP, Mode.QUORUM, Hlc(1_000, 0, "huginn"), up_ms=(0,)),
        AgreedMove("web", S.DOWN, Mode.QUORUM, Hlc(100_000, 0, "muninn"), down_ms=(60_000,)),
    ]  # fmt: skip
    assert derive(found)[-1].start_ms == 60_000


def test_a_voter_leaving_a_disagreement_does_not_rewrite_it():
    # Muninn alone saw it fail from 60 s (its own path); Huginn saw it
    # answer. Huginn stops at 900 s: Muninn alone calls it DOWN. The DOWN
    # begins then, not with the streak the two disagreed about.
    found = [
        AgreedMove("web", S.UP, Mode.QUORUM, Hlc(1_000, 0, "huginn"), up_ms=(0,)),
        AgreedMove("web", S.PARTIAL, Mode.QUORUM, Hlc(70_000, 0, "muninn"),
                   down_ms=(60_000,), down_after_ms=(0,)),
        AgreedMove("web", S.DOWN, Mode.SINGLE_VANTAGE, Hlc(940_000, 0, "muninn"),
                   down_ms=(60_000,), down_after_ms=(0,), left_ms=(900_000,)),
    ]  # fmt: skip
    assert [(s.state, s.start_ms) for s in derive(found)] == [
        ("UP", 0), ("PARTIAL", 30_000), ("DOWN", 940_000)
    ]  # fmt: skip
    # A move written before it said when its voters left reads the same.
    legacy = [*found[:2], replace(found[2], left_ms=None)]
    assert derive(legacy) == derive(found)


def test_a_voter_stopped_before_the_trouble_contradicts_nothing():
    # Huginn was last heard at 50 s, before the target failed (between
    # Muninn's answer at 55 s and its failure at 60 s): the PARTIAL was only
    # Huginn's old view, and the DOWN Muninn decides alone began with its
    # evidence, even though the target answered again just after.
    found = [
        AgreedMove("web", S.UP, Mode.QUORUM, Hlc(1_000, 0, "huginn"), up_ms=(0,)),
        AgreedMove("web", S.PARTIAL, Mode.QUORUM, Hlc(61_000, 0, "muninn"),
                   down_ms=(60_000,), down_after_ms=(55_000,)),
        AgreedMove("web", S.DOWN, Mode.SINGLE_VANTAGE, Hlc(80_000, 0, "muninn"),
                   down_ms=(60_000,), down_after_ms=(55_000,), left_ms=(50_000,)),
        AgreedMove("web", S.UP, Mode.SINGLE_VANTAGE, Hlc(82_000, 0, "muninn"),
                   up_ms=(81_000,), up_after_ms=(79_000,), left_ms=(50_000,)),
    ]  # fmt: skip
    assert [(s.state, s.start_ms, s.end_ms) for s in derive(found)] == [
        ("UP", 0, 57_500), ("DOWN", 57_500, 80_000), ("UP", 80_000, None)
    ]  # fmt: skip


def test_a_voter_that_left_before_the_first_failure_narrows_when_it_began():
    # Muninn answered at 0 s and failed from 60 s; Huginn's checks stopped
    # after its last answer at 40 s (a stalled scheduler), then Muninn
    # alone calls it DOWN at 300 s. The target failed between 40 s and
    # 60 s: the DOWN begins in the middle, not when it was decided.
    found = [
        AgreedMove("web", S.UP, Mode.QUORUM, Hlc(1_000, 0, "huginn"), up_ms=(0,)),
        AgreedMove("web", S.PARTIAL, Mode.QUORUM, Hlc(70_000, 0, "muninn"),
                   down_ms=(60_000,), down_after_ms=(0,)),
        AgreedMove("web", S.DOWN, Mode.SINGLE_VANTAGE, Hlc(300_000, 0, "muninn"),
                   down_ms=(60_000,), down_after_ms=(0,), left_ms=(40_000,)),
    ]  # fmt: skip
    assert [(s.state, s.start_ms) for s in derive(found)] == [
        ("UP", 0), ("PARTIAL", 30_000), ("DOWN", 50_000)
    ]  # fmt: skip
    # Its last answer after Muninn's first failure contradicts the streak.
    late = [*found[:2], replace(found[2], left_ms=(65_000,))]
    assert derive(late)[-1].start_ms == 300_000


def test_moves_made_apart_are_told_in_the_order_they_were_decided():
    # A partition: each node decides alone. Muninn's clock runs five
    # minutes ahead, so its hlcs sort after everything Huginn decided; its
    # corrected decision times say when. One outage, 100 s to 200 s.
    up = Hlc(1_000, 0, "huginn")
    m_down, h_down = Hlc(400_000, 0, "muninn"), Hlc(110_000, 0, "huginn")
    found = [
        AgreedMove("web", S.UP, Mode.QUORUM, up, up_ms=(0,)),
        AgreedMove("web", S.DOWN, Mode.SINGLE_VANTAGE, m_down, down_ms=(100_000,),
                   at_ms=100_000, seen=up),
        AgreedMove("web", S.DOWN, Mode.SINGLE_VANTAGE, h_down, down_ms=(110_000,), seen=up),
        AgreedMove("web", S.UP, Mode.SINGLE_VANTAGE, Hlc(200_000, 0, "huginn"),
                   up_ms=(200_000,), seen=h_down),
        AgreedMove("web", S.UP, Mode.SINGLE_VANTAGE, Hlc(510_000, 0, "muninn"),
                   up_ms=(210_000,), at_ms=210_000, seen=m_down),
    ]  # fmt: skip
    assert [(s.state, s.start_ms) for s in derive(found)] == [
        ("UP", 0), ("DOWN", 100_000), ("UP", 200_000)
    ]  # fmt: skip


def test_a_move_comes_after_the_move_its_maker_had_seen_whatever_the_clocks():
    # Muninn's DOWN is stamped 300 s ahead and nothing corrected it;
    # Huginn saw it before deciding UP: the UP follows it.
    up = Hlc(1_000, 0, "huginn")
    down = Hlc(400_000, 0, "muninn")
    found = [
        AgreedMove("web", S.UP, Mode.QUORUM, up, up_ms=(0,)),
        AgreedMove("web", S.DOWN, Mode.QUORUM, down, down_ms=(390_000,), seen=up),
        AgreedMove("web", S.UP, Mode.QUORUM, Hlc(400_000, 1, "huginn"), up_ms=(150_000,),
                   at_ms=160_000, seen=down),
    ]  # fmt: skip
    assert [m.state for m in in_order(found)] == [S.UP, S.DOWN, S.UP]


def test_a_move_keeps_what_its_maker_had_seen_through_the_log():
    seen = Hlc(1_000, 0, "huginn")
    made = AgreedMove("web", S.DOWN, Mode.QUORUM, Hlc(2_000, 0, "muninn"), down_ms=(1_500,),
                      seen=seen)  # fmt: skip
    back = AgreedMove.from_value("web", made.decided, made.to_value())
    assert back.seen == seen and not back.legacy
    old = {k: v for k, v in made.to_value().items() if k != "seen"}  # type: ignore[union-attr]
    assert AgreedMove.from_value("web", made.decided, old).legacy


@given(moves(), st.lists(st.integers(0, 11), max_size=12), st.randoms())
def test_every_move_comes_after_the_move_its_maker_had_seen(
    found: list[AgreedMove], picks: list[int], rnd: random.Random
):
    by_hlc = sorted(found, key=lambda m: m.decided)
    linked = []
    for i, move_ in enumerate(by_hlc):
        pick = picks[i] if i < len(picks) else 0
        seen = by_hlc[pick].decided if pick < i else None
        at_ms = rnd.randint(0, 10_000)
        linked.append(AgreedMove(move_.target, move_.state, move_.mode, move_.decided,
                                 move_.down_ms, at_ms=at_ms, seen=seen))  # fmt: skip
    ordered = in_order(linked)
    place = {m.decided: i for i, m in enumerate(ordered)}
    for move_ in linked:
        if move_.seen is not None:
            assert place[move_.seen] < place[move_.decided]
    shuffled = list(linked)
    rnd.shuffle(shuffled)
    assert in_order(shuffled) == ordered


def test_a_partial_only_while_the_checks_took_turns_is_no_stretch():
    # Truth: down for both from 40 s to 160 s. Huginn checks at 0, 60, 120,
    # 180 s; Muninn at 30, 90, 150, 210 s. Huginn saw it fail first (PARTIAL
    # at 60 s), but Muninn's last answer (30 s) came before that: the
    # evidence cannot tell the two apart, so it was DOWN from 45 s, and UP
    # from 165 s, with no PARTIAL on either side.
    up = Hlc(1_000, 0, "huginn")
    partial_in = Hlc(61_000, 0, "huginn")
    down = Hlc(91_000, 0, "muninn")
    partial_out = Hlc(181_000, 0, "huginn")
    found = [
        AgreedMove("web", S.UP, Mode.QUORUM, up, up_ms=(0,)),
        AgreedMove("web", S.PARTIAL, Mode.QUORUM, partial_in, down_ms=(60_000,),
                   down_after_ms=(0,), seen=up),
        AgreedMove("web", S.DOWN, Mode.QUORUM, down, down_ms=(60_000, 90_000),
                   down_after_ms=(0, 30_000), seen=partial_in),
        AgreedMove("web", S.PARTIAL, Mode.QUORUM, partial_out, up_ms=(180_000,),
                   up_after_ms=(120_000,), seen=down),
        AgreedMove("web", S.UP, Mode.QUORUM, Hlc(211_000, 0, "muninn"),
                   up_ms=(180_000, 210_000), up_after_ms=(120_000, 150_000), seen=partial_out),
    ]  # fmt: skip
    assert [(s.state, s.start_ms) for s in derive(found)] == [
        ("UP", 0), ("DOWN", 45_000), ("UP", 165_000)
    ]  # fmt: skip


def test_a_partial_that_one_voter_saw_answer_through_stays():
    # Huginn saw it fail at 60 s, Muninn still saw it answer at 90 s: a real
    # disagreement, kept; the DOWN begins after Muninn's last answer.
    up = Hlc(1_000, 0, "huginn")
    partial = Hlc(61_000, 0, "huginn")
    found = [
        AgreedMove("web", S.UP, Mode.QUORUM, up, up_ms=(0,)),
        AgreedMove("web", S.PARTIAL, Mode.QUORUM, partial, down_ms=(60_000,),
                   down_after_ms=(0,), seen=up),
        AgreedMove("web", S.DOWN, Mode.QUORUM, Hlc(151_000, 0, "muninn"),
                   down_ms=(60_000, 150_000), down_after_ms=(0, 90_000), seen=partial),
    ]  # fmt: skip
    assert [(s.state, s.start_ms) for s in derive(found)] == [
        ("UP", 0), ("PARTIAL", 30_000), ("DOWN", 120_000)
    ]  # fmt: skip


def test_a_partial_decided_alone_without_hearing_the_down_is_no_recovery():
    # A partition: Huginn confirmed DOWN alone; Muninn, not having heard
    # it, saw the same failure but had not confirmed it yet (PARTIAL alone).
    up = Hlc(1_000, 0, "huginn")
    h_down = Hlc(100_000, 0, "huginn")
    found = [
        AgreedMove("web", S.UP, Mode.QUORUM, up, up_ms=(0,)),
        AgreedMove("web", S.DOWN, Mode.SINGLE_VANTAGE, h_down, down_ms=(60_000,),
                   down_after_ms=(0,), seen=up),
        AgreedMove("web", S.PARTIAL, Mode.SINGLE_VANTAGE, Hlc(110_000, 0, "muninn"),
                   down_ms=(90_000,), down_after_ms=(30_000,), seen=up),
        AgreedMove("web", S.UP, Mode.QUORUM, Hlc(400_000, 0, "huginn"), up_ms=(380_000,),
                   up_after_ms=(320_000,), seen=h_down),
    ]  # fmt: skip
    assert [s.state for s in derive(found)] == ["UP", "DOWN", "UP"]
