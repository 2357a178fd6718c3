"""Paths that are bad rather than cut: a slow and lossy link (netem), and
a path that drops one direction only (nftables). The pair still agrees,
and notifies each transition once."""

from __future__ import annotations

from tests.network.netns import has_netem, needs_netns, needs_nft
from tests.network.world import NODE_PORT, NODES, World

pytestmark = needs_netns


def one_outage(world: World) -> None:
    """The site goes down and comes back: exactly one DOWN and one UP."""
    world.target_file.write_text("down")
    world.wait(world.both("DOWN"), "both agree the site is DOWN", 90)
    world.wait(lambda: world.titles() == ["site is DOWN"], "one DOWN notification")
    world.target_file.write_text("up")
    world.wait(world.both("UP"), "both agree the site is UP", 90)
    world.wait(lambda: len(world.titles()) >= 2 and world.all_told(), "the UP, known as posted")
    assert world.titles() == ["site is DOWN", "site is UP"]


@needs_nft
def test_a_slow_lossy_link_to_huginn_still_gives_one_down_and_one_up(world: World) -> None:
    if has_netem():
        # Every packet to and from Huginn waits 250 ms (±50) and 5 % are lost.
        world.net.netem("huginn", ["delay", "250ms", "50ms", "loss", "5%"])
    else:
        # Without netem in the kernel: 5 % lost at random, and a thin link.
        world.net.lossy("huginn", 5)
        world.net.thin("huginn", "1mbit")
    world.checked(1)  # each node works on the degraded path before the outage
    one_outage(world)
    for name in NODES:
        assert (world.api(name, "/api/v1/nodes") or {}).get("voter") is True, name


@needs_nft
def test_a_one_way_drop_between_the_nodes_keeps_the_pair_agreeing(world: World) -> None:
    # Huginn's requests to Muninn are dropped; Muninn's to Huginn, and their
    # answers, still go through.
    world.net.drop("huginn", "muninn", port=NODE_PORT)
    # Past the peer timeout (35 s): does either side count the other lost?
    # Each node checks the site every 2 s: twenty checks each is 40 s at work.
    world.checked(20)
    views = {n: (world.api(n, "/api/v1/nodes") or {"peers": [{}]})["peers"][0] for n in NODES}
    assert views["muninn"]["voter"] is True, "muninn hears huginn through its own pulls"
    assert views["huginn"]["voter"] is True, "huginn hears muninn through muninn's pushes"
    one_outage(world)
    world.net.undrop()
