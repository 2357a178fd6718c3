"""The fault table, on real separate networks: each row a scenario with real
processes in their own network namespaces and faults made by real means."""

from __future__ import annotations

import os
import random
import time

import pytest

from tests.network.netns import address, faketime_library, needs_netns, shifted_clock
from tests.network.world import NODES, NTFY_PORT, TOPIC, World

pytestmark = needs_netns


def test_a_target_down_then_back_gives_one_down_and_one_up(world: World) -> None:
    world.target_file.write_text("down")
    world.wait(world.both("DOWN"), "both agree the site is DOWN")
    world.wait(lambda: world.titles() == ["site is DOWN"], "one DOWN notification")
    world.checked(4)  # the outage lasts: each node checks on, nothing more is sent
    assert world.titles() == ["site is DOWN"]
    world.target_file.write_text("up")
    world.wait(world.both("UP"), "both agree the site is UP again")
    world.wait(lambda: len(world.titles()) == 2 and world.all_told(), "the UP, known as posted")
    assert world.titles() == ["site is DOWN", "site is UP"]


def test_a_target_cut_off_from_huginn_only_is_partial_and_pages_nobody(world: World) -> None:
    world.net.cut("huginn", "targets")
    world.wait(world.both("PARTIAL"), "both agree the site is PARTIAL")
    world.checked(3)
    assert world.titles() == []
    views = world.api("muninn")["targets"][0]["views"]
    assert views["huginn"]["verdict"] == "DOWN" and views["muninn"]["verdict"] == "UP"
    world.net.mend("huginn", "targets")
    world.wait(world.both("UP"), "both agree the site is UP once the path is back")
    assert world.titles() == []


def test_huginns_own_network_down_it_abstains_and_muninn_notes_it_once(world: World) -> None:
    # Huginn reaches neither the targets nor the canaries; its peer still.
    world.net.cut("huginn", "targets")
    world.net.cut("huginn", "world")
    world.wait(lambda: (world.api("muninn", "/api/v1/nodes") or {"peers": [{}]})["peers"][0]
               .get("canaries_ok") is False, "muninn learns huginn's canaries fail")  # fmt: skip
    world.wait(lambda: world.titles() == ["huginn lost its own network"],
               "one NODE_ISOLATED note", 120)  # fmt: skip
    assert world.state("muninn") == "UP" and world.state("huginn") == "UP"
    world.net.mend("huginn", "targets")
    world.net.mend("huginn", "world")
    world.wait(lambda: (world.api("huginn", "/api/v1/nodes") or {}).get("voter") is True,
               "huginn votes again")  # fmt: skip
    world.checked(2)
    assert [t for t in world.titles() if "site" in t] == [], "no target alarms"


def test_huginns_uplink_cut_pages_nobody_and_all_agree_after(world: World) -> None:
    world.net.link("huginn", up=False)
    world.wait(lambda: (world.api("muninn", "/api/v1/nodes") or {"peers": [{}]})["peers"][0]
               .get("state") == "PEER_LOST", "muninn counts huginn as lost", 90)  # fmt: skip
    world.target_file.write_text("up")
    world.checked(3, ("muninn",))
    assert [t for t in world.titles() if "site" in t] == []
    world.net.link("huginn", up=True)
    world.wait(lambda: (world.api("huginn", "/api/v1/nodes") or {}).get("voter") is True
               and (world.api("muninn", "/api/v1/nodes") or {}).get("voter") is True,
               "both vote again", 90)  # fmt: skip
    world.wait(world.both("UP"), "both agree the site is UP")
    assert [t for t in world.titles() if "site" in t] == []


def test_a_partition_with_an_outage_inside_heals_to_equal_logs(world: World) -> None:
    world.net.cut("huginn", "muninn")
    world.wait(lambda: all((world.api(n, "/api/v1/nodes") or {"peers": [{}]})["peers"][0]
                           .get("voter") is False for n in NODES),
               "each node decides alone", 90)  # fmt: skip
    world.target_file.write_text("down")
    world.wait(world.both("DOWN"), "each side calls the site DOWN alone", 60)
    modes = {t["mode"] for n in NODES for t in world.api(n)["targets"]}
    assert modes == {"single_vantage"}
    world.target_file.write_text("up")
    world.wait(world.both("UP"), "each side sees it back", 60)
    world.net.mend("huginn", "muninn")
    world.wait(world.logs_equal, "equal logs after the heal", 60)
    titles = world.titles()
    assert 1 <= titles.count("site is DOWN") <= 2 and 1 <= titles.count("site is UP") <= 2
    for name in NODES:
        checks = count_checks(world, name)
        assert checks > 20, f"{name} kept its own history: {checks} checks"


def count_checks(world: World, name: str) -> int:
    return int(world.query(name, "SELECT count(*) FROM checks")[0][0])


def test_ntfy_unreachable_then_429_delivers_both_afterwards_in_order(world: World) -> None:
    for name in NODES:
        world.net.cut(name, "ntfy")
    world.target_file.write_text("down")
    world.wait(world.both("DOWN"), "both agree the site is DOWN")
    world.target_file.write_text("up")
    world.wait(world.both("UP"), "both agree the site is UP")
    # The API shows a move as soon as the core makes it; its outbox row
    # lands with the step's commit, a moment later.
    world.wait(lambda: sum((world.api(n, "/api/v1/nodes") or {}).get("outbox_depth", 0)
                           for n in NODES) >= 2, "the two events wait in the outbox")  # fmt: skip
    # ntfy is back but refuses every post with 429 for a while.
    world.ntfy_faults.write_text("429")
    for name in NODES:
        world.net.mend(name, "ntfy")
    world.wait(lambda: world.refused_posts() >= 3, "posts tried and refused with 429")
    assert world.titles() == [], "nothing gets through a 429"
    world.ntfy_faults.write_text("")
    world.wait(lambda: len(world.titles()) >= 2 and world.all_told(),
               "both notifications after the 429s end, known as posted", 120)  # fmt: skip
    assert world.titles() == ["site is DOWN", "site is UP"]


ROUNDS = int(os.environ.get("RAVENS_KILL_ROUNDS", "4"))
ROUND_S = 20.0


def test_kill_9_around_transitions_never_loses_or_doubles_from_one_node(world: World) -> None:
    chance = random.Random(11)
    for round_ in range(ROUNDS):
        began = time.monotonic()
        state = "down" if round_ % 2 == 0 else "up"
        world.target_file.write_text(state)
        victim = chance.choice(NODES)
        time.sleep(chance.uniform(0.0, 6.0))  # before, during or after the decision
        world.kill(victim)
        time.sleep(chance.uniform(0.0, 2.0))
        world.start(victim)
        assert integrity(world, victim) == "ok"
        world.wait(world.both(state.upper()), f"round {round_}: both agree {state}", 90)
        # Rounds closer than this would be flapping, rightly announced as such.
        time.sleep(max(0.0, ROUND_S - (time.monotonic() - began)))
    world.wait(lambda: len(world.titles()) >= ROUNDS and world.all_told(),
               "every transition notified, known as posted", 180)  # fmt: skip
    messages = world.get(f"http://{address('ntfy')}:{NTFY_PORT}/{TOPIC}/json?poll=1")
    by_sequence: dict[str, int] = {}
    for message in messages:
        by_sequence[message["sequence_id"]] = by_sequence.get(message["sequence_id"], 0) + 1
    assert len(by_sequence) == ROUNDS, "one event per transition, none lost"
    posted = world.publishers()
    assert sorted(posted) == sorted(by_sequence), posted
    for sequence, nodes in posted.items():
        # A copy, if any, only from the other node: never two from one.
        assert len(nodes) == len(set(nodes)) and set(nodes) <= set(NODES), (sequence, nodes)
    titles = [m["title"] for m in messages]
    expected = ["site is DOWN" if r % 2 == 0 else "site is UP" for r in range(ROUNDS)]
    assert [t for i, t in enumerate(titles) if t not in titles[:i][-1:]] == expected


def integrity(world: World, name: str) -> str:
    return str(world.query(name, "PRAGMA integrity_check")[0][0])


NO_FAKETIME = "libfaketime is not installed (Debian: apt-get install libfaketime)"


@pytest.mark.skipif(faketime_library() is None, reason=NO_FAKETIME)
@pytest.mark.parametrize("offset_s", [300, -300])
def test_muninns_clock_five_minutes_off_agreement_holds_and_skew_is_shown(
    world: World, offset_s: int
) -> None:
    world.kill("muninn")
    world.start("muninn", shifted_clock(offset_s))
    world.wait(lambda: abs((world.api("huginn", "/api/v1/nodes") or {"peers": [{}]})["peers"][0]
                           .get("clock_offset_ms") or 0) > 250_000,
               "huginn shows muninn's clock offset", 60)  # fmt: skip
    world.target_file.write_text("down")
    world.wait(world.both("DOWN"), "both agree the site is DOWN")
    world.target_file.write_text("up")
    world.wait(world.both("UP"), "both agree the site is UP again")

    def site() -> list[str]:
        return [t for t in world.titles() if t.startswith("site ")]

    world.wait(
        lambda: len(site()) == 2 and world.all_told(), "one DOWN and one UP, known as posted"
    )
    assert site() == ["site is DOWN", "site is UP"]

    # A restart five minutes behind its last stamp is a clock jump, told
    # once; a restart ahead of it is only skew (shown below), no note.
    def clock() -> list[str]:
        return [t for t in world.titles() if not t.startswith("site ")]

    expected = ["muninn started again with its clock behind"] if offset_s < 0 else []
    if expected:
        # Decided on muninn's own tick after its restart, and posted by
        # whichever node is its sender: it may come after the site's pair.
        world.wait(lambda: clock() == expected, "the note of the clock behind", 60)
    assert clock() == expected, world.titles()
    offsets = [(world.api(n, "/api/v1/nodes") or {"peers": [{}]})["peers"][0]
               .get("clock_offset_ms") for n in NODES]  # fmt: skip
    assert offsets[0] * offsets[1] < 0 and all(abs(o) > 250_000 for o in offsets), offsets
    for name in NODES:
        assert "clock_skew" in (world.root / f"{name}.log").read_text(), name
