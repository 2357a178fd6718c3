"""The admin commands: `ravens targets`, `ravens maintenance`, `ravens
silence` and `ravens ack`, each a thin client of one node's admin API, so
Biphrost's tools can script the pair. Every command takes --node and
--token-file (or RAVENS_NODE and RAVENS_TOKEN_FILE), prints what changed,
and exits 1 with the API's own words when the node refuses."""

from __future__ import annotations

import contextlib
import re
import tomllib
from datetime import UTC, datetime, time, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import click
import httpx
import tomli_w

DEFAULT_NODE = "http://127.0.0.1:8470"
_DURATION = re.compile(r"(\d+)([dhms])")
_UNIT_S = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}


class AdminApi:
    """One node's admin API over HTTP."""

    def __init__(self, node_url: str, token_file: Path | None) -> None:
        self.base = node_url.rstrip("/")
        if token_file is None:
            raise click.UsageError("give --token-file (or RAVENS_TOKEN_FILE): an admin token")
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise click.UsageError(f"--token-file {token_file}: {exc.strerror or exc}") from None
        self.headers = {"Authorization": f"Bearer {token}"}
        # The node's own time, from its last answer: windows start then.
        self.node_now: datetime | None = None

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.base}/api/v1/admin{path}"
        try:
            response = httpx.request(method, url, headers=self.headers, timeout=30, **kwargs)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"{url}: {exc}") from None
        with contextlib.suppress(ValueError, TypeError):
            self.node_now = parsedate_to_datetime(response.headers.get("date", ""))
        if response.status_code >= 400:
            try:
                said = response.json().get("error")
            except ValueError:
                said = None
            raise click.ClickException(f"{url}: {response.status_code}: {said or response.text}")
        return None if response.status_code == 204 else response.json()


def parse_duration(text: str) -> int:
    """'30m', '2h', '1h30m', '1d' -> seconds."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise click.BadParameter(f"expected a duration such as 30m, 2h or 1h30m, got {text!r}")
    seconds = sum(int(n) * _UNIT_S[u] for n, u in parts)
    if seconds <= 0:
        raise click.BadParameter(f"expected a duration above zero, got {text!r}")
    return seconds


node_option = click.option(
    "--node",
    "node_url",
    default=DEFAULT_NODE,
    show_default=True,
    envvar="RAVENS_NODE",
    help="Either node's base URL (or RAVENS_NODE).",
)
token_option = click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="RAVENS_TOKEN_FILE",
    help="A file holding an admin token (or RAVENS_TOKEN_FILE).",
)


@click.group(name="targets")
def targets_group() -> None:
    """The pair's targets: list them, export the run-time ones, apply a file."""


@targets_group.command(name="apply")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@node_option
@token_option
def apply_command(path: Path, dry_run: bool, node_url: str, token_file: Path | None) -> None:
    """Make the pair's run-time targets, and the windows an earlier apply
    made, match PATH (a TOML file of [[targets]], [[maintenance]] and
    [[silences]], as in the config). Prints + added, ~ changed key: old ->
    new, - removed; all or nothing."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: not valid TOML: {exc}") from None
    api = AdminApi(node_url, token_file)
    try:
        answer = api.call("POST", "/apply", json=_jsonable(document), params={"dry_run": dry_run})
    except click.ClickException as exc:
        raise click.ClickException(f"{path}: {exc.message}") from None
    lines = [change["line"] for change in answer["changes"]]
    for line in lines:
        click.echo(line)
    if not lines:
        click.echo("nothing to change")
    elif dry_run:
        click.echo(f"dry run: {len(lines)} change(s) not made")


@targets_group.command(name="list")
@node_option
@token_option
def list_command(node_url: str, token_file: Path | None) -> None:
    """Every target the pair watches, with where it was defined."""
    answer = AdminApi(node_url, token_file).call("GET", "/targets")
    click.echo(f"{'target':<24} {'kind':<6} {'from':<8} tags")
    for item in answer["targets"]:
        tags = ", ".join(item["tags"])
        click.echo(f"{item['id']:<24} {item['kind']:<6} {item['source']:<8} {tags}".rstrip())


@targets_group.command(name="export")
@node_option
@token_option
def export_command(node_url: str, token_file: Path | None) -> None:
    """The run-time targets and applied windows as a file `apply` takes."""
    answer = AdminApi(node_url, token_file).call("GET", "/targets")
    document: dict[str, Any] = {
        "targets": [_toml_ready(i["target"]) for i in answer["targets"] if i["source"] == "api"]
    }
    for kind in ("maintenance", "silences"):
        document[kind] = [_window_toml(w["window"]) for w in answer[kind] if w["applied"]]
    document = {k: v for k, v in document.items() if v}
    click.echo("# ravens targets export: `ravens targets apply` takes this file")
    click.echo(tomli_w.dumps(document), nl=False)


def _window_group(kind: str, singular: str) -> click.Group:
    @click.group(name=singular)
    def group() -> None:
        pass

    group.help = (
        f"{singular.capitalize()} windows at run time: start one now for a while, stop one, "
        "list them."
    )

    @group.command(name="start")
    @click.argument("targets", nargs=-1)
    @click.option("--tag", "tags", multiple=True, help="Every target with this tag.")
    @click.option("--for", "duration", required=True, help="How long: 30m, 2h, 1h30m, 1d.")
    @click.option("--reason", default="", help="Shown on the page and in the audit trail.")
    @node_option
    @token_option
    def start(
        targets: tuple[str, ...],
        tags: tuple[str, ...],
        duration: str,
        reason: str,
        node_url: str,
        token_file: Path | None,
    ) -> None:
        """A window over TARGETS (or --tag) from now, on the node's clock."""
        if not targets and not tags:
            raise click.UsageError("name the targets, or give --tag")
        seconds = parse_duration(duration)
        api = AdminApi(node_url, token_file)
        api.call("GET", f"/{kind}")  # the node's time, from its Date header
        start_at = api.node_now or datetime.now(UTC)
        end_at = start_at + timedelta(seconds=seconds)
        body = {
            "targets": list(targets),
            "tags": list(tags),
            "start": start_at.isoformat(),
            "end": end_at.isoformat(),
            "reason": reason,
        }
        made = api.call("POST", f"/{kind}", json=body)
        names = ", ".join([*targets, *(f"#{t}" for t in tags)])
        click.echo(f"{singular} {made['id']}: {names} until {end_at.isoformat()}")

    @group.command(name="stop")
    @click.argument("window_ids", nargs=-1)
    @click.option("--target", "target", help="End every window started for this target.")
    @click.option("--tag", "tag", help="End every window started for this tag.")
    @node_option
    @token_option
    def stop(
        window_ids: tuple[str, ...],
        target: str | None,
        tag: str | None,
        node_url: str,
        token_file: Path | None,
    ) -> None:
        """End windows by id, or every one started by hand for --target or --tag
        (windows from the config or from apply stay)."""
        if not window_ids and target is None and tag is None:
            raise click.UsageError("give window ids, --target or --tag")
        api = AdminApi(node_url, token_file)
        chosen = list(window_ids)
        if target is not None or tag is not None:
            listed = api.call("GET", "/targets")[kind]
            chosen += [
                w["id"]
                for w in listed
                if not w["applied"]
                and (target in w["window"].get("targets", []) or tag in w["window"].get("tags", []))
            ]
            if not chosen:
                raise click.ClickException(f"no {singular} window started for {target or tag}")
        for window_id in dict.fromkeys(chosen):
            api.call("DELETE", f"/{kind}/{window_id}")
            click.echo(f"{singular} {window_id}: ended")

    @group.command(name="list")
    @node_option
    @token_option
    def list_windows(node_url: str, token_file: Path | None) -> None:
        """The windows from the config and from the admin API."""
        answer = AdminApi(node_url, token_file).call("GET", f"/{kind}")
        for window in answer["config"]:
            click.echo(f"config   {_window_words(window)}")
        for window_id, written in sorted(answer["api"].items()):
            window = written.get("window", {}) if isinstance(written, dict) else {}
            source = "applied" if isinstance(written, dict) and written.get("applied") else "api"
            click.echo(f"{source:<8} {window_id} {_window_words(window)}")

    return group


maintenance_group = _window_group("maintenance", "maintenance")
silence_group = _window_group("silences", "silence")


@click.command(name="ack")
@click.argument("incident")
@click.option("--note", default="", help="Why, or who is on it (at most 500 characters).")
@node_option
@token_option
def ack_command(incident: str, note: str, node_url: str, token_file: Path | None) -> None:
    """Acknowledge INCIDENT (the event id of its DOWN): no more reminders or
    escalation, on both nodes."""
    api = AdminApi(node_url, token_file)
    answer = api.call("POST", f"/incidents/{incident}/ack", json={"note": note})
    click.echo(f"acknowledged {answer['event']} as {answer['acknowledged']['by']}")


def _window_words(window: dict[str, Any]) -> str:
    names = ", ".join([*window.get("targets", []), *(f"#{t}" for t in window.get("tags", []))])
    if window.get("start"):
        when = f"{window['start']} to {window.get('end')}"
    else:
        when = f"{','.join(window.get('days', []))} {window.get('from')}-{window.get('to')} UTC"
    reason = f" ({window['reason']})" if window.get("reason") else ""
    return f"{names} {when}{reason}"


def _jsonable(value: Any) -> Any:
    """TOML's dates and times as the ISO text the API reads."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | time):
        return value.isoformat()
    return value


def _toml_ready(value: Any) -> Any:
    """A stored JSON body as TOML can write it: TOML has no null."""
    if isinstance(value, dict):
        return {k: _toml_ready(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_toml_ready(v) for v in value if v is not None]
    return value


def _window_toml(window: dict[str, Any]) -> dict[str, Any]:
    """A window with its start, end, from and to as TOML dates and times."""
    out: dict[str, Any] = _toml_ready(window)
    for key in ("start", "end"):
        if isinstance(out.get(key), str):
            out[key] = datetime.fromisoformat(out[key].replace("Z", "+00:00"))
    for key in ("from", "to"):
        if isinstance(out.get(key), str):
            out[key] = time.fromisoformat(out[key])
    return out
