"""One table of defaults: the config schema, the core's Settings and the
README's table all say what consensus/settings.py TUNABLES says."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from consensus.settings import TUNABLES, Settings, Tunable, configured
from watchers.config import parse_config

README = Path(__file__).parents[2] / "README.md"
MINIMAL = """
[node]
name = "huginn"
data_dir = "/var/lib/ravens"
[sync]
secret_env = "RAVENS_SECRET"
[ntfy]
topic = "alerts"
"""


def minimal(extra: str = "") -> str:
    return MINIMAL + extra


def test_every_tunable_sets_a_field_of_settings_whose_default_it_is() -> None:
    names = {f.name: f for f in fields(Settings)}
    defaults = Settings()
    for tunable in TUNABLES:
        assert tunable.setting in names, tunable.key
        assert getattr(defaults, tunable.setting) == tunable.to_core(tunable.default), tunable.key


def test_the_config_schema_defaults_are_the_tables() -> None:
    config = parse_config(tomllib.loads(minimal()))
    for tunable in TUNABLES:
        section, key = tunable.key.split(".")
        assert getattr(getattr(config, section), key) == tunable.default, tunable.key


def test_a_config_that_says_nothing_gives_the_cores_defaults() -> None:
    assert parse_config(tomllib.loads(minimal())).core_settings() == Settings()


def test_a_config_value_reaches_the_core_in_the_cores_unit() -> None:
    text = minimal(
        "failover_s = 20\n[defaults]\nretry_interval_s = 2.5\n[storage]\nmax_log_mb = 16\n"
    )
    settings = parse_config(tomllib.loads(text)).core_settings()
    assert settings.failover_ms == 20_000
    assert settings.retry_interval_ms == 2_500
    assert settings.max_log_bytes == 16 * 2**20


@pytest.mark.parametrize(("sync_ms", "heartbeat_ms", "lost_ms"),
                         [(2_000, 2_000, 35_000), (10_000, 10_000, 35_000),
                          (20_000, 10_000, 70_000)])  # fmt: skip
def test_the_sync_interval_sets_the_pace_of_liveness(
    sync_ms: int, heartbeat_ms: int, lost_ms: int
) -> None:
    settings = configured({}, sync_ms)
    assert (settings.heartbeat_interval_ms, settings.peer_timeout_ms) == (heartbeat_ms, lost_ms)


def test_an_unknown_setting_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"defaults\.nonsense"):
        configured({"defaults.nonsense": 1}, 10_000)


def readme_row(tunable: Tunable) -> str:
    value = tunable.default
    shown = ", ".join(map(str, value)) if isinstance(value, tuple) else f"{value:,}"
    section, key = tunable.key.split(".")
    return f"| `[{section}] {key}` | {shown} | {tunable.unit} | {tunable.help} |"


def test_the_readmes_table_is_the_table() -> None:
    text = README.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `[")]
    assert rows == [readme_row(t) for t in TUNABLES]
