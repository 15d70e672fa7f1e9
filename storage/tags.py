"""Tags on codes (``code_tags``): any code may carry a few short words a team groups codes by (门店, 春节).

Tags arrive normalised (bot/models.py: ``normal_tags``); this store only keeps them. A code's tags are read
for lists and ``show``; a tag's codes are read for ``list tag=…`` and for selections (``repoint tag=…``), as
are a campaign's and a batch's.
"""

from __future__ import annotations

from collections.abc import Iterable

from storage.clock import now_text
from storage.engine import Database
from storage.transaction import immediate

MIGRATION = "code_tags"


def migration(db: Database) -> None:
    """The tags table, on both backends (migrations.py lists it under :data:`MIGRATION`)."""
    db.execute("""
        CREATE TABLE code_tags (
            code_id TEXT NOT NULL REFERENCES codes (id),
            tag TEXT NOT NULL,
            tagged_by TEXT,
            tagged_at TEXT NOT NULL,
            PRIMARY KEY (code_id, tag)
        )""")
    # "the codes with this tag" is the read behind list tag=… and a selection
    db.execute("CREATE INDEX code_tags_tag ON code_tags (tag, code_id)")


class TagStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, code_id: str, tags: Iterable[str], by: str | None) -> list[str]:
        """Add ``tags`` to a code; the ones it did not carry yet are answered."""
        now, added = now_text(), []
        with immediate(self._db):
            for tag in tags:
                found = self._db.execute("INSERT INTO code_tags (code_id, tag, tagged_by, tagged_at) VALUES (?, ?, ?, ?) "
                                         "ON CONFLICT (code_id, tag) DO NOTHING RETURNING tag",
                                         [code_id, tag, by, now]).fetchone()
                if found is not None:
                    added.append(tag)
        return added

    def remove(self, code_id: str, tags: Iterable[str]) -> list[str]:
        """Take ``tags`` off a code; the ones it carried are answered."""
        removed = []
        with immediate(self._db):
            for tag in tags:
                found = self._db.execute("DELETE FROM code_tags WHERE code_id = ? AND tag = ? RETURNING tag",
                                         [code_id, tag]).fetchone()
                if found is not None:
                    removed.append(tag)
        return removed

    def of(self, code_id: str) -> list[str]:
        rows = self._db.execute("SELECT tag FROM code_tags WHERE code_id = ? ORDER BY tag",
                                [code_id]).fetchall()
        return [str(r[0]) for r in rows]

    def of_codes(self, code_ids: list[str]) -> dict[str, list[str]]:
        if not code_ids:
            return {}
        marks = ", ".join("?" * len(code_ids))
        rows = self._db.execute(f"SELECT code_id, tag FROM code_tags WHERE code_id IN ({marks}) "
                                "ORDER BY tag", code_ids).fetchall()
        found: dict[str, list[str]] = {}
        for code_id, tag in rows:
            found.setdefault(str(code_id), []).append(str(tag))
        return found

    def codes(self, tag: str, limit: int = 10_000) -> list[str]:
        """Ids of the codes carrying ``tag``, oldest tagged first."""
        rows = self._db.execute("SELECT code_id FROM code_tags WHERE tag = ? ORDER BY tagged_at, code_id LIMIT ?",
                                [tag, limit]).fetchall()
        return [str(r[0]) for r in rows]

    # The other selections a change to many codes takes (bot/live/selection.py), beside a tag's codes.
    def campaign_codes(self, campaign: str, limit: int = 10_000) -> list[str]:
        """Ids of the codes (not deleted) of the campaign named exactly ``campaign``, oldest first."""
        rows = self._db.execute("SELECT id FROM codes WHERE campaign = ? AND status != 'deleted' "
                                "ORDER BY created_at, id LIMIT ?", [campaign, limit]).fetchall()
        return [str(r[0]) for r in rows]

    def batch_codes(self, batch_id: str, limit: int = 10_000) -> list[str]:
        """Ids of the codes a batch made, in its rows' order."""
        rows = self._db.execute("SELECT code_id FROM batch_rows WHERE batch_id = ? AND code_id IS NOT NULL "
                                "ORDER BY line LIMIT ?", [batch_id, limit]).fetchall()
        return [str(r[0]) for r in rows]


__all__ = ["MIGRATION", "TagStore", "migration"]
