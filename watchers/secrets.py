"""The secrets a node reads at start: the sync secret, ntfy's credentials,
the API's tokens, push URLs' tokens and HTTP targets' secret headers, from
files (systemd credentials too) or the environment. An error names the key,
never the value."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from notify.signing import BadSecret, secret_key
from watchers.config import MIN_SECRET_CHARS, Config, ConfigError

# The Standard Webhooks convention asks for keys of 24 to 64 bytes.
MIN_HOOK_KEY_BYTES = 24


def read_secret(source_key: str, file: Path | None, env: str | None) -> str:
    """The secret's value, or a ConfigError naming the key (never the value)."""
    if file is not None:
        file = _credentials(source_key, file)
        try:
            value = file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                [f"{source_key}_file: cannot read {file}: {exc.strerror or exc}"]
            ) from exc
        where = f"{source_key}_file"
    elif env is not None:
        value = os.environ.get(env, "").strip()
        if not value:
            raise ConfigError([f"{source_key}_env: environment variable {env} is not set"])
        where = f"{source_key}_env"
    else:
        raise ConfigError([f"{source_key}_file: required key missing"])
    return value if value else _empty(where)


CREDENTIALS = "$CREDENTIALS_DIRECTORY"


def _credentials(source_key: str, file: Path) -> Path:
    """A path that starts with $CREDENTIALS_DIRECTORY is under the directory
    where systemd puts a unit's credentials (LoadCredential=); from a shell,
    set the variable to where the secret files are."""
    text = str(file)
    if not text.startswith(CREDENTIALS):
        return file
    directory = os.environ.get(CREDENTIALS[1:])
    if not directory:
        raise ConfigError(
            [
                f"{source_key}_file: {text} needs {CREDENTIALS}, which is not set "
                "(systemd sets it for a unit with LoadCredential=; from a shell, "
                "set it to the directory that holds the secret files)"
            ]
        )
    return Path(directory + text[len(CREDENTIALS) :])


def _empty(where: str) -> str:
    raise ConfigError([f"{where}: the secret is empty"])


def sync_secret(config: Config) -> str:
    secret = read_secret("sync.secret", config.sync.secret_file, config.sync.secret_env)
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfigError(
            [
                f"sync.secret: too short ({len(secret)} characters); use at least "
                f"{MIN_SECRET_CHARS}, for example from: openssl rand -hex 32"
            ]
        )
    return secret


def with_secrets(config: Config) -> Config:
    """The config with each HTTP target's header_file and header_env read
    into its headers, and each webhook's key read; a ConfigError names each
    one that cannot be read."""
    targets = list(config.targets)
    problems = []
    for i, target in enumerate(targets):
        if target.kind != "http" or not (target.header_file or target.header_env):
            continue
        headers = dict(target.headers)
        sources: list[tuple[str, Path | None, str | None]] = [
            (name, Path(file), None) for name, file in target.header_file.items()
        ]
        sources += [(name, None, env) for name, env in target.header_env.items()]
        for name, file, env in sources:
            try:
                headers[name] = read_secret(f"targets[{i}].header", file, env)
            except ConfigError as exc:
                where = "header_file" if file is not None else "header_env"
                problems += [
                    p.replace(f"targets[{i}].{where}:", f"targets[{i}].{where}.{name}:", 1)
                    for p in exc.problems
                ]
        targets[i] = target.model_copy(update={"headers": headers})
    problems += _read_hook_keys(config)
    if problems:
        raise ConfigError(problems)
    return config.model_copy(update={"targets": tuple(targets)})


def _read_hook_keys(config: Config) -> list[str]:
    problems = []
    for i, hook in enumerate(config.webhooks):
        key = f"webhooks[{i}].secret"
        try:
            secret = read_secret(key, hook.secret_file, hook.secret_env)
            hook._key = secret_key(secret)
        except ConfigError as exc:
            problems += exc.problems
            continue
        except BadSecret as exc:
            problems.append(f"{key}: {exc}")
            continue
        if len(hook.key) < MIN_HOOK_KEY_BYTES:
            problems.append(
                f"{key}: too short ({len(hook.key)} bytes); use at least "
                f"{MIN_HOOK_KEY_BYTES}, for example: echo whsec_$(openssl rand -base64 32)"
            )
    return problems


def push_tokens(config: Config) -> dict[str, str]:
    """Secret token -> push target id, read from each push target's file or env."""
    tokens: dict[str, str] = {}
    for i, target in enumerate(config.targets):
        if target.kind != "push":
            continue
        token_file = Path(target.token_file) if target.token_file else None
        token = read_secret(f"targets[{i}].token", token_file, target.token_env)
        if len(token) < 16:
            raise ConfigError([f"targets[{i}].token: too short; use at least 16 characters"])
        tokens[token] = target.id
    return tokens


@dataclass(frozen=True)
class ApiTokens:
    read: str | None
    admins: dict[str, str]  # token -> admin name
    # slug -> the read token of that customer page (pages without one are absent)
    pages: dict[str, str] = field(default_factory=dict)


def api_tokens(config: Config) -> ApiTokens:
    """The read token, if any, each admin's token and each customer page's,
    from files or env."""
    api = config.api
    read = None
    if api.read_token_file or api.read_token_env:
        read = _token("api.read_token", api.read_token_file, api.read_token_env)
    admins = {
        _token(f"api.admins[{i}].token", admin.token_file, admin.token_env): admin.name
        for i, admin in enumerate(api.admins)
    }
    pages = {
        page.slug: _token(f"pages[{i}].token", page.token_file, page.token_env)
        for i, page in enumerate(config.pages)
        if page.token_file is not None or page.token_env is not None
    }
    return ApiTokens(read, admins, pages)


def _token(key: str, path: Path | None, env: str | None) -> str:
    """A bearer token, long enough not to be guessed."""
    token = read_secret(key, path, env)
    if len(token) < MIN_SECRET_CHARS:
        raise ConfigError(
            [f"{key}: too short ({len(token)} characters); use at least {MIN_SECRET_CHARS}"]
        )
    return token


def ntfy_credentials(config: Config) -> tuple[str | None, tuple[str, str] | None]:
    """(token, (user, password)) for ntfy, read from their files or env."""
    ntfy = config.ntfy
    if ntfy is None:
        return None, None
    token = None
    if ntfy.token_file or ntfy.token_env:
        token = read_secret("ntfy.token", ntfy.token_file, ntfy.token_env)
    basic = None
    if ntfy.username is not None:
        password = read_secret("ntfy.password", ntfy.password_file, ntfy.password_env)
        basic = (ntfy.username, password)
    return token, basic
