"""Names the shell spells out for its users (config keys, API schemas, badge
colours) are the core's own enumerations, every member and nothing else."""

from __future__ import annotations

from typing import get_args

from consensus.agreement import AgreedState, Notice
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
