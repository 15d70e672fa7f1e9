"""Long B-code parameters kept under short keys (see ``bot/scenes.py`` for the key format).

One row per distinct parameter string: the same parameters always come back under the same key,
and a key names one parameter string for ever (rows are never changed or deleted, because printed
codes carry the key).
"""

from __future__ import annotations

from storage.clock import now_text
from storage.engine import Database


class SceneStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def key_for(self, params: str) -> str | None:
        """The key these exact parameters already have, if any."""
        row = self._db.execute("SELECT key FROM scenes WHERE params = ?", [params]).fetchone()
        return str(row[0]) if row else None

    def put(self, key: str, params: str, created_by: str | None = None) -> str | None:
        """Store ``params`` under ``key`` unless it has a key already; answer the key it has now.

        None means ``key`` is taken by other parameters: pick another key and call again.
        Concurrent callers storing the same parameters all get the one key that won.
        """
        self._db.execute(
            "INSERT INTO scenes (key, params, created_by, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [key, params, created_by, now_text()],
        )
        return self.key_for(params)

    def get(self, key: str) -> str | None:
        """The parameters stored under ``key``."""
        row = self._db.execute("SELECT params FROM scenes WHERE key = ?", [key]).fetchone()
        return str(row[0]) if row else None

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM scenes").fetchone()[0])
