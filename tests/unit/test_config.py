"""The config file: one declared schema; each kind of mistake named by its key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from watchers.apply_plan import parse_file
from watchers.config import ConfigError, load_config, parse_config
from watchers.secrets import api_tokens, sync_secret, with_secrets

SECRET = "s" * 40
GOOD = """
[node]
name = "huginn"
listen = "127.0.0.1:8470"
data_dir = "/var/lib/ravens"
public_url = "https://huginn.example.net"

[[peers]]
name = "muninn"
url = "https://muninn.example.net:8470"

[sync]
secret_env = "RAVENS_TEST_SECRET"

[defaults]
interval_s = 60

[[canaries]]
host = "9.9.9.9"

[ntfy]
url = "https://ntfy.example.net"
topic = "biphrost-status"

[[targets]]
id = "blog"
kind = "http"
url = "https://blog.example.com/"
keyword = "Welcome"
tags = ["customer"]

[[targets]]
id = "db"
kind = "tcp"
host = "10.0.0.5"
port = 5432

[[targets]]
id = "resolver"
kind = "dns"
query = "example.com"
record_type = "A"
resolver = "9.9.9.9"

[[targets]]
id = "gateway"
kind = "icmp"
host = "10.0.0.1"

[[targets]]
id = "backup"
kind = "push"
grace_s = 90000
token_env = "RAVENS_PUSH_BACKUP"

[[maintenance]]
targets = ["db"]
start = 2026-12-01T02:00:00Z
end = 2026-12-01T03:00:00Z

[[maintenance]]
tags = ["customer"]
days = ["sun"]
from = "02:00"
to = "03:00"
"""


# A customer page before the first maintenance window (which the table replaces).
PAGE = '[[pages]]\nslug = "{slug}"\ntitle = "A"\n{tags}\n\n[[maintenance]]'


def problems(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "node.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def test_the_complete_example_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(GOOD)
    config = load_config(path)
    assert config.node.name == "huginn" and config.node.port == 8470
    assert [t.kind for t in config.targets] == ["http", "tcp", "dns", "icmp", "push"]
    assert config.defaults.fail_threshold == 2
    assert [w.targets or w.tags for w in config.maintenance] == [("db",), ("customer",)]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("[node]", "[node]\ncolour = 'blue'"), "node.colour: unknown key"),
        (('name = "huginn"\n', ""), "node.name: required key missing"),
        (("port = 5432", "port = -5"), "targets[1].port: expected a number of at least 1, got -5"),
        (("port = 5432", 'port = "five"'), "targets[1].port: expected a whole number, got 'five'"),
        (('kind = "tcp"', 'kind = "smtp"'), "targets[1].kind: unknown kind 'smtp'"),
        (('resolver = "9.9.9.9"', 'resolver = "nine"'),
         "targets[2].resolver: expected an IPv4 or IPv6 address, got 'nine'"),
        (('listen = "127.0.0.1:8470"', 'listen = "everywhere"'),
         "node.listen: expected HOST:PORT such as 0.0.0.0:8470, got 'everywhere'"),
        (("interval_s = 60", "interval_s = 0"),
         "defaults.interval_s: expected a number above 0, got 0"),
        (('id = "db"', 'id = "blog"'), "target id 'blog' appears twice"),
        (('id = "db"', 'id = "db"\nparent = "nas"'), "targets[1].parent: no target 'nas'"),
        (('id = "db"', 'id = "db"\nparent = "db"'),
         "targets[1].parent: a cycle of parents (db -> db)"),
        (('url = "https://muninn.example.net:8470"', 'url = "muninn"'),
         "peers[0].url: expected a URL"),
        (('secret_env = "RAVENS_TEST_SECRET"', ""),
         "sync: give exactly one of secret_file or secret_env"),
        (('token_env = "RAVENS_PUSH_BACKUP"', ""),
         "targets[4]: give exactly one of token_file or token_env"),
        (('topic = "biphrost-status"', 'topic = "no spaces allowed"'),
         "ntfy.topic: expected text matching"),
        (('topic = "biphrost-status"', 'topic = "biphrost-status"\nusername = "ops"'),
         "ntfy: give username together with password_file or password_env"),
        (("keyword = \"Welcome\"", "regex = \"(unclosed\""),
         "targets[0].regex: expected a regular expression"),
        (('topic = "biphrost-status"', 'topic = "biphrost-status"\npriority = { downn = 5 }'),
         "ntfy.priority: unknown key 'downn'; expected one of down, up,"),
        (('topic = "biphrost-status"', 'topic = "biphrost-status"\npriority = { down = 6 }'),
         "ntfy.priority.down: expected a number of at most 5, got 6"),
        (('topic = "biphrost-status"', 'topic = "biphrost-status"\ntag_topics = { db = "a b" }'),
         "ntfy.tag_topics.db: expected text matching"),
        (('topic = "biphrost-status"', 'topic = "biphrost-status"\nremind_down_every_s = -1'),
         "ntfy.remind_down_every_s: expected a number of at least 0, got -1"),
        (('topic = "biphrost-status"', 'topic = "biphrost-status"\nescalation_topic = "oncall"'),
         "ntfy: give escalation_topic and escalate_after_s (> 0) together, or neither"),
        (('topic = "biphrost-status"', 'topic = "biphrost-status"\nescalate_after_s = 600'),
         "ntfy: give escalation_topic and escalate_after_s (> 0) together, or neither"),
        (('topic = "biphrost-status"', 'topic = "docs"'),
         "ntfy.topic: ntfy reserves the topic name 'docs' for its own pages (account, app, "
         "docs, file, login, metrics, settings, signup, static, v1): choose another"),
        (('topic = "biphrost-status"', 'topic = "ok"\ntag_topics = { db = "v1" }'),
         "ntfy.tag_topics.db: ntfy reserves the topic name 'v1'"),
        (('topic = "biphrost-status"', 'topic = "biphrost-status"\nweekly_report = "monday"'),
         "ntfy.weekly_report: expected a day and a UTC time such as 'mon 08:00', got 'monday'"),
        (('topic = "biphrost-status"', 'topic = "biphrost-status"\ngroup_min_targets = 1'),
         "ntfy.group_min_targets: expected a number of at least 2, got 1"),
        (('topic = "biphrost-status"', 'topic = "biphrost-status"\nbuttons_expire_after_s = 5'),
         "ntfy.buttons_expire_after_s: expected a number of at least 60, got 5"),
        (("interval_s = 60", "interval_s = 60\ntls_expiry_days = [14, 0]"),
         "defaults.tls_expiry_days[1]: expected a number of at least 1, got 0"),
        (("[[maintenance]]", "[[silences]]\ntargets = []\n\n[[maintenance]]"),
         "silences[0]: name the targets or tags the window covers"),
        (("[[maintenance]]", PAGE.format(slug="Acme Ltd", tags='tags = ["a"]')),
         "pages[0].slug: expected text matching"),
        (("[[maintenance]]", PAGE.format(slug="acme", tags="")),
         "pages[0]: name the tags or targets the page shows"),
        (("[[maintenance]]", PAGE.format(slug="acme", tags='tags = ["a"]').replace(
            "[[maintenance]]", PAGE.format(slug="acme", tags='tags = ["b"]'))),
         "pages[1].slug: 'acme' appears twice"),
    ],
)  # fmt: skip
def test_each_mistake_names_its_key(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in GOOD
    found = problems(GOOD.replace(old, new, 1), tmp_path)
    assert any(expected in p for p in found), found


def test_an_inline_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    found = problems(GOOD.replace("[sync]", '[sync]\nsecret = "hunter2-very-secret"'), tmp_path)
    assert found == [
        "sync.secret: unknown key (secrets come from a *_file or *_env key, never inline)"
    ]
    assert "hunter2" not in "\n".join(found)


def test_bad_toml_says_where(tmp_path: Path) -> None:
    (found,) = problems("[node\nname = 1", tmp_path)
    assert "not valid TOML" in found and "line 1" in found


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read"):
        load_config(tmp_path / "nope.toml")


READ_TOKEN_ENV = '\n[api]\nread_token_env = "RAVENS_TEST_READ"\n'


def test_the_sync_secret_must_be_set_and_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = parse_config(__import__("tomllib").loads(GOOD))
    monkeypatch.delenv("RAVENS_TEST_SECRET", raising=False)
    with pytest.raises(ConfigError, match="RAVENS_TEST_SECRET is not set"):
        sync_secret(config)
    monkeypatch.setenv("RAVENS_TEST_SECRET", "short")
    with pytest.raises(ConfigError, match=r"too short \(5 characters\)") as caught:
        sync_secret(config)
    assert "short" not in str(caught.value).replace("too short", "")
    monkeypatch.setenv("RAVENS_TEST_SECRET", SECRET)
    assert sync_secret(config) == SECRET


def test_a_read_token_must_be_long(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config(__import__("tomllib").loads(GOOD + READ_TOKEN_ENV))
    monkeypatch.setenv("RAVENS_TEST_READ", "x")
    with pytest.raises(ConfigError, match=r"api.read_token: too short \(1 characters\)"):
        api_tokens(config)
    monkeypatch.setenv("RAVENS_TEST_READ", "r" * 32)
    assert api_tokens(config).read == "r" * 32


def test_a_secret_file_under_credentials_directory_is_found_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = GOOD.replace('secret_env = "RAVENS_TEST_SECRET"',
                        'secret_file = "$CREDENTIALS_DIRECTORY/sync-secret"')  # fmt: skip
    config = parse_config(__import__("tomllib").loads(text))
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    unset = r"secret_file: \$CREDENTIALS_DIRECTORY/sync-secret needs \$CREDENTIALS_DIRECTORY"
    with pytest.raises(ConfigError, match=unset):
        sync_secret(config)
    (tmp_path / "sync-secret").write_text(SECRET + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert sync_secret(config) == SECRET


def run_check(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watchers", "check-config", str(path)],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip


def test_check_config_exits_zero_on_a_good_file_and_one_on_a_bad_one(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "RAVENS_TEST_SECRET": SECRET, "RAVENS_PUSH_BACKUP": "p" * 24}
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    done = run_check(good, env)
    assert done.returncode == 0, done.stderr
    assert "ok: node huginn, 1 peer(s), 5 target(s)" in done.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace("port = 5432", "port = 99999"))
    done = run_check(bad, env)
    assert done.returncode == 1
    assert "targets[1].port: expected a number of at most 65535, got 99999" in done.stderr


def test_the_readme_examples_are_valid_configs() -> None:
    import re
    import tomllib

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", readme, re.S)
    names = []
    for block in blocks:
        if "[node]" in block:
            names.append(parse_config(tomllib.loads(block)).node.name)
    assert names == ["huginn", "muninn"]
    # Every snippet of a section is valid in Huginn's file (the file for
    # `ravens targets apply` is its own: checked as apply reads it).
    huginn = next(b for b in blocks if 'name = "huginn"' in b)
    for block in blocks:
        if "[node]" in block:
            continue
        if block.startswith("# targets.toml"):
            parse_file(tomllib.loads(block))
            continue
        merged = tomllib.loads(huginn)
        for key, value in tomllib.loads(block).items():
            if isinstance(value, list):
                merged[key] = [*merged.get(key, []), *value]
            else:
                merged[key] = {**merged.get(key, {}), **value}
        parse_config(merged)


def test_check_config_reads_the_push_tokens_too(tmp_path: Path) -> None:
    import os

    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    env = {k: v for k, v in os.environ.items() if k != "RAVENS_PUSH_BACKUP"}
    done = run_check(good, {**env, "RAVENS_TEST_SECRET": SECRET})
    assert done.returncode == 1
    assert "targets[4].token_env: environment variable RAVENS_PUSH_BACKUP is not set" in done.stderr


def test_secret_headers_are_read_from_a_file_or_the_environment_and_named_when_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tomllib

    from watchers.secrets import with_secrets

    (tmp_path / "blog-auth").write_text("Bearer from-a-file\n")
    monkeypatch.setenv("SHOP_KEY", "from-the-env")
    extra = f"""
[[targets]]
id = "shop"
kind = "http"
url = "https://shop.example.com/"
headers = {{ "X-Site" = "shop" }}
header_file = {{ Authorization = "{tmp_path / "blog-auth"}" }}
header_env = {{ "X-Api-Key" = "SHOP_KEY" }}
"""
    config = with_secrets(parse_config(tomllib.loads(GOOD + extra)))
    shop = next(t for t in config.targets if t.id == "shop")
    assert shop.kind == "http"
    assert shop.headers == {"X-Site": "shop", "Authorization": "Bearer from-a-file",
                            "X-Api-Key": "from-the-env"}  # fmt: skip

    monkeypatch.delenv("SHOP_KEY")
    (tmp_path / "blog-auth").unlink()
    with pytest.raises(ConfigError) as caught:
        with_secrets(parse_config(tomllib.loads(GOOD + extra)))
    problems = caught.value.problems
    assert any(p.startswith("targets[5].header_file.Authorization: cannot read") for p in problems)
    assert "targets[5].header_env.X-Api-Key: environment variable SHOP_KEY is not set" in problems

    twice = extra.replace('"X-Site" = "shop"', '"authorization" = "inline"')
    with pytest.raises(ConfigError, match="header 'authorization' is given more than once"):
        parse_config(tomllib.loads(GOOD + twice))


def test_a_cycle_of_parents_is_named_with_its_chain(tmp_path: Path) -> None:
    text = GOOD.replace('id = "db"', 'id = "db"\nparent = "gateway"', 1)
    text = text.replace('id = "gateway"', 'id = "gateway"\nparent = "blog"', 1)
    text = text.replace('id = "blog"', 'id = "blog"\nparent = "db"', 1)
    found = problems(text, tmp_path)
    assert any("targets[0].parent: a cycle of parents (blog -> db -> gateway -> blog)" in p
               for p in found), found  # fmt: skip


HOOK = """
[[webhooks]]
name = "{name}"
url = "http://127.0.0.1:9/hooks"
secret_env = "RAVENS_TEST_HOOK"
{more}
"""


def _hooks(*sections: str) -> str:
    return GOOD + "".join(sections)


def test_a_webhook_s_mistakes_are_named_by_key(monkeypatch: pytest.MonkeyPatch) -> None:
    tomllib = __import__("tomllib")
    bad_event = _hooks(HOOK.format(name="api", more='events = ["down", "upp"]'))
    with pytest.raises(ConfigError, match=r"webhooks\[0\]\.events\[1\]: .*expected one of"):
        parse_config(tomllib.loads(bad_event))
    twice = _hooks(HOOK.format(name="api", more=""), HOOK.format(name="api", more=""))
    with pytest.raises(ConfigError, match=r"webhooks\[1\]\.name: 'api' appears twice"):
        parse_config(tomllib.loads(twice))
    bad_name = _hooks(HOOK.format(name="API/x", more=""))
    with pytest.raises(ConfigError, match=r"webhooks\[0\]\.name"):
        parse_config(tomllib.loads(bad_name))
    config = parse_config(tomllib.loads(_hooks(HOOK.format(name="api", more=""))))
    monkeypatch.setenv("RAVENS_TEST_HOOK", "short")
    with pytest.raises(ConfigError, match=r"webhooks\[0\]\.secret: too short \(5 bytes\)"):
        with_secrets(config)
    monkeypatch.setenv("RAVENS_TEST_HOOK", "whsec_not base64!")
    with pytest.raises(ConfigError, match=r"webhooks\[0\]\.secret: .*base64"):
        with_secrets(config)
    monkeypatch.setenv("RAVENS_TEST_HOOK", "whsec_" + "A" * 32)
    (hook,) = with_secrets(config).webhooks
    assert hook.key == bytes(24) and hook.wants() is None
