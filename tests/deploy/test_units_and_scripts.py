"""deploy/: the systemd units verify and rate well, every script passes
shellcheck, and install.sh into a scratch root changes nothing the second
time."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from watchers.config import load_config

DEPLOY = Path(__file__).parents[2] / "deploy"
SCRIPTS = sorted(DEPLOY.glob("*.sh"))
UNITS = ("ravens.service", "ravens-backup.service", "ravens-backup.timer")
RAVENS = Path(sys.executable).parent / "ravens"

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (Debian: apt-get install systemd)",
)


def runnable_copy(tmp_path: Path) -> Path:
    """The units with their programs pointed at this checkout, so verify
    can check that they exist."""
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        text = text.replace("/opt/ravens/venv/bin/ravens", str(RAVENS))
        text = text.replace("/opt/ravens/deploy/", f"{DEPLOY}/")
        (tmp_path / name).write_text(text)
    return tmp_path


@needs_systemd_analyze
def test_the_units_verify(tmp_path: Path) -> None:
    where = runnable_copy(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(where / u) for u in UNITS)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    # Lines about other units on this machine are not ours to fix.
    ours = [line for line in result.stderr.splitlines() if "ravens" in line]
    assert result.returncode == 0 and not ours, result.stderr


@needs_systemd_analyze
def test_the_node_unit_is_rated_ok_by_systemd_analyze_security(tmp_path: Path) -> None:
    where = runnable_copy(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(where / "ravens.service")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for ravens.service: ([0-9.]+) (\w+)", result.stdout)
    assert found is not None, result.stdout + result.stderr
    print(found.group(0))
    assert float(found.group(1)) <= 2.0 and found.group(2) == "OK", found.group(0)


NO_SHELLCHECK = "shellcheck is not installed (Debian: apt-get install shellcheck)"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason=NO_SHELLCHECK)
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_script_passes_shellcheck(script: Path) -> None:
    result = subprocess.run(["shellcheck", "-x", str(script)], capture_output=True, text=True,
                            check=False, cwd=DEPLOY.parent)  # fmt: skip
    assert result.returncode == 0, result.stdout


FAKE_SYSTEMCTL = """#!/bin/sh
# systemctl for a scratch root: records what it is told, answers from that.
state="$(dirname "$0")/systemctl.state"
touch "$state"
echo "$*" >> "$(dirname "$0")/systemctl.calls"
case "$1" in
    is-enabled) grep -qx "enabled $3" "$state" ;;
    is-active) grep -qx "active $3" "$state" ;;
    enable) echo "enabled $3" >> "$state"; echo "active $3" >> "$state" ;;
    start) echo "active $2" >> "$state" ;;
    *) : ;;
esac
"""


def scratch_root(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A root with the files useradd edits, and a systemctl that only notes."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for name, mode in (("passwd", 0o644), ("group", 0o644), ("shadow", 0o600),
                       ("gshadow", 0o600)):  # fmt: skip
        path = root / "etc" / name
        path.write_text("root:x:0:0:root:/root:/bin/sh\n" if name == "passwd" else
                        "root:x:0:\n" if name == "group" else "root:*::0:::::\n"
                        if name == "shadow" else "root:*::\n")  # fmt: skip
        path.chmod(mode)
    tools = tmp_path / "tools"
    tools.mkdir()
    fake = tools / "systemctl"
    fake.write_text(FAKE_SYSTEMCTL)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return root, {**os.environ, "SYSTEMCTL": str(fake)}


def install(root: Path, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        ["bash", str(DEPLOY / "install.sh"), "--root", str(root), *args],
        capture_output=True, text=True, env=env, check=False, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("useradd") is None,
                    reason="installing into a scratch root needs root and useradd")  # fmt: skip
def test_install_twice_into_a_scratch_root_the_second_run_changes_nothing(
    tmp_path: Path,
) -> None:
    root, env = scratch_root(tmp_path)
    args = ("--node", "huginn", "--peer-url", "https://muninn.biphrost.test",
            "--public-url", "https://huginn.biphrost.test")  # fmt: skip

    dry = install(root, env, *args, "--dry-run")
    assert "would: create system user ravens" in dry and "nothing was done" in dry
    assert not (root / "opt").exists() and not (root / "etc" / "ravens").exists()

    first = install(root, env, *args)
    print(first)
    for step in ("+ create system user ravens", "+ install ravens from",
                 "+ generate /etc/ravens/secrets/sync-secret", "+ write /etc/ravens/ravens.toml",
                 "+ install /etc/systemd/system/ravens.service",
                 "+ enable and start ravens.service"):  # fmt: skip
        assert step in first, step
    assert re.match(r"^ravens:x:\d+:\d+:", (root / "etc/passwd").read_text().splitlines()[-1])
    secret = root / "etc/ravens/secrets/sync-secret"
    assert re.fullmatch(r"[0-9a-f]{64}\n", secret.read_text())
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "etc/ravens/secrets").stat().st_mode) == 0o700
    config = load_config(root / "etc/ravens/ravens.toml")
    checked = subprocess.run(
        [str(RAVENS), "check-config", str(root / "etc/ravens/ravens.toml")],
        capture_output=True, text=True, check=False,
        env={**env, "CREDENTIALS_DIRECTORY": str(root / "etc/ravens/secrets")},
    )  # fmt: skip
    assert checked.returncode == 0 and ": ok: node huginn" in checked.stdout, checked.stderr
    assert [str(p.url) for p in config.peers] == ["https://muninn.biphrost.test/"]
    assert str(config.node.public_url) == "https://huginn.biphrost.test/"
    assert (root / "etc/systemd/system/ravens.service").read_bytes() == (
        DEPLOY / "ravens.service"
    ).read_bytes()
    version = subprocess.run([str(root / "opt/ravens/venv/bin/ravens"), "--version"],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "ravens" in version
    # The [fast] extra: the node runs on uvloop.
    venv_python = str(root / "opt/ravens/venv/bin/python")
    subprocess.run([venv_python, "-c", "import uvloop"], check=True)

    secret_before = secret.read_text()
    second = install(root, env, *args)
    print(second)
    assert "nothing to change" in second
    assert not [line for line in second.splitlines() if line.startswith("+ ")], second
    assert secret.read_text() == secret_before, "a second run never replaces a secret"

    # The second node gets the first node's sync secret. Its program is
    # the first node's, copied: installing one is proven above, and a
    # second pip install would prove it again (25 s of CPU).
    other, env2 = scratch_root(tmp_path / "muninn")
    shutil.copytree(root / "opt", other / "opt", symlinks=True)
    install(other, env2, "--node", "muninn", "--sync-secret-file", str(secret), "--dry-run")
    out = install(other, env2, "--node", "muninn", "--sync-secret-file", str(secret))
    assert "installed from this source" in out and "+ install ravens" not in out, out
    assert "+ copy the shared sync secret" in out
    assert (other / "etc/ravens/secrets/sync-secret").read_text() == secret_before
