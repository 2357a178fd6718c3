#!/usr/bin/env bash
# An online backup of the node's database: SQLite's backup API reads one
# consistent snapshot while the node keeps writing; the copy is checked
# (integrity_check) before it gets its dated name in /var/backups/ravens.
#
#   sudo /opt/ravens/deploy/backup.sh [--keep N] [--to DIR]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=deploy/lib.sh
. "$HERE/lib.sh"

KEEP=14
while [ $# -gt 0 ]; do
    case "$1" in
        --keep) KEEP="${2:-}"; shift 2 ;;
        --to) BACKUPS="${2:-}"; shift 2 ;;
        --root) ROOT="${2:-}"; shift 2 ;;
        *) die "unknown option: $1 (expected --keep N, --to DIR)" ;;
    esac
done
case "$KEEP" in ''|*[!0-9]*) die "--keep: expected a whole number, got '$KEEP'" ;; esac

mkdir -p "$(at "$BACKUPS")"
chmod 0700 "$(at "$BACKUPS")"
ravens backup --config "$(at "$CONFIG")" "$(at "$BACKUPS")"
# The newest KEEP stay; names sort by time.
find "$(at "$BACKUPS")" -maxdepth 1 -name 'ravens-*.sqlite3' | sort -r | tail -n "+$((KEEP + 1))" |
    while read -r old; do
        rm -f -- "$old"
        say "removed $old (keeping the last $KEEP)"
    done
