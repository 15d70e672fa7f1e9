"""Opening the database: a 0600 file under the data dir, WAL mode, migrations applied in order."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from storage.migrations import migrate, pending

# Called once before migrations that change existing tables run: (connection, data folder, their names).
BeforeChange = Callable[[sqlite3.Connection, Path, list[str]], None]

DB_NAME = "minpcode.db"


def open_database(data_dir: Path | str, before_change: BeforeChange | None = None) -> sqlite_utils.Database:
    """The migrated database in ``data_dir`` (created with owner-only permissions)."""
    directory = Path(data_dir)
    # Owner-only when we create it (an existing folder, a container volume say, keeps its permissions).
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / DB_NAME
    if not path.exists():
        # Create it ourselves so the file is never, even briefly, readable by others.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=30000")
    if before_change is not None:
        hook = before_change
        migrate(db, before_change=lambda names: hook(conn, directory, names))
    else:
        migrate(db)
    return db


def pending_migrations(data_dir: Path | str) -> list[tuple[str, bool]]:
    """What opening the database would migrate, without changing anything: (name, changes existing tables)."""
    path = Path(data_dir) / DB_NAME
    if not path.exists():
        return pending(sqlite_utils.Database(memory=True))
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return pending(sqlite_utils.Database(conn))
    finally:
        conn.close()
