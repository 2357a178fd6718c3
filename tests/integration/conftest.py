"""Fixtures shared by the loopback pair tests."""

from tests.integration.notify_world import make_world

__all__ = ["make_world"]
