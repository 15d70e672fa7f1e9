"""The database the stores speak to: SQLite in the data folder, or PostgreSQL (``MINPCODE_DATABASE_URL``).

    db = open_engine(url)            # SqliteDatabase over a connection, or PostgresDatabase over a pool
    db.execute(sql, params)          # a cursor-like answer: fetchone(), fetchall(), rowcount, iteration
    db.executemany(sql, rows)
    with immediate(db): ...          # one write transaction (storage/transaction.py)
    db.dialect                       # "sqlite" or "postgresql", for the few seams below

SQL is written once, with ``?`` placeholders (or ``:name`` with a dict), in the words both dialects
accept: ``INSERT … ON CONFLICT … DO NOTHING/UPDATE`` (SQLite 3.24+, https://www.sqlite.org/lang_upsert.html;
PostgreSQL handles every unique index, partial ones included, when DO NOTHING names no conflict target:
https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT), ``RETURNING`` (SQLite 3.35+,
https://www.sqlite.org/lang_returning.html) instead of ``lastrowid``, ``CASE`` instead of summing booleans, an alias on every subquery in FROM, booleans
stored as 0/1 integers on both. Where the dialects differ, a store asks for the piece by name once, when it
is built (never per call): :meth:`json_value`, :meth:`json_flag`; a larger piece (the summary's aggregate,
search, appending scans) branches on :attr:`dialect` in its own store.

On SQLite :meth:`execute` *is* ``sqlite3.Connection.execute``: the resolver's path pays no call of ours.
On PostgreSQL each statement borrows a connection from SQLAlchemy's pool (psycopg 3, autocommit) and gives
it back with every row read, so the event loop and worker threads share the pool; inside a transaction
the block's statements go to the one connection it holds (a context variable: per thread, per task).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, Literal, Protocol

import sqlite_utils

Dialect = Literal["sqlite", "postgresql"]
Params = Sequence[Any] | Mapping[str, Any]

# Every transaction on PostgreSQL takes this advisory lock first, so write transactions queue one at a time
# as SQLite's BEGIN IMMEDIATE makes them (storage/transaction.py): a block that reads then writes (a reuse
# found, the outbox's notes) holds across hosts without each store locking rows by hand.
# https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS
WRITE_LOCK = 0x6D696E70  # "minp"


class Result(Protocol):
    """What :meth:`Database.execute` answers: sqlite3's cursor, or :class:`Rows` on PostgreSQL."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Database(Protocol):
    """One backend: the few calls every store makes (see the module docstring)."""

    dialect: Dialect

    @property
    def execute(self) -> Callable[..., Result]: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def transaction(self) -> Any: ...

    def json_value(self, column: str, key: str) -> str: ...

    def json_flag(self, column: str, key: str) -> str: ...

    def close(self) -> None: ...


class SqliteDatabase:
    """The data folder's SQLite file, over one connection in autocommit mode (storage/db.py opens it)."""

    dialect: Dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        # The connection's own methods, bound once: no call of ours on the hot path.
        self.execute: Callable[..., Result] = conn.execute
        self.executemany: Callable[..., Any] = conn.executemany
        self.utils = sqlite_utils.Database(conn)  # migrations and FTS upkeep use sqlite-utils

    @contextmanager
    def transaction(self) -> Iterator[None]:
        from storage.transaction import immediate
        with immediate(self.conn):
            yield

    def json_value(self, column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"

    def json_flag(self, column: str, key: str) -> str:
        return f"coalesce(json_extract({column}, '$.{key}'), 0)"

    def close(self) -> None:
        self.conn.close()


class Rows:
    """A statement's answer on PostgreSQL, read whole so its connection went back to the pool at once."""

    __slots__ = ("_at", "_rows", "rowcount")

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self._at = 0
        self.rowcount = rowcount

    def fetchone(self) -> Any:  # a row, or None past the last (as sqlite3's cursor answers)
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    def fetchall(self) -> list[tuple[Any, ...]]:
        rest, self._at = self._rows[self._at:], len(self._rows)
        return rest

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.fetchall())


_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|::|\?|%|(?<![:\w]):([A-Za-z_]\w*)")


@lru_cache(maxsize=4096)
def to_driver(sql: str) -> str:
    """``sql`` with our placeholders in psycopg's words: ``?`` -> ``%s``, ``:name`` -> ``%(name)s``, a
    literal ``%`` doubled; quoted strings and names, and ``::`` casts, left as they are. Cached: a store's
    statements are a few hundred fixed strings."""
    def swap(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        if match.group(1):
            return f"%({match.group(1)})s"
        return token.replace("%", "%%")  # psycopg reads % inside literals too
    return _TOKENS.sub(swap, sql)


class PostgresDatabase:
    """A PostgreSQL database over SQLAlchemy's connection pool (psycopg 3), every connection in autocommit."""

    dialect: Dialect = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 5, max_overflow: int = 10) -> None:
        import sqlalchemy
        from sqlalchemy import event

        self.url = url
        self.engine = sqlalchemy.create_engine(
            driver_url(url), pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=False,
            pool_reset_on_return=None)

        @event.listens_for(self.engine, "connect")
        def _autocommit(dbapi_connection: Any, _record: Any) -> None:
            # BEGIN and COMMIT are ours to send (transaction()), as on SQLite (isolation_level=None).
            dbapi_connection.autocommit = True

        self._held: ContextVar[Any | None] = ContextVar(f"minpcode_pg_{id(self)}", default=None)

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        held = self._held.get()
        if held is not None:
            yield held
            return
        pooled = self.engine.raw_connection()
        try:
            yield pooled.driver_connection
        finally:
            _give_back(pooled)

    def execute(self, sql: str, params: Params = ()) -> Rows:
        with self._connection() as conn:
            cursor = conn.execute(to_driver(sql), params)  # never None: psycopg leaves %% as it is then
            rows = cursor.fetchall() if cursor.description is not None else []
            return Rows(rows, cursor.rowcount)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        with self._connection() as conn:
            conn.cursor().executemany(to_driver(sql), rows)

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Load many rows with COPY (imports, benchmarks): an INSERT a row costs a round trip of its own, so a
        million rows took over an hour on a loaded 2-core machine.
        https://www.psycopg.org/psycopg3/docs/basic/copy.html"""
        loaded = 0
        with self._connection() as conn, conn.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    loaded += 1
        return loaded

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._held.get() is not None:
            # SQLite refuses a BEGIN inside a transaction too; here a second connection would wait for the lock
            # the first one holds, for ever.
            raise RuntimeError("a transaction is already open here: storage/transaction.py's immediate() does not nest")
        pooled = self.engine.raw_connection()
        conn: Any = pooled.driver_connection
        token = self._held.set(conn)
        try:
            conn.execute("BEGIN")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK])
            yield
            conn.execute("COMMIT")
        except BaseException:
            if not (conn.closed or conn.broken):  # a dropped connection has nothing to roll back; its error matters
                conn.execute("ROLLBACK")
            raise
        finally:
            self._held.reset(token)
            _give_back(pooled)

    def json_value(self, column: str, key: str) -> str:
        return f"({column}::jsonb ->> '{key}')"

    def json_flag(self, column: str, key: str) -> str:
        # JSON true reads as 1, as SQLite's json_extract gives it
        return f"(CASE WHEN ({column}::jsonb -> '{key}') = 'true'::jsonb THEN 1 ELSE 0 END)"

    def close(self) -> None:
        self.engine.dispose()


def _give_back(pooled: Any) -> None:
    """Back to the pool; a connection the server dropped (a restart, a failover) is thrown away instead, so the
    next statement gets a new one. No ping before each use: on the resolver's path it would double every
    round trip (measured: 3.6 ms a lookup with it, 2.3 ms without, on a loaded 2-core machine); a restart
    costs each pooled connection's next statement its error instead."""
    if pooled.driver_connection is not None and pooled.driver_connection.broken:
        pooled.invalidate()
    pooled.close()


def driver_url(url: str) -> str:
    """``postgresql://…`` (what operators write, what pg_dump takes) in SQLAlchemy's words for psycopg 3."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    raise ValueError("not a postgresql:// URL")


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("postgresql://", "postgres://", "postgresql+psycopg://"))


def database_errors() -> tuple[type[BaseException], ...]:
    """The errors a statement may raise on either backend (``/readyz``, the API's storage handler)."""
    import psycopg
    return (sqlite3.Error, psycopg.Error)


__all__ = ["WRITE_LOCK", "Database", "Dialect", "PostgresDatabase", "Result", "Rows", "SqliteDatabase",
           "database_errors", "driver_url", "is_postgres_url", "to_driver"]
