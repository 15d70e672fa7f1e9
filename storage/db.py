"""Opening the database: a 0600 file under the data dir, WAL mode, migrations applied in order."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from bot.errors import InputError
from storage.migrations import migrate, pending

# Called once before migrations that change existing tables run: (connection, data folder, their names).
BeforeChange = Callable[[sqlite3.Connection, Path, list[str]], None]

DB_NAME = "minpcode.db"
# The primary result codes of a file that is not an SQLite database, or one whose pages are damaged
# (https://www.sqlite.org/rescode.html): a restore fixes these, waiting or retrying never does.
_NOT_A_DATABASE = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB


class DatabaseUnreadable(InputError):
    """The database file is damaged or is not a database: one sentence naming it and the way back."""

    code_name = "database_unreadable"

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"数据库文件 {path} 已损坏或不是数据库，无法打开。请把它移走，再用 minpcode restore <备份.tar.gz> 恢复备份。",
            f"The database file {path} is damaged or not a database and cannot be opened. Move it away, then "
            f"restore a backup with minpcode restore <backup.tar.gz>.")
        self.path = path


def _unreadable(exc: sqlite3.DatabaseError) -> bool:
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _NOT_A_DATABASE


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
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=30000")
        if before_change is not None:
            hook = before_change
            migrate(db, before_change=lambda names: hook(conn, directory, names))
        else:
            migrate(db)
    except sqlite3.DatabaseError as exc:
        if not _unreadable(exc):
            raise
        conn.close()
        raise DatabaseUnreadable(path) from None
    return db


def pending_migrations(data_dir: Path | str) -> list[tuple[str, bool]]:
    """What opening the database would migrate, without changing anything: (name, changes existing tables)."""
    path = Path(data_dir) / DB_NAME
    if not path.exists():
        return pending(sqlite_utils.Database(memory=True))
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return pending(sqlite_utils.Database(conn))
    except sqlite3.DatabaseError as exc:
        if not _unreadable(exc):
            raise
        raise DatabaseUnreadable(path) from None
    finally:
        conn.close()
