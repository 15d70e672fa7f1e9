"""Who created, reused, renamed or deleted what, and when."""

from __future__ import annotations

import json
from typing import Any

from storage.clock import now_text
from storage.engine import Database


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, actor: str, action: str, code_id: str | None, **detail: Any) -> None:
        self._db.execute(
            "INSERT INTO audit (at, actor, action, code_id, detail) VALUES (?, ?, ?, ?, ?)",
            [now_text(), actor, action, code_id, json.dumps(detail, ensure_ascii=False) if detail else None],
        )

    def for_code(self, code_id: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT at, actor, action, detail FROM audit WHERE code_id = ? ORDER BY id", [code_id]
        ).fetchall()
        return [{"at": r[0], "actor": r[1], "action": r[2], "detail": json.loads(r[3]) if r[3] else {}} for r in rows]

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest entries first, for every code."""
        rows = self._db.execute(
            "SELECT at, actor, action, code_id, detail FROM audit ORDER BY id DESC LIMIT ?", [limit]
        ).fetchall()
        return [{"at": r[0], "actor": r[1], "action": r[2], "code_id": r[3], "detail": json.loads(r[4]) if r[4] else {}}
                for r in rows]

    def count(self, action: str, since: str, until: str) -> int:
        return int(self._db.execute(
            "SELECT count(*) FROM audit WHERE action = ? AND at >= ? AND at < ?", [action, since, until]
        ).fetchone()[0])
