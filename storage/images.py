"""Images stored once each, addressed by the SHA-256 of their bytes."""

from __future__ import annotations

import hashlib

from storage.clock import now_text
from storage.engine import Database


class ImageStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def put(self, data: bytes, mime: str) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self._db.execute(
            "INSERT INTO images (sha256, mime, size, bytes, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [digest, mime, len(data), data, now_text()],
        )
        return digest

    def get(self, digest: str) -> tuple[bytes, str] | None:
        row = self._db.execute("SELECT bytes, mime FROM images WHERE sha256 = ?", [digest]).fetchone()
        return (bytes(row[0]), str(row[1])) if row else None

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM images").fetchone()[0])
