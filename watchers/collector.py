"""Short pauses of Python's cycle collector.

A node watching a thousand targets holds a few hundred thousand objects
that live for hours: the log's entries and their values, the targets, the
verdicts. Python's full collection walks every one of them, and it ran
every few seconds under load: on the flood bench (BENCHMARKS.md part 7) a
loaded node spent 8.2 s in 30 full collections of about 270 ms each, every
one of them a stop of the loop that /healthz, checks and sync share.

So what the node has lived with is frozen (``gc.freeze``): the collector
no longer walks it, and only what is new since is scanned; and the young
generation is collected less often, so full collections come less often. Plain objects
frozen and later dropped are still freed at once by reference counting;
only garbage in cycles frozen while it was alive waits, until the next
sweep thaws everything and collects it all once (a single long pause, a
few times a day, instead of several a minute).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("ravens")

# Python's default (700 net new objects) runs a young collection hundreds
# of times a second under load, and a full one every few seconds (one in
# 100 young collections, past a growth rule). Ten times fewer: each young
# one scans a few thousand objects more (about a millisecond).
YOUNG_THRESHOLD = 7_000
# What survived this long is frozen again; the frozen cycles that died
# meanwhile are swept this often.
FREEZE_EVERY_S = 300.0
SWEEP_EVERY_S = 6 * 3600.0


def settle() -> None:
    """After start: collect what loading left behind, freeze what stays,
    and collect the young less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def sweep() -> float:
    """Thaw everything, collect it all, freeze what is left. The seconds it took."""
    began = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return time.perf_counter() - began


async def keep_pauses_short(
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    freeze_every_s: float = FREEZE_EVERY_S,
    sweep_every_s: float = SWEEP_EVERY_S,
) -> None:
    """Freeze what has lived a while, every few minutes; sweep a few times
    a day. Runs until cancelled."""
    since_sweep = 0.0
    while True:
        await sleep(freeze_every_s)
        since_sweep += freeze_every_s
        if since_sweep >= sweep_every_s:
            since_sweep = 0.0
            took = sweep()
            log.info(
                "collector: swept %d frozen objects in %.0f ms", gc.get_freeze_count(), took * 1000
            )
        else:
            gc.freeze()
