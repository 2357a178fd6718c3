"""Online backup and restore of a node's database.

A backup is SQLite's backup API reading one consistent snapshot while the
node goes on writing (WAL lets readers and the writer pass each other);
the copy is checked before it is given its final name. A restore needs the
node stopped: it checks the backup, keeps the database it replaces, and
puts the backup in its place with the same owner.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path


class BackupError(Exception):
    pass


@dataclass(frozen=True)
class Copy:
    path: Path
    size: int
    log_entries: int
    checks: int


def backup(db: Path, dest: Path) -> Copy:
    """Copy the live database at db to dest (a file), checked."""
    if not db.exists():
        raise BackupError(f"{db}: no database here (is data_dir right?)")
    if dest.is_dir():
        dest = dest / f"ravens-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.sqlite3"
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(partial)
    try:
        source.backup(target)  # all pages in one step: one snapshot
    finally:
        target.close()
        source.close()
    found = check(partial)
    os.replace(partial, dest)
    return Copy(dest, dest.stat().st_size, found.log_entries, found.checks)


def check(path: Path) -> Copy:
    """The backup opens, passes integrity_check and holds a log."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
            entries = db.execute("SELECT count(*) FROM log").fetchone()[0]
            checks = db.execute("SELECT count(*) FROM checks").fetchone()[0]
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: not a ravens database: {exc}") from exc
    if verdict != "ok":
        raise BackupError(f"{path}: integrity_check says {verdict}")
    return Copy(path, path.stat().st_size, int(entries), int(checks))


def restore(source: Path, db: Path, listen: tuple[str, int]) -> Path | None:
    """Put the backup at source in place of db; returns where the replaced
    database was kept (None if there was none)."""
    if _answers(*listen):
        raise BackupError(
            f"something answers on {listen[0]}:{listen[1]}: stop the node first "
            "(systemctl stop ravens)"
        )
    check(source)
    kept = None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    if db.exists():
        kept = db.with_name(f"{db.name}.replaced-{stamp}")
        os.replace(db, kept)
    for suffix in ("-wal", "-shm"):
        side = db.with_name(db.name + suffix)
        if side.exists():
            os.replace(side, db.with_name(f"{db.name}.replaced-{stamp}{suffix}"))
    partial = db.with_name(db.name + ".partial")
    shutil.copyfile(source, partial)
    owner = db.parent.stat()
    os.chown(partial, owner.st_uid, owner.st_gid)
    os.chmod(partial, 0o600)
    os.replace(partial, db)
    return kept


def _answers(host: str, port: int) -> bool:
    host = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False
