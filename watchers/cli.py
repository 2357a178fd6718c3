"""The ``ravens`` command line.

Each command imports what it needs when it runs: ``ravens status`` or
``ravens --help`` should not pay for the node's web stack and storage."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from watchers.cli_admin import ack_command, maintenance_group, silence_group, targets_group
from watchers.cli_status import status_command
from watchers.simulate_cli import simulate_command

if TYPE_CHECKING:
    from notify.publisher import Outcome, Refused, RetryLater, Server
    from watchers.config import NtfySection


@contextlib.contextmanager
def _config_errors(path: Path) -> Iterator[None]:
    """Every config problem on stderr, prefixed with the file; exit 1 before anything starts."""
    from watchers.config import ConfigError

    try:
        yield
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"{path}: {problem}", err=True)
        raise SystemExit(1) from None


config_option = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The node's TOML file.",
)


@click.group()
@click.version_option(package_name="ravens")
def main() -> None:
    """Huginn and Muninn: two uptime watchers that agree before they page anyone."""


@main.command(name="check-config")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
def check_config_command(path: Path) -> None:
    """Validate a node's config file (and that its secrets can be read) without starting."""
    from watchers.config import load_config
    from watchers.secrets import (
        api_tokens,
        ntfy_credentials,
        push_tokens,
        sync_secret,
        with_secrets,
    )

    with _config_errors(path):
        config = with_secrets(load_config(path))
        sync_secret(config)
        push_tokens(config)
        ntfy_credentials(config)
        api_tokens(config)
    kinds = ", ".join(sorted({t.kind for t in config.targets})) or "none"
    click.echo(
        f"{path}: ok: node {config.node.name}, {len(config.peers)} peer(s), "
        f"{len(config.targets)} target(s) ({kinds})"
    )


@main.command(name="run")
@config_option
def run_command(config_path: Path) -> None:
    """Run the watcher node until SIGTERM or SIGINT."""
    from watchers import eventloop
    from watchers.config import load_config
    from watchers.secrets import (
        api_tokens,
        ntfy_credentials,
        push_tokens,
        sync_secret,
        with_secrets,
    )
    from watchers.serve import serve
    from watchers.storage import StorageError

    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    # One line per state change is ours; the libraries' per-request chatter is not.
    for noisy in ("apscheduler", "httpx", "httpcore", "uvicorn"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with _config_errors(config_path):
        config = with_secrets(load_config(config_path))
        secret = sync_secret(config)
        tokens = push_tokens(config)
        ntfy_login = ntfy_credentials(config)
        api = api_tokens(config)
    try:
        eventloop.run(serve(config, secret, tokens, config_path, ntfy_login, api))
    except (StorageError, OSError) as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from None


@main.command(name="backup")
@config_option
@click.argument("dest", type=click.Path(path_type=Path))
def backup_command(config_path: Path, dest: Path) -> None:
    """Copy the node's database to DEST (a file, or a directory for a dated
    name) while the node runs, and check the copy."""
    from watchers.backup import BackupError, backup
    from watchers.config import load_config
    from watchers.storage import DB_NAME

    with _config_errors(config_path):
        config = load_config(config_path)
    try:
        made = backup(config.node.data_dir / DB_NAME, dest)
    except (BackupError, OSError, sqlite3.Error) as exc:
        click.echo(f"backup: {exc}", err=True)
        raise SystemExit(1) from None
    click.echo(
        f"{made.path}: {made.size} bytes, integrity ok, "
        f"{made.log_entries} log entries, {made.checks} checks"
    )


@main.command(name="rebuild-history")
@config_option
def rebuild_history_command(config_path: Path) -> None:
    """Rebuild the node's interval cache (uptime, incidents, the page's bars)
    from the agreed moves in its log. The node does this itself when the
    cache is stale; safe while it runs."""
    from consensus.history import histories
    from watchers.config import load_config
    from watchers.storage import DB_NAME, StorageError, Store

    with _config_errors(config_path):
        config = load_config(config_path)
    db = config.node.data_dir / DB_NAME
    if not db.exists():
        click.echo(f"rebuild-history: {db}: no database here (has the node run?)", err=True)
        raise SystemExit(1)

    async def rebuild() -> tuple[int, int]:
        store = await Store.open(db)
        try:
            log, _ = await store.load(config.node.name)
            derived = histories(log.entries())
            await store.rebuild_history(derived)
            return len(derived), sum(len(h) for h in derived.values())
        finally:
            await store.close()

    try:
        targets, stretches = asyncio.run(rebuild())
    except (StorageError, sqlite3.Error) as exc:
        click.echo(f"rebuild-history: {exc}", err=True)
        raise SystemExit(1) from None
    click.echo(f"{db}: history rebuilt from the log: {targets} targets, {stretches} stretches")


@main.command(name="restore")
@config_option
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False, exists=True))
def restore_command(config_path: Path, source: Path) -> None:
    """Put a backup in place of the node's database; the node must be stopped.
    The replaced database is kept beside it."""
    from watchers.backup import BackupError, restore
    from watchers.config import load_config
    from watchers.storage import DB_NAME

    with _config_errors(config_path):
        config = load_config(config_path)
    db = config.node.data_dir / DB_NAME
    try:
        kept = restore(source, db, (config.node.host, config.node.port))
    except (BackupError, OSError, sqlite3.Error) as exc:
        click.echo(f"restore: {exc}", err=True)
        raise SystemExit(1) from None
    replaced = f"; the one it replaced is {kept}" if kept else ""
    click.echo(f"{db}: restored from {source}{replaced}")


@main.group(name="notify")
def notify_group() -> None:
    """Notifications to ntfy."""


@notify_group.command(name="test")
@config_option
def notify_test_command(config_path: Path) -> None:
    """Send one test notification through the configured ntfy and print its answer."""
    from notify.publisher import Delivered, Server
    from watchers.config import ConfigError, load_config
    from watchers.secrets import ntfy_credentials

    with _config_errors(config_path):
        config = load_config(config_path)
        if config.ntfy is None:
            raise ConfigError(["ntfy: required section missing"])
        token, basic = ntfy_credentials(config)
    message = {
        "topic": config.ntfy.topic,
        "title": f"ravens test from {config.node.name}",
        "message": f"If you read this, **{config.node.name}** can reach you through ntfy.",
        "tags": ["white_check_mark"],
        "priority": 3,
        "markdown": True,
    }
    server = Server(str(config.ntfy.url), token=token, basic=basic)
    outcome = asyncio.run(_send(server, message))
    if isinstance(outcome, Delivered):
        click.echo(
            f"delivered to {config.ntfy.url} topic {config.ntfy.topic}: "
            f"ntfy message id {outcome.message_id}"
        )
        return
    click.echo(f"not delivered: {not_delivered(outcome, config.ntfy)}", err=True)
    raise SystemExit(1)


def not_delivered(outcome: RetryLater | Refused, ntfy: NtfySection) -> str:
    """What ntfy said, in words, and what to check in the config."""
    from notify.publisher import RetryLater

    if isinstance(outcome, RetryLater):
        if outcome.paced:
            wait = f" in {outcome.after_s:g} s" if outcome.after_s else " later"
            return f"ntfy asks to slow down (429): try again{wait}"
        return f"ntfy did not answer ({outcome.reason}): check [ntfy] url and the network"
    said = f"{outcome.status} {outcome.error}"
    if outcome.status in (401, 403):
        if ntfy.username is not None:
            where = (
                "username and password_file" if ntfy.password_file else "username and password_env"
            )
            return f"ntfy refused the user and password ({said}): check [ntfy] {where}"
        if ntfy.token_file is None and ntfy.token_env is None:
            return f"ntfy wants credentials ({said}): set [ntfy] token_file or token_env"
        where = "token_file" if ntfy.token_file is not None else "token_env"
        return f"ntfy refused the token ({said}): check [ntfy] {where}"
    if outcome.status == 404:
        return f"ntfy has no such path ({said}): check [ntfy] url"
    return f"ntfy refused the message ({said}): check [ntfy] topic and url"


async def _send(server: Server, message: dict[str, object]) -> Outcome:
    import httpx

    from notify.publisher import publish

    async with httpx.AsyncClient() as client:
        return await publish(client, server, message)


@main.command(name="demo")
@click.option(
    "--dir",
    "root",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(".demo"),
    show_default=True,
    help="Configs, databases and logs.",
)
@click.option(
    "--duration",
    "duration_s",
    type=click.FloatRange(min=1),
    default=None,
    help="Stop by itself after this many seconds.",
)
@click.option("--fresh", is_flag=True, help="Remove the last run's data first.")
def demo_command(root: Path, duration_s: float | None, fresh: bool) -> None:
    """Huginn and Muninn on loopback, watching local demo targets."""
    from watchers.demo import run_demo

    run_demo(root.resolve(), duration_s, fresh)


main.add_command(status_command)
for admin_command in (targets_group, maintenance_group, silence_group, ack_command):
    main.add_command(admin_command)
main.add_command(simulate_command)
