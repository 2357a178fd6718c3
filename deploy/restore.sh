#!/usr/bin/env bash
# Put a backup in place of the node's database: stops the node, checks the
# backup, keeps the database it replaces beside it, starts the node again and
# waits until it answers. After a restore the node pulls from its peer what
# happened since the backup was taken.
#
#   sudo /opt/ravens/deploy/restore.sh /var/backups/ravens/ravens-20261129T030000Z.sqlite3
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=deploy/lib.sh
. "$HERE/lib.sh"

[ $# -eq 1 ] || die "usage: restore.sh BACKUP_FILE"
BACKUP="$1"
[ -r "$BACKUP" ] || die "cannot read $BACKUP"

"$SYSTEMCTL" stop ravens.service
ravens restore --config "$(at "$CONFIG")" "$BACKUP"
"$SYSTEMCTL" start ravens.service
if wait_healthy 60; then
    say "restored from $BACKUP; the node answers"
else
    die "the node does not answer after the restore: journalctl -u ravens -n 50"
fi
