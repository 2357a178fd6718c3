"""Errors raised by the pure core.

    ConsensusError
    ├── IllegalTransition   a state machine was asked for a move its table does not allow
    └── InvalidEntry        a log entry or sync page that breaks the log's rules

A target being down is data, never an exception: these errors mean the
caller broke the protocol, like h11's LocalProtocolError.
"""

from __future__ import annotations


class ConsensusError(Exception):
    """Base of every error the core raises."""


class IllegalTransition(ConsensusError):
    """A state machine was fed an event that its transition table forbids."""

    def __init__(self, machine: str, state: str, event: str) -> None:
        super().__init__(f"{machine}: event {event} is not allowed in state {state}")
        self.machine = machine
        self.state = state
        self.event = event


class InvalidEntry(ConsensusError):
    """A log entry or sync page that cannot be merged, with the reason."""
