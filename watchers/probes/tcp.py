"""TCP connect: the target accepts a connection within the timeout."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Literal

from pydantic import Field

from watchers.probes.base import CheckResult, TargetBase, seconds


class TcpTarget(TargetBase):
    kind: Literal["tcp"]
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(ge=1, le=65_535)


async def probe_tcp(target: TcpTarget, timeout_s: float) -> CheckResult:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(target.host, target.port)
    except TimeoutError:
        return CheckResult(False, None, f"connect timeout after {seconds(timeout_s)}")
    except ConnectionRefusedError:
        return CheckResult(False, _ms(started), "connection refused")
    except OSError as exc:
        return CheckResult(False, _ms(started), _os_reason(exc))
    latency = _ms(started)
    writer.close()
    # The connect succeeded; a slow close says nothing of the target.
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(1.0):
            await writer.wait_closed()
    return CheckResult(True, latency, f"connected to port {target.port}")


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _os_reason(exc: OSError) -> str:
    text = exc.strerror or str(exc) or type(exc).__name__
    return text[0].lower() + text[1:] if text else "connection failed"
