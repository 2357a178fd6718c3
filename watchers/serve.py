"""Serving one node: the HTTP server and the node's work, stopped by a signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

import uvicorn

from watchers import collector, eventloop
from watchers.config import Config, ConfigError, load_config
from watchers.limits import paced_protocol
from watchers.runtime import Node
from watchers.secrets import (
    ApiTokens,
    api_tokens,
    ntfy_credentials,
    push_tokens,
    with_secrets,
)
from watchers.web import app_for

log = logging.getLogger("ravens")


async def serve(
    config: Config,
    secret: str,
    push_tokens: dict[str, str],
    path: Path | None = None,
    ntfy_login: tuple[str | None, tuple[str, str] | None] = (None, None),
    api: ApiTokens | None = None,
) -> None:
    """Run until SIGTERM or SIGINT; then stop serving, finish, close the database.
    SIGHUP rereads the config file and applies its targets without a restart."""
    node = await Node.open(config, secret, push_tokens, ntfy_login, api)
    server = uvicorn.Server(
        uvicorn.Config(
            app_for(node),
            host=config.node.host,
            port=config.node.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http=paced_protocol(config.node.read_timeout_s),
            ssl_certfile=config.node.tls_cert_file,
            ssl_keyfile=config.node.tls_key_file,
        )
    )
    # The signals are ours: they stop the node, which then stops the server.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reloads: set[asyncio.Task[None]] = set()
    if path is not None:

        def on_hup() -> None:
            task = asyncio.create_task(_reload(node, path))
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_hup)
    serving = asyncio.create_task(server.serve())
    await node.start()
    # The process is the node's alone: what it loaded is frozen for the collector.
    collector.settle()
    freezing = asyncio.create_task(collector.keep_pauses_short())
    log.info(
        "node=%s listening=%s peers=%s targets=%d loop=%s",
        node.name,
        config.node.listen,
        ",".join(node.sync.urls) or "-",
        len(node.targets),
        eventloop.loop_name(),
    )
    await stop.wait()
    log.info("node=%s stopping", node.name)
    freezing.cancel()
    server.should_exit = True
    await serving
    await node.close()
    log.info("node=%s stopped", node.name)


async def _reload(node: Node, path: Path) -> None:
    """A bad file changes nothing: the node keeps its targets and says why."""
    try:
        config = with_secrets(load_config(path))
        tokens = push_tokens(config)
        login = ntfy_credentials(config)
        api = api_tokens(config)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("reload node=%s refused: %s: %s", node.name, path, problem)
        return
    if config.node != node.config.node or config.peers != node.config.peers:
        log.warning("reload node=%s: [node] and [[peers]] changes need a restart", node.name)
    await node.reload(config, tokens, login, api)
