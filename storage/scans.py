"""Scans of live codes: appended in batches by the flusher (bot/live/scans.py), counted for show/stats/summary.

The flusher writes through its own connection, so a batch is one transaction of its own and never
interleaves with statements other threads run on the shared one.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Literal

from storage.engine import Database
from storage.transaction import immediate

# key, at (Unix seconds), visitor hash, source, the page it was sent to, the platform the router page reported
ScanRow = tuple[str, float, str | None, str, str | None, str | None]
CHUNK = 1000
# The source of a test scan (a develop/trial/review build or the IDE, bot/live/rules.py scan_origin): kept, and
# left out of every figure but the test scans' own. scans_key_at_source covers both kinds of count.
TEST_SOURCE = "test"


class ScanStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._writer: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._writer is None:
            path = next(str(row[2]) for row in self._db.execute("PRAGMA database_list").fetchall() if row[1] == "main")
            self._writer = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._writer.execute("PRAGMA busy_timeout=30000")
        return self._writer

    def add_many(self, rows: Sequence[ScanRow]) -> None:
        if not rows:
            return
        if self._db.dialect == "postgresql":
            # One statement per CHUNK rows here too; the pool gives the flusher a connection of its own.
            with immediate(self._db):
                for start in range(0, len(rows), CHUNK):
                    batch = json.dumps(rows[start:start + CHUNK], separators=(",", ":"))
                    self._db.execute(
                        "INSERT INTO scans (key, at, visitor, source, page, platform) SELECT value ->> 0, "
                        "(value ->> 1)::float8, value ->> 2, value ->> 3, value ->> 4, value ->> 5 "
                        "FROM jsonb_array_elements(?::jsonb) AS batch", [batch])
            return
        with self._lock:
            conn = self._connection()
            # A statement per CHUNK rows, not per row: executemany takes the GIL back for every row, and
            # on a busy server each take waits behind the event loop (a second of scans took seconds to
            # write and slowed every answer). A chunk's step runs without the GIL; encoding it holds the
            # GIL well under a millisecond, so the loop is never held up for long.
            with immediate(conn):
                for start in range(0, len(rows), CHUNK):
                    batch = json.dumps(rows[start:start + CHUNK], separators=(",", ":"))
                    conn.execute("INSERT INTO scans (key, at, visitor, source, page, platform) SELECT value ->> 0, "
                                 "value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 FROM json_each(?)",
                                 [batch])

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def count(self, key: str, since: float | None = None, until: float | None = None, *, tests: bool = False) -> int:
        """Scans of ``key`` in ``[since, until)``: the real ones, or with ``tests`` the test scans."""
        sql, args = f"SELECT count(*) FROM scans WHERE key = ? AND source {'=' if tests else '<>'} ?", [key, TEST_SOURCE]
        if since is not None:
            sql, args = sql + " AND at >= ?", [*args, since]  # type: ignore[list-item]
        if until is not None:
            sql, args = sql + " AND at < ?", [*args, until]  # type: ignore[list-item]
        return int(self._db.execute(sql, args).fetchone()[0])

    def unique(self, key: str) -> int:
        return int(self._db.execute("SELECT count(DISTINCT visitor) FROM scans WHERE key = ? AND visitor IS NOT NULL "
                                    "AND source <> ?", [key, TEST_SOURCE]).fetchone()[0])

    def per_bucket(self, key: str, bounds: Sequence[float]) -> list[int]:
        """Scans of ``key`` in each interval ``[bounds[i], bounds[i+1])``."""
        return [self.count(key, lo, hi) for lo, hi in zip(bounds, bounds[1:], strict=False)]

    def by(self, key: str, column: Literal["page", "platform", "source"], since: float | None = None,
           until: float | None = None) -> dict[str | None, int]:
        """Real scans of ``key`` in ``[since, until)`` counted per value of ``column`` (None: not known)."""
        sql, args = f"SELECT {column}, count(*) FROM scans WHERE key = ? AND source <> ?", [key, TEST_SOURCE]
        if since is not None:
            sql, args = sql + " AND at >= ?", [*args, since]  # type: ignore[list-item]
        if until is not None:
            sql, args = sql + " AND at < ?", [*args, until]  # type: ignore[list-item]
        rows = self._db.execute(sql + f" GROUP BY {column}", args).fetchall()
        return {(str(v) if v is not None else None): int(n) for v, n in rows}

    def pages_per_bucket(self, key: str, bounds: Sequence[float]) -> list[dict[str | None, int]]:
        """Real scans of ``key`` per page they were sent to, in each interval ``[bounds[i], bounds[i+1])``."""
        return [self.by(key, "page", lo, hi) for lo, hi in zip(bounds, bounds[1:], strict=False)]

    def export(self, key: str, since: float | None = None) -> Iterator[tuple[float, str | None, str | None, str,
                                                                                str | None]]:
        """Every scan of ``key`` (test scans too) since ``since``, oldest first: (at, page, platform, source,
        visitor hash). Read in pages of CHUNK by id, so a long history is never held at once."""
        last = 0
        while True:
            sql = "SELECT id, at, page, platform, source, visitor FROM scans WHERE key = ? AND id > ?"
            args: list[object] = [key, last]
            if since is not None:
                sql, args = sql + " AND at >= ?", [*args, since]
            rows = self._db.execute(sql + " ORDER BY id LIMIT ?", [*args, CHUNK]).fetchall()
            for row_id, at, page, platform, source, visitor in rows:
                last = int(row_id)
                yield (float(at), str(page) if page is not None else None,
                       str(platform) if platform is not None else None, str(source),
                       str(visitor) if visitor is not None else None)
            if len(rows) < CHUNK:
                return

    def totals(self, keys: Sequence[str]) -> dict[str, int]:
        if not keys:
            return {}
        marks = ", ".join("?" * len(keys))
        rows = self._db.execute(f"SELECT key, count(*) FROM scans WHERE key IN ({marks}) AND source <> ? GROUP BY key",
                                [*keys, TEST_SOURCE]).fetchall()
        return {str(k): int(n) for k, n in rows}

    def top(self, since: float, until: float, limit: int = 5) -> list[tuple[str, int]]:
        """The most scanned keys in ``[since, until)``, most first."""
        rows = self._db.execute(
            "SELECT key, count(*) AS n FROM scans WHERE at >= ? AND at < ? AND source <> ? GROUP BY key "
            "ORDER BY n DESC, key LIMIT ?", [since, until, TEST_SOURCE, limit]).fetchall()
        return [(str(k), int(n)) for k, n in rows]


__all__ = ["CHUNK", "TEST_SOURCE", "ScanRow", "ScanStore"]
