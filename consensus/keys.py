"""Key names of the replicated log, in one place.

Single-writer keys never conflict: ``obs/<node>/<target>``, ``health/<node>``,
``audit/<node>/<hlc>``. Multi-writer keys resolve by hlc:
``target/<id>``, ``state/<target>``, ``peer/<node>``, ``event/<id>``,
``claim/<id>``, ``sent/<id>``, ``hookclaim/<hook>/<id>`` and
``hooksent/<hook>/<id>`` (the same two for one webhook), ``push/<target>``
(the last heartbeat, whichever node received it), and what the admin API writes: ``target/<id>``,
``maint/<id>``, ``silence/<id>``, ``ack/<event id>``, and its audit records.
Agreed moves are single-writer too: ``move/<target>/<hlc>``, where the hlc
names the node that made the move.
"""

from __future__ import annotations

OBS = "obs/"
HEALTH = "health/"
STATE = "state/"
PEER = "peer/"
EVENT = "event/"
CLAIM = "claim/"
SENT = "sent/"
# The claim and the sent mark of one event's delivery to one webhook.
HOOK_CLAIM = "hookclaim/"
HOOK_SENT = "hooksent/"
TARGET = "target/"
PUSH = "push/"
MOVE = "move/"
# Written by the admin API on either node; replicated like everything else.
MAINTENANCE = "maint/"
SILENCE = "silence/"
ACK = "ack/"
AUDIT = "audit/"
ADMIN_PREFIXES = (TARGET, MAINTENANCE, SILENCE, ACK, AUDIT)
NODE_SUBJECT = "node:"
# The subject of a weekly report's event: the topic it goes to.
REPORT_SUBJECT = "report:"

# Every prefix a node writes, once each (target/ is an admin prefix): an
# entry under any other is refused.
KNOWN_PREFIXES = (
    *(OBS, HEALTH, STATE, PEER, EVENT, CLAIM, SENT, HOOK_CLAIM, HOOK_SENT, PUSH, MOVE),
    *ADMIN_PREFIXES,
)

# Entries that are pushed to peers at once instead of waiting for the next sync.
URGENT_PREFIXES = (
    *(STATE, MOVE, EVENT, CLAIM, SENT, HOOK_CLAIM, HOOK_SENT, PEER, PUSH),
    *ADMIN_PREFIXES,
)


def obs(node: str, target: str) -> str:
    return f"{OBS}{node}/{target}"


def health(node: str) -> str:
    return f"{HEALTH}{node}"


def state(target: str) -> str:
    return f"{STATE}{target}"


def peer(node: str) -> str:
    return f"{PEER}{node}"


def event(event_id: str) -> str:
    return f"{EVENT}{event_id}"


def claim(event_id: str) -> str:
    return f"{CLAIM}{event_id}"


def sent(event_id: str) -> str:
    return f"{SENT}{event_id}"


def hook_delivery(hook: str, event_id: str) -> str:
    """One event's delivery to one webhook, as claims name it: ``<hook>/<id>``."""
    return f"{hook}/{event_id}"


def split_hook_delivery(delivery: str) -> tuple[str, str] | None:
    """``<hook>/<event id>`` -> (hook, event id); None for a plain event id."""
    hook, slash, event_id = delivery.partition("/")
    return (hook, event_id) if slash and hook and event_id else None


def hook_claim(hook: str, event_id: str) -> str:
    return f"{HOOK_CLAIM}{hook_delivery(hook, event_id)}"


def hook_sent(hook: str, event_id: str) -> str:
    return f"{HOOK_SENT}{hook_delivery(hook, event_id)}"


def push(target: str) -> str:
    return f"{PUSH}{target}"


def move(target: str, hlc_text: str) -> str:
    return f"{MOVE}{target}/{hlc_text}"


def split_move(key: str) -> tuple[str, str] | None:
    """``move/<target>/<hlc>`` -> (target, hlc text)."""
    if not key.startswith(MOVE):
        return None
    target, _, hlc_text = key[len(MOVE) :].rpartition("/")
    return (target, hlc_text) if target and hlc_text else None


def ack(event_id: str) -> str:
    return f"{ACK}{event_id}"


def node_subject(node: str) -> str:
    return f"{NODE_SUBJECT}{node}"


def subject_node(subject: str) -> str | None:
    """The node an event's subject names, when the event is about a node
    (its network, its clock) rather than a target."""
    return subject.removeprefix(NODE_SUBJECT) if subject.startswith(NODE_SUBJECT) else None


def report_subject(topic: str) -> str:
    return f"{REPORT_SUBJECT}{topic}"


def subject_report(subject: str) -> str | None:
    """The topic a weekly report's subject names; None for anything else."""
    return subject.removeprefix(REPORT_SUBJECT) if subject.startswith(REPORT_SUBJECT) else None


def owner(key: str) -> str | None:
    """The one node that may write key (its own view, health or audit
    record); None for keys any node writes."""
    for prefix in (OBS, AUDIT):
        if key.startswith(prefix):
            return key[len(prefix) :].partition("/")[0]
    if key.startswith(HEALTH):
        return key[len(HEALTH) :]
    return None


def split_obs(key: str) -> tuple[str, str] | None:
    """``obs/<node>/<target>`` -> (node, target)."""
    if not key.startswith(OBS):
        return None
    node, _, target = key[len(OBS) :].partition("/")
    return (node, target) if node and target else None


def suffix(key: str, prefix: str) -> str | None:
    return key[len(prefix) :] if key.startswith(prefix) else None
