"""The node's event loop: uvloop where it is installed (``ravens[fast]``),
asyncio's own otherwise. uvloop runs the same code in about half the CPU
per HTTP check (BENCHMARKS.md, part 1). RAVENS_EVENT_LOOP=asyncio chooses
the standard loop even where uvloop is there."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
CHOICE_ENV = "RAVENS_EVENT_LOOP"
LoopFactory = Callable[[], asyncio.AbstractEventLoop] | None

# The loops installed here by name, the node's preferred first; a factory
# of None is asyncio's own.
INSTALLED: dict[str, LoopFactory] = {}
with contextlib.suppress(ImportError):
    import uvloop

    INSTALLED["uvloop"] = uvloop.new_event_loop
INSTALLED["asyncio"] = None


def loop_factory() -> LoopFactory:
    """The node's loop: the first installed, unless RAVENS_EVENT_LOOP says asyncio."""
    if os.environ.get(CHOICE_ENV, "").strip().lower() == "asyncio":
        return None
    return next(iter(INSTALLED.values()))


def run(main: Coroutine[Any, Any, T], loop: str | None = None) -> T:
    """asyncio.run on the node's loop, or on the installed loop named."""
    factory = loop_factory() if loop is None else INSTALLED[loop]
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def loop_name() -> str:
    """Which loop runs this code: "uvloop" or "asyncio"."""
    module = type(asyncio.get_running_loop()).__module__
    return "uvloop" if module.startswith("uvloop") else "asyncio"
