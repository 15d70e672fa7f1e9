"""Opening the database: a 0600 file under the data dir, WAL mode, migrations applied in order; or a
PostgreSQL database (``MINPCODE_DATABASE_URL``), set up at start when new and migrated only with the
operator's go-ahead when it holds data."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from bot.errors import InputError, StorageUnavailable
from storage.engine import PostgresDatabase, SqliteDatabase, is_postgres_url
from storage.migrations import migrate, pending

# Called once before migrations that change existing tables run: (connection, data folder, their names).
BeforeChange = Callable[[sqlite3.Connection, Path, list[str]], None]

DB_NAME = "minpcode.db"
log = logging.getLogger("minpcode.storage")
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


class MigrationNeedsGoAhead(InputError):
    """A PostgreSQL database that holds data would be changed by a migration: one line saying how to go on."""

    code_name = "migration_needs_go_ahead"

    def __init__(self, names: list[str]) -> None:
        listed = ", ".join(names)
        super().__init__(
            f"PostgreSQL 数据库需要迁移（{listed}），会改动已有的表。请先备份（pg_dump -Fc -f minpcode.dump \"$MINPCODE_DATABASE_URL\"），"
            f"再用 MINPCODE_MIGRATE=yes 启动一次。",
            f"The PostgreSQL database needs migrations that change existing tables ({listed}). Take a backup first "
            f"(pg_dump -Fc -f minpcode.dump \"$MINPCODE_DATABASE_URL\"), then start once with MINPCODE_MIGRATE=yes.")
        self.names = names


def open_postgres(url: str, *, go_ahead: bool = False) -> PostgresDatabase:
    """The migrated PostgreSQL database at ``url``. A new, empty one is set up without asking; one that holds
    data is changed by a migration that alters existing tables only with ``go_ahead`` (MINPCODE_MIGRATE=yes),
    since there is no file here to copy first (:class:`MigrationNeedsGoAhead` says how)."""
    db = PostgresDatabase(url)
    try:
        def refuse(names: list[str]) -> None:
            if not go_ahead:
                raise MigrationNeedsGoAhead(names)
            log.warning("Migrating the PostgreSQL database (MINPCODE_MIGRATE=yes): %s", ", ".join(names))
        migrate(db, before_change=refuse)
    except BaseException:
        db.close()
        raise
    return db


def open_database(data_dir: Path | str, before_change: BeforeChange | None = None) -> SqliteDatabase:
    """The migrated database in ``data_dir`` (created with owner-only permissions)."""
    directory = Path(data_dir)
    # Owner-only when we create it (an existing folder, a container volume say, keeps its permissions).
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / DB_NAME
    if not path.exists():
        # Create it ourselves so the file is never, even briefly, readable by others.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        # Said aloud: after a lost file this line is how an operator learns the history starts over.
        log.info("No database at %s: created a new, empty one (to bring one back: minpcode restore)", path)
    os.chmod(path, 0o600)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    db = SqliteDatabase(conn)
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


class FileWatch:
    """Whether the database file we opened is still the file at its path.

    SQLite keeps writing to an open file after it is deleted (or replaced by a restore): every answer
    stays 200 while nothing would survive a restart. Comparing the open file's device and inode with
    the path's costs one ``stat``; :meth:`problem` makes it at most once a second, logs the loss once,
    and stays red until the process restarts (a file put back at the path is another file)."""

    INTERVAL = 1.0  # seconds between two stats of the path

    def __init__(self, path: Path) -> None:
        self.path = path
        found = os.stat(path)  # just opened: the path still names the file the connection holds
        self._identity = (found.st_dev, found.st_ino)
        self._checked = time.monotonic()
        self._lost: StorageUnavailable | None = None

    def problem(self) -> StorageUnavailable | None:
        """Why writes would be lost, or None while the file at the path is the one we opened."""
        now = time.monotonic()
        if self._lost is not None or now - self._checked < self.INTERVAL:
            return self._lost
        self._checked = now
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            self._lost = _gone(self.path, "deleted")
        else:
            if (found.st_dev, found.st_ino) != self._identity:
                self._lost = _gone(self.path, "replaced")
        if self._lost is not None:
            log.error("%s", self._lost.en)
        return self._lost


def _gone(path: Path, how: str) -> StorageUnavailable:
    zh_how, en_how = ("被删除", "deleted") if how == "deleted" else ("被另一个文件替换", "replaced by another file")
    return StorageUnavailable(
        f"数据库文件 {path} 在运行中{zh_how}了：新写入的数据重启后都会丢失，所以暂停写入。请恢复它（minpcode restore）后重启 minpcode。",
        f"The database file {path} was {en_how} while minpcode was running: anything written now would be lost at "
        f"the next start, so writes are refused. Restore it (minpcode restore) and restart minpcode.", how)


def pending_migrations(data_dir: Path | str, database_url: str | None = None) -> list[tuple[str, bool]]:
    """What opening the database would migrate, without changing anything: (name, changes existing tables)."""
    if is_postgres_url(database_url):
        assert database_url is not None
        db = PostgresDatabase(database_url)
        try:
            return pending(db)
        finally:
            db.close()
    path = Path(data_dir) / DB_NAME
    if not path.exists():
        return pending(sqlite_utils.Database(memory=True))
    with _read_only(path) as conn:
        return pending(sqlite_utils.Database(conn))


def server_version(url: str) -> str:
    """The PostgreSQL server's version at ``url``, read over one short connection (doctor)."""
    db = PostgresDatabase(url, pool_size=1, max_overflow=0)
    try:
        return str(db.execute("SHOW server_version").fetchone()[0])
    finally:
        db.close()


def recorded_codes(data_dir: Path | str, database_url: str | None = None) -> int:
    """How many codes the database in ``data_dir`` (or at ``database_url``) holds, read without changing anything.

    0 when there is no database there, or an empty one (any command opening a new folder leaves one,
    migrated and without a code). :class:`DatabaseUnreadable` when the file is damaged."""
    if is_postgres_url(database_url):
        assert database_url is not None
        db = PostgresDatabase(database_url, pool_size=1, max_overflow=0)
        try:
            if db.execute("SELECT to_regclass('codes')").fetchone()[0] is None:
                return 0
            return int(db.execute("SELECT count(*) FROM codes").fetchone()[0])
        finally:
            db.close()
    path = Path(data_dir) / DB_NAME
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    with _read_only(path) as conn:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'codes'").fetchone() is None:
            return 0
        return int(conn.execute("SELECT count(*) FROM codes").fetchone()[0])


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """The database at ``path`` opened read-only; a damaged file is :class:`DatabaseUnreadable`."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        yield conn
    except sqlite3.DatabaseError as exc:
        if not _unreadable(exc):
            raise
        raise DatabaseUnreadable(path) from None
    finally:
        conn.close()
