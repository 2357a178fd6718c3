#!/usr/bin/env bash
# shellcheck disable=SC2016  # the sh -c snippets take their arguments as $1, $2...
# Install one ravens node on a Debian host, or bring it back in line.
# Safe to run again: what is already right is left alone, and a second run
# says "nothing to change". Existing config and secrets are never overwritten.
#
#   sudo deploy/install.sh --node huginn --peer-url https://muninn.example.net \
#        --public-url https://huginn.example.net
#   sudo deploy/install.sh --node muninn --peer-url https://huginn.example.net \
#        --sync-secret-file ./sync-secret       # the secret made on the first node
#   deploy/install.sh ... --dry-run             # print what it would do, do nothing
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=deploy/lib.sh
. "$HERE/lib.sh"

NODE=""
PEER_URL=""
PUBLIC_URL=""
SECRET_FROM=""
SOURCE="$(dirname "$HERE")"

usage() {
    sed -n '3,11p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --node) NODE="${2:-}"; shift 2 ;;
        --peer-url) PEER_URL="${2:-}"; shift 2 ;;
        --public-url) PUBLIC_URL="${2:-}"; shift 2 ;;
        --sync-secret-file) SECRET_FROM="${2:-}"; shift 2 ;;
        --from) SOURCE="${2:-}"; shift 2 ;;
        --root) ROOT="${2:-}"; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage 0 ;;
        *) printf 'unknown option: %s\n' "$1" >&2; usage 2 ;;
    esac
done
case "$NODE" in
    huginn|muninn) ;;
    *) die "--node: expected huginn or muninn, got '${NODE}'" ;;
esac
[ -z "$SECRET_FROM" ] || [ -r "$SECRET_FROM" ] || die "--sync-secret-file: cannot read $SECRET_FROM"
[ -n "$ROOT" ] || [ "$(id -u)" = 0 ] || [ "$DRY_RUN" = 1 ] || die "run as root (or with --dry-run)"

# -- Python ------------------------------------------------------------------
if command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null; then
    ok "python3 $(python3 -c 'import platform; print(platform.python_version())') with venv"
else
    act "install python3 and python3-venv" \
        sh -c 'apt-get update -qq && apt-get install -y -qq python3 python3-venv'
fi

# -- the user ------------------------------------------------------------------
if grep -q '^ravens:' "$(at /etc/passwd)" 2>/dev/null; then
    ok "system user ravens"
else
    root_args=()
    [ -z "$ROOT" ] || root_args=(--root "$ROOT")
    act "create system user ravens" useradd "${root_args[@]}" --system --user-group \
        --home-dir /var/lib/ravens --no-create-home --shell /usr/sbin/nologin ravens
fi

# -- the program ---------------------------------------------------------------
# What is to be installed, as a hash: the wheel or sdist file, or the
# source tree's package files.
source_hash() {
    if [ -f "$SOURCE" ]; then
        sha256sum "$SOURCE" | cut -d' ' -f1
    else
        (cd "$SOURCE" && find pyproject.toml consensus watchers notify -type f \
            ! -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
    fi
}
[ -e "$SOURCE" ] || die "--from: no such file or directory: $SOURCE"
WANT="$(source_hash)"
if [ -x "$(at "$VENV")/bin/python" ]; then
    ok "virtual environment $VENV"
else
    act "create the virtual environment $VENV" python3 -m venv "$(at "$VENV")"
fi
if [ "$(cat "$(at "$VENV")/.source-hash" 2>/dev/null)" = "$WANT" ]; then
    ok "ravens $(ravens --version 2>/dev/null | awk '{print $NF}') installed from this source"
else
    # With uvloop (the [fast] extra) where it installs; without, the node
    # runs on asyncio's own loop and says so in its log.
    act "install ravens from $SOURCE into $VENV" sh -c \
        '{ "$1/bin/python" -m pip install --quiet --upgrade "$2[fast]" ||
           "$1/bin/python" -m pip install --quiet --upgrade "$2"; } &&
         printf "%s\n" "$3" > "$1/.source-hash"' \
        _ "$(at "$VENV")" "$SOURCE" "$WANT"
fi

# -- config and secrets ------------------------------------------------------
ensure_dir() {  # path mode owner
    if [ -d "$(at "$1")" ]; then
        ok "directory $1"
    else
        act "create $1 ($2)" install -d -m "$2" "$(at "$1")"
    fi
}
ensure_dir "$ETC" 0755
ensure_dir "$SECRETS" 0700
ensure_dir "$BACKUPS" 0700

# secret name how: "random" (64 hex characters), "empty", or a file to copy
ensure_secret() {
    local path="$SECRETS/$1"
    if [ -e "$(at "$path")" ]; then
        ok "secret $path (kept as it is)"
    elif [ "$2" = random ]; then
        act "generate $path" sh -c 'umask 077 && python3 -c "import secrets; print(secrets.token_hex(32))" > "$1"' \
            _ "$(at "$path")"
    elif [ "$2" = empty ]; then
        act "create an empty $path (put ntfy's access token here if the topic needs one)" \
            sh -c 'umask 077 && : > "$1"' _ "$(at "$path")"
    else
        act "copy the shared sync secret from $2 to $path" install -m 0600 "$2" "$(at "$path")"
    fi
}
ensure_secret sync-secret "${SECRET_FROM:-random}"
ensure_secret ntfy-token empty
ensure_secret admin-token random

if [ -e "$(at "$CONFIG")" ]; then
    ok "config $CONFIG (kept as it is)"
else
    peer="muninn"
    [ "$NODE" = huginn ] || peer="huginn"
    act "write $CONFIG from deploy/$NODE.toml (peer ${PEER_URL:-as in the example: edit it})" \
        sh -c 'sed -e "s|https://$2.example.net|${3:-https://$2.example.net}|" \
                   -e "s|https://$4.example.net|${5:-https://$4.example.net}|" "$1" > "$6" &&
               chmod 0644 "$6"' \
        _ "$HERE/$NODE.toml" "$peer" "$PEER_URL" "$NODE" "$PUBLIC_URL" "$(at "$CONFIG")"
fi

# -- the unit ----------------------------------------------------------------
UNIT_CHANGED=0
install_file() {  # source target mode [unit]
    if cmp -s "$1" "$(at "$2")"; then
        ok "$2"
    else
        [ "${4:-}" != unit ] || UNIT_CHANGED=1
        act "install $2" sh -c 'mkdir -p "$(dirname "$2")" && install -m "$3" "$1" "$2"' \
            _ "$1" "$(at "$2")" "$3"
    fi
}
# The scripts the units and the sysop run later.
for script in lib.sh backup.sh restore.sh upgrade.sh; do
    install_file "$HERE/$script" "$PREFIX/deploy/$script" 0755
done
install_file "$HERE/ravens.service" "$UNIT" 0644 unit
install_file "$HERE/ravens-backup.service" /etc/systemd/system/ravens-backup.service 0644 unit
install_file "$HERE/ravens-backup.timer" /etc/systemd/system/ravens-backup.timer 0644 unit

# Ping: unprivileged ICMP sockets when the kernel allows the ravens group;
# otherwise the drop-in that grants CAP_NET_RAW and nothing else.
range="$(cat /proc/sys/net/ipv4/ping_group_range 2>/dev/null || echo '1 0')"
gid="$(awk -F: '$1 == "ravens" {print $3}' "$(at /etc/group)" 2>/dev/null || true)"
if [ -n "$gid" ] && [ "$gid" -ge "${range%%[[:space:]]*}" ] && [ "$gid" -le "${range##*[[:space:]]}" ]; then
    ok "unprivileged ping allowed for the ravens group (no capability needed)"
else
    install_file "$HERE/raw-ping.conf" /etc/systemd/system/ravens.service.d/raw-ping.conf 0644 unit
fi

# -- running -----------------------------------------------------------------
if [ "$UNIT_CHANGED" = 1 ]; then
    act "reload systemd's units" "$SYSTEMCTL" daemon-reload
fi
for unit in ravens.service ravens-backup.timer; do
    if "$SYSTEMCTL" is-enabled --quiet "$unit" 2>/dev/null; then
        ok "$unit enabled"
    else
        act "enable and start $unit" "$SYSTEMCTL" enable --now "$unit"
    fi
done
if ! "$SYSTEMCTL" is-active --quiet ravens.service 2>/dev/null; then
    act "start ravens.service" "$SYSTEMCTL" start ravens.service
fi

if [ "$CHANGES" = 0 ]; then
    say "nothing to change: ravens ($NODE) is installed as it should be"
elif [ "$DRY_RUN" = 1 ]; then
    say "$CHANGES change(s) would be made; nothing was done"
else
    say "$CHANGES change(s) made. Next: edit $CONFIG (targets, [ntfy] topic), then"
    say "  systemctl reload ravens; journalctl -u ravens -f"
fi
