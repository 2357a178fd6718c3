"""`ravens status`: one node's view of the targets, its outbox and, with
--check, whether the pair can do its job. Reads the HTTP API only, so it
imports nothing of the node: it answers in a fraction of a second."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import httpx

from watchers.pair_check import pair_problems
from watchers.view_words import view_words


@click.command(name="status")
@click.option(
    "--node",
    "node_url",
    default="http://127.0.0.1:8470",
    show_default=True,
    help="Either node's base URL.",
)
@click.option("--json", "as_json", is_flag=True, help="The API's JSON as it came.")
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A file holding the read token (or an admin's), when the node has one set.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Exit 1 (saying why) when the pair cannot notify, cannot sync, or a node is cut off.",
)
def status_command(node_url: str, as_json: bool, token_file: Path | None, check: bool) -> None:
    """Targets with their agreed state and each node's view, then the outbox:
    what waits for ntfy and what ntfy refused."""
    token = token_file.read_text().strip() if token_file is not None else None
    data = _get_json(node_url, "/api/v1/targets", token)
    nodes = _get_json(node_url, "/api/v1/nodes", token)
    if as_json:
        click.echo(json.dumps({**data, "node_status": nodes}, indent=2))
        return
    click.echo(f"as seen by {data['node']}")
    click.echo(f"{'target':<20} {'agreed':<12} {'mode':<15} views")
    for item in data["targets"]:
        views = "  ".join(
            f"{name}: {view_words(v, item.get('thresholds', {}))}"
            for name, v in item["views"].items()
        )
        click.echo(f"{item['id']:<20} {item['state']:<12} {item['mode']:<15} {views}")
    for name, ok in [
        (nodes.get("node"), nodes.get("ntfy_ok")),
        *((p.get("name"), p.get("ntfy_ok")) for p in nodes.get("peers", [])),
    ]:
        if ok is False:
            click.echo(
                f"ntfy: {name} cannot reach ntfy; its notifications go out from "
                "its peer after the failover time"
            )
    for peer in nodes.get("peers", []):
        if peer.get("refuses_us"):
            click.echo(
                f"sync: {peer.get('name')} answers but refuses our signature: the "
                "[sync] secret_file differs between the nodes; each decides alone "
                "until it matches"
            )
    refused = nodes.get("outbox_refused", [])
    click.echo(f"outbox: {nodes.get('outbox_depth', 0)} waiting for ntfy, {len(refused)} refused")
    for row in refused:
        click.echo(f"  refused {row['event']}: {row['error']} (fix [ntfy], then reload)")
    hooks = nodes.get("webhooks") or {}
    hooks_refused = hooks.get("refused") or []
    if hooks.get("waiting") or hooks_refused:
        waiting = sum((hooks.get("waiting") or {}).values())
        click.echo(f"webhooks: {waiting} waiting, {len(hooks_refused)} refused")
    for row in hooks_refused:
        click.echo(
            f"  {row['hook']} refused {row['event']}: {row['error']} "
            "(fix [[webhooks]] or the receiver, then reload)"
        )
    storage = nodes.get("storage") or {}
    if storage.get("ok") is False:
        click.echo(
            f"storage: the database refuses writes ({storage.get('error')}); "
            f"{storage.get('unsaved_steps')} steps kept in memory, written once it can; "
            "free space in the data directory"
        )
    problems = pair_problems(nodes) if check else []
    for problem in problems:
        click.echo(f"check: {problem}", err=True)
    if problems:
        raise SystemExit(1)


def _get_json(node_url: str, path: str, token: str | None = None) -> dict[str, Any]:
    url = node_url.rstrip("/") + path
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.get(url, timeout=10, headers=headers)
        if response.status_code == 401:
            raise click.ClickException(
                f"{url}: 401: the node wants a read token; pass --token-file"
            )
        response.raise_for_status()
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise click.ClickException(f"{url}: {exc}") from None
    if not isinstance(data, dict):
        raise click.ClickException(f"{url}: expected a JSON object")
    return data
