"""Job leases: one owner per job at a time, across every process on this data directory.

A job (``code:<id>``, ``outbox:<id>``) is claimed with one upsert that succeeds only when the job is
unleased, its lease has lapsed, or it is already ours; the owner renews it while it works and drops
it when done. A process that dies stops renewing, so its jobs lapse and another one takes them over.
"""

from __future__ import annotations

import time

from storage.engine import Database


class Leases:
    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(self, job: str, owner: str, seconds: float, *, now: float | None = None) -> bool:
        """Take ``job`` for ``seconds`` if nobody else holds a live lease on it."""
        at = time.time() if now is None else now
        cursor = self._db.execute(
            "INSERT INTO leases (job, owner, until) VALUES (?, ?, ?) ON CONFLICT (job) DO UPDATE SET "
            "owner = excluded.owner, until = excluded.until WHERE leases.until < ? OR leases.owner = excluded.owner",
            [job, owner, at + seconds, at])
        return cursor.rowcount == 1

    def take_over(self, job: str, dead: str, owner: str, seconds: float) -> bool:
        """Take ``job`` from ``dead`` (an owner known to be gone) before its lease lapses."""
        cursor = self._db.execute("UPDATE leases SET owner = ?, until = ? WHERE job = ? AND owner = ?",
                                  [owner, time.time() + seconds, job, dead])
        return cursor.rowcount == 1

    def renew(self, job: str, owner: str, seconds: float) -> bool:
        """Extend our lease; False when it is no longer ours (it lapsed and was taken over)."""
        cursor = self._db.execute("UPDATE leases SET until = ? WHERE job = ? AND owner = ?",
                                  [time.time() + seconds, job, owner])
        return cursor.rowcount == 1

    def release(self, job: str, owner: str) -> None:
        self._db.execute("DELETE FROM leases WHERE job = ? AND owner = ?", [job, owner])

    def holder(self, job: str) -> tuple[str, float] | None:
        row = self._db.execute("SELECT owner, until FROM leases WHERE job = ?", [job]).fetchone()
        return (str(row[0]), float(row[1])) if row else None


def migration(db: Database) -> None:
    """Leases, the durable outbox and the seen-ids memory (migrations.py lists it)."""
    db.execute("CREATE TABLE leases (job TEXT PRIMARY KEY, owner TEXT NOT NULL, until REAL NOT NULL)")
    # What a front-end promised to answer, saved before it acked: where to deliver rides in the payload.
    db.execute("""
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            front TEXT NOT NULL,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
            created_at REAL NOT NULL,
            done_at REAL
        )""")
    db.execute("CREATE INDEX outbox_pending ON outbox (front, state, id)")
    # Request ids already handled (Slack signatures, WeCom MsgIds), kept for their replay window.
    db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY, until REAL NOT NULL)")
    db.execute("CREATE INDEX seen_until ON seen (until)")


__all__ = ["Leases", "migration"]
