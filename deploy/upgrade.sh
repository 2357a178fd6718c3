#!/usr/bin/env bash
# Upgrade the node: back up the database, install the new version beside the
# old one, restart (the unit checks the config first; the node migrates its
# database on start), and check that it answers. If anything fails, put the old
# version and the backed-up database back and start that.
#
#   sudo /opt/ravens/deploy/upgrade.sh --from ./ravens-0.2.0-py3-none-any.whl
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=deploy/lib.sh
. "$HERE/lib.sh"

SOURCE=""
while [ $# -gt 0 ]; do
    case "$1" in
        --from) SOURCE="${2:-}"; shift 2 ;;
        --root) ROOT="${2:-}"; shift 2 ;;
        *) die "unknown option: $1 (expected --from WHEEL_OR_SOURCE_DIR)" ;;
    esac
done
if [ -z "$SOURCE" ] || [ ! -e "$SOURCE" ]; then
    die "--from: expected a wheel, sdist or source directory"
fi

before="$(ravens --version | awk '{print $NF}')"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$(at "$BACKUPS")"
backup="$(at "$BACKUPS")/ravens-before-upgrade-$stamp.sqlite3"
ravens backup --config "$(at "$CONFIG")" "$backup"

previous="$(at "$VENV").previous"
rm -rf "$previous"
cp -a "$(at "$VENV")" "$previous"

roll_back() {
    say "upgrade failed: $1; rolling back to $before"
    "$SYSTEMCTL" stop ravens.service || true
    rm -rf "$(at "$VENV")"
    mv "$previous" "$(at "$VENV")"
    ravens restore --config "$(at "$CONFIG")" "$backup"
    "$SYSTEMCTL" start ravens.service
    if wait_healthy 60; then
        die "rolled back to $before, which answers; the failed upgrade changed nothing"
    fi
    die "rolled back to $before, but it does not answer either: journalctl -u ravens -n 50"
}

# With uvloop (the [fast] extra) where it installs, as install.sh does.
"$(at "$VENV")/bin/python" -m pip install --quiet --upgrade "${SOURCE}[fast]" ||
    "$(at "$VENV")/bin/python" -m pip install --quiet --upgrade "$SOURCE" ||
    roll_back "pip could not install $SOURCE"
after="$(ravens --version | awk '{print $NF}')"
# The unit checks the config (with its credentials) before it starts the node.
"$SYSTEMCTL" restart ravens.service || roll_back "$after did not start (journalctl -u ravens)"
wait_healthy 60 || roll_back "$after does not answer on $(node_url)/healthz"
sleep 5  # still up a few seconds later: not crash-looping
"$SYSTEMCTL" is-active --quiet ravens.service || roll_back "$after stopped after starting"
rm -f "$(at "$VENV")/.source-hash"  # the next install.sh run compares afresh
say "upgraded $before -> $after; backup kept at $backup; the old version at $previous until the next upgrade"
