# shellcheck shell=bash disable=SC2034  # the paths are for the scripts that source this
# Shared by install.sh, upgrade.sh, backup.sh and restore.sh: paths, and
# one way to announce, skip (dry run) or carry out each change.

ROOT="${ROOT:-}"                       # a scratch root for tests; empty on a real host
SYSTEMCTL="${SYSTEMCTL:-systemctl}"
PREFIX="/opt/ravens"
VENV="$PREFIX/venv"
ETC="/etc/ravens"
CONFIG="$ETC/ravens.toml"
SECRETS="$ETC/secrets"
UNIT="/etc/systemd/system/ravens.service"
BACKUPS="/var/backups/ravens"
DRY_RUN="${DRY_RUN:-0}"
CHANGES=0

say() { printf '%s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# act "what it does" command...: the one place a change happens.
act() {
    local what="$1"
    shift
    CHANGES=$((CHANGES + 1))
    if [ "$DRY_RUN" = 1 ]; then
        say "would: $what"
        return 0
    fi
    say "+ $what"
    "$@"
}

ok() { say "ok: $*"; }

# The host path of a path on the target system.
at() { printf '%s%s' "$ROOT" "$1"; }

ravens() { "$(at "$VENV")/bin/ravens" "$@"; }

# The node's own HTTP address, from [node] listen in its config.
node_url() {
    local listen
    listen="$(sed -n 's/^listen *= *"\(.*\)".*/\1/p' "$(at "$CONFIG")" | head -n 1)"
    listen="${listen:-127.0.0.1:8470}"
    printf 'http://%s' "${listen/0.0.0.0/127.0.0.1}"
}

# Wait until the node answers /healthz (at most $1 seconds).
wait_healthy() {
    local url deadline
    url="$(node_url)/healthz"
    deadline=$((SECONDS + $1))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if "$(at "$VENV")/bin/python" -c \
            "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
            "$url" 2>/dev/null; then
            return 0
        fi
        sleep 1
    done
    return 1
}
