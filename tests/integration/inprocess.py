"""A node built in the test's own process: a real SQLite file, its web app
served over ASGI, no scheduler running; opened and closed by one context."""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from watchers.config import parse_config
from watchers.runtime import Node
from watchers.secrets import ApiTokens

SECRET = "s" * 40


@asynccontextmanager
async def node_in_process(
    config_toml: str, push_tokens: dict[str, str] | None = None, api: ApiTokens | None = None
) -> AsyncIterator[Node]:
    config = parse_config(tomllib.loads(config_toml))
    node = await Node.open(config, SECRET, push_tokens or {}, api=api)
    try:
        yield node
    finally:
        await node.http.aclose()
        await node.sync.client.aclose()
        await node.store.close()
