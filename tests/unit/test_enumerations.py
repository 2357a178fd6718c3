"""Names the shell spells out for its users (config keys, API schemas, badge
colours) are the core's own enumerations, every member and nothing else."""

from __future__ import annotations

from typing import get_args

from consensus import keys
from consensus.agreement import AgreedState, Notice
from consensus.entries import READERS
from watchers.api import StateName
from watchers.badges import COLOURS
from watchers.config import NoticeName
from watchers.uptime import INCIDENT_STATES

STATES = {s.value for s in AgreedState}


def test_the_config_names_every_notice_a_priority_may_be_set_for() -> None:
    assert set(get_args(NoticeName)) == {n.value.lower() for n in Notice}


def test_the_api_schema_and_the_badges_know_every_agreed_state() -> None:
    assert set(get_args(StateName)) == STATES
    assert set(COLOURS) == STATES


def test_incidents_are_made_of_agreed_states() -> None:
    assert set(INCIDENT_STATES) <= STATES
    assert {"UP", "MAINTENANCE", "UNKNOWN"}.isdisjoint(INCIDENT_STATES)


def test_every_prefix_a_node_writes_has_one_reader_and_no_other_is_taken() -> None:
    assert set(READERS) == set(keys.KNOWN_PREFIXES)
    assert len(keys.KNOWN_PREFIXES) == len(set(keys.KNOWN_PREFIXES))
    # No prefix is the start of another: each key has exactly one reader.
    assert not [(a, b) for a in READERS for b in READERS if a != b and b.startswith(a)]
