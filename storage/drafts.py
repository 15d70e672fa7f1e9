"""Forms in progress (the WeCom card → page → scene wizard), one per chat and member, with their expiry.

The data is the front-end's own JSON (ids, names, the page typed so far; never a secret). Rows past
their expiry are never answered and are purged as new ones are written.
"""

from __future__ import annotations

import json
from typing import Any

from storage.engine import Database

MIGRATION = "form_drafts"


def migration(db: Database) -> None:
    """The drafts table (migrations.py lists it under :data:`MIGRATION`)."""
    db.execute("""
        CREATE TABLE form_drafts (
            chat TEXT NOT NULL,
            user_id TEXT NOT NULL,
            data TEXT NOT NULL,
            expires_at REAL NOT NULL,
            PRIMARY KEY (chat, user_id)
        )""")
    db.execute("CREATE INDEX form_drafts_expiry ON form_drafts (expires_at)")


class DraftStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def put(self, chat: str, user_id: str, data: dict[str, Any], expires_at: float, now: float) -> None:
        self._db.execute("DELETE FROM form_drafts WHERE expires_at <= ?", [now])
        self._db.execute(
            "INSERT INTO form_drafts (chat, user_id, data, expires_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (chat, user_id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
            [chat, user_id, json.dumps(data, ensure_ascii=False), expires_at])

    def get(self, chat: str, user_id: str, now: float) -> tuple[dict[str, Any], float] | None:
        """(data, expires_at) of a draft still alive at ``now``."""
        row = self._db.execute("SELECT data, expires_at FROM form_drafts WHERE chat = ? AND user_id = ? "
                               "AND expires_at > ?", [chat, user_id, now]).fetchone()
        return (json.loads(row[0]), float(row[1])) if row else None

    def drop(self, chat: str, user_id: str) -> None:
        self._db.execute("DELETE FROM form_drafts WHERE chat = ? AND user_id = ?", [chat, user_id])

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM form_drafts").fetchone()[0])


__all__ = ["MIGRATION", "DraftStore", "migration"]
