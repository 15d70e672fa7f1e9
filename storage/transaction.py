"""One write transaction: ``with immediate(db):`` instead of hand-written BEGIN IMMEDIATE … COMMIT/ROLLBACK.

``db`` is a store's database (storage/engine.py: SQLite or PostgreSQL) or a bare sqlite3 connection.

Its own module (not storage/db.py) because storage/migrations.py needs it and storage/db.py imports
the migrations.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def immediate(conn: sqlite3.Connection | Any) -> Iterator[None]:
    """The block's statements as one transaction, committed when it ends and rolled back when it raises.

    IMMEDIATE takes the write lock at BEGIN, so two processes writing at once queue on busy_timeout
    rather than failing halfway (a deferred transaction that reads first cannot upgrade to a write
    while another holds it). ``conn`` is in autocommit mode (``isolation_level=None``), as every
    connection storage opens is, so BEGIN is ours to send. A :class:`storage.engine.Database` runs its
    own (on PostgreSQL: one pooled connection held for the block, behind the write lock).
    """
    if not isinstance(conn, sqlite3.Connection):
        with conn.transaction():
            yield
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        # On some errors SQLite has already rolled the whole transaction back (SQLITE_FULL does, on a full
        # disk): a second ROLLBACK would fail with "no transaction is active" and hide the error that
        # matters. A COMMIT that failed (busy, full) leaves it open instead, and it must not stay open.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


__all__ = ["immediate"]
