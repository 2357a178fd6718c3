"""Serving one node: the HTTP server and the node's work, stopped by a signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import uvicorn

from watchers.config import Config
from watchers.runtime import Node
from watchers.web import app_for

log = logging.getLogger("ravens")


async def serve(config: Config, secret: str, push_tokens: dict[str, str]) -> None:
    """Run until SIGTERM or SIGINT; then stop serving, finish, close the database."""
    node = await Node.open(config, secret, push_tokens)
    server = uvicorn.Server(
        uvicorn.Config(
            app_for(node), host=config.node.host, port=config.node.port,
            log_level="warning", access_log=False, lifespan="off",
        )
    )  # fmt: skip
    # The signals are ours: they stop the node, which then stops the server.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    serving = asyncio.create_task(server.serve())
    await node.start()
    log.info("node=%s listening=%s peers=%s targets=%d", node.name, config.node.listen,
             ",".join(node.peers) or "-", len(node.targets))  # fmt: skip
    await stop.wait()
    log.info("node=%s stopping", node.name)
    server.should_exit = True
    await serving
    await node.close()
    log.info("node=%s stopped", node.name)
