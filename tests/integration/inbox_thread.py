"""The ntfy-compatible inbox served from a thread, for tests that drive
subprocess nodes from plain (non-async) test functions."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from notify.inbox import Inbox, serving


@contextmanager
def inbox_server(inbox: Inbox) -> Iterator[str]:
    ready = threading.Event()
    url: list[str] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        async with serving(inbox) as base:
            url.append(base)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the inbox did not start")
    try:
        yield url[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
