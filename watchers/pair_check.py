"""`ravens status --check`: whether the pair can do its job, from one
node's /api/v1/nodes: notify (ntfy reached, nothing refused), sync (each
peer heard and taking our signature), and watch (no node cut off from its
own network). Each problem in a line a sysop can act on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def pair_problems(nodes: Mapping[str, Any]) -> list[str]:
    """What keeps the pair from watching, agreeing or notifying; [] if nothing."""
    me = str(nodes.get("node", "this node"))
    peers = [p for p in nodes.get("peers", []) if isinstance(p, Mapping)]
    found = []
    refused = nodes.get("outbox_refused") or []
    if refused:
        first = refused[0].get("error") if isinstance(refused[0], Mapping) else None
        found.append(f"{me}: ntfy refused {len(refused)} notification(s) ({first}): fix [ntfy]")
    hooks_refused = (nodes.get("webhooks") or {}).get("refused") or []
    for hook in sorted({str(row.get("hook")) for row in hooks_refused}):
        mine = [row for row in hooks_refused if row.get("hook") == hook]
        found.append(
            f"{me}: webhook {hook} refused {len(mine)} delivery(ies) ({mine[0].get('error')}): "
            "fix [[webhooks]] or the receiver"
        )
    if nodes.get("canaries_ok") is False:
        found.append(f"{me}: cut off from its own network (its canaries fail)")
    for peer in peers:
        name = peer.get("name")
        if peer.get("outbox_refused"):
            found.append(
                f"{name}: ntfy refused {peer['outbox_refused']} notification(s): fix [ntfy]"
            )
        if peer.get("refuses_us"):
            found.append(
                f"{name}: refuses our sync ({peer['refuses_us']}): the sync secrets differ"
            )
        elif peer.get("state") == "PEER_LOST":
            found.append(f"{name}: not heard from: the pair cannot sync, each decides alone")
        elif peer.get("state") == "NODE_ISOLATED" or peer.get("canaries_ok") is False:
            found.append(f"{name}: cut off from its own network (its canaries fail)")
    reaches = [nodes.get("ntfy_ok"), *(p.get("ntfy_ok") for p in peers)]
    if all(ok is False for ok in reaches):
        found.append("no node reaches ntfy: notifications wait in the outboxes")
    return found
