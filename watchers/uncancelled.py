"""Work that must not stop half done when its caller is cancelled (a node
stopping): a database transaction, and the note of what it wrote."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TypeVar

T = TypeVar("T")


async def finish_then_cancel(work: Coroutine[object, object, T]) -> T:
    """Run work to its end; a cancel that came meanwhile is raised after."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not warn of it
        raise asyncio.CancelledError
    return task.result()
