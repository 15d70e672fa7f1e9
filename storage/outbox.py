"""The durable outbox and the seen-ids memory (tables made by storage/leases.py's migration).

``accept`` saves a request (and where its answer goes) in one transaction with its id's first
sighting, so an acknowledged request is on disk before the ack and a replay within the window,
even after a restart, is recognised. Rows are delivered by whoever holds their lease (storage/leases.py).
A row's ``notes`` keep what its delivery must do the same way if it runs again (``note``/``notes``).
"""

from __future__ import annotations

import json
import time

from storage.engine import Database
from storage.transaction import immediate

KEEP_DONE = 24 * 3600.0


class Outbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    def first_seen(self, key: str, ttl: float) -> bool:
        """True the first time ``key`` is seen within ``ttl`` seconds (by any process on this database)."""
        now = time.time()
        cursor = self._db.execute(
            "INSERT INTO seen (key, until) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET until = excluded.until "
            "WHERE seen.until < ?", [key, now + ttl, now])
        first = cursor.rowcount == 1
        if first:
            self._db.execute("DELETE FROM seen WHERE until < ?", [now])  # indexed: the lapsed ones only
        return first

    def seen(self, key: str) -> bool:
        """True when ``key`` was seen and its window has not lapsed; read-only (unlike :meth:`first_seen`)."""
        row = self._db.execute("SELECT 1 FROM seen WHERE key = ? AND until >= ?", [key, time.time()]).fetchone()
        return row is not None

    def forget(self, key: str) -> None:
        """Undo :meth:`first_seen` for ``key``: what it guarded did not happen after all."""
        self._db.execute("DELETE FROM seen WHERE key = ?", [key])

    def accept(self, front: str, kind: str, payload: str, *, seen: str | None = None, ttl: float = 0.0) -> int | None:
        """Save a request to deliver; None when ``seen`` was already seen (a replay: nothing saved)."""
        with immediate(self._db):
            if seen is not None and not self.first_seen(seen, ttl):
                return None  # a replay: first_seen changed no row, so the commit is empty
            row = self._db.execute(
                "INSERT INTO outbox (front, kind, payload, state, created_at) VALUES (?, ?, ?, 'pending', ?) RETURNING id",
                [front, kind, payload, time.time()]).fetchone()
            return int(row[0])

    def done(self, row_id: int) -> None:
        now = time.time()
        self._db.execute("UPDATE outbox SET state = 'done', done_at = ? WHERE id = ?", [now, row_id])
        # what was delivered is kept a day (for whoever looks into a complaint), then dropped
        self._db.execute("DELETE FROM outbox WHERE state = 'done' AND done_at < ?", [now - KEEP_DONE])

    def note(self, row_id: int, key: str, value: str) -> None:
        """Keep ``key`` = ``value`` with the row, committed before this returns (so before the send it is for)."""
        with immediate(self._db):
            notes = self.notes(row_id)
            notes[key] = value
            self._db.execute("UPDATE outbox SET notes = ? WHERE id = ?", [json.dumps(notes), row_id])

    def notes(self, row_id: int) -> dict[str, str]:
        row = self._db.execute("SELECT notes FROM outbox WHERE id = ?", [row_id]).fetchone()
        return {str(k): str(v) for k, v in json.loads(row[0]).items()} if row and row[0] else {}

    def pending(self, front: str) -> list[tuple[int, str, str]]:
        """(id, kind, payload) of what ``front`` still owes, oldest first."""
        rows = self._db.execute("SELECT id, kind, payload FROM outbox WHERE front = ? AND state = 'pending' "
                                "ORDER BY id", [front]).fetchall()
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def state(self, row_id: int) -> str | None:
        row = self._db.execute("SELECT state FROM outbox WHERE id = ?", [row_id]).fetchone()
        return str(row[0]) if row else None


__all__ = ["Outbox"]
