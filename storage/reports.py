"""Aggregate reads for summaries that the other stores do not offer (no writes here)."""

from __future__ import annotations

import sqlite_utils
from pydantic import BaseModel


class ReuseRow(BaseModel):
    """One "reused" audit entry joined with the code that was offered again."""

    actor: str
    code_id: str | None = None
    type: str | None = None
    app: str | None = None
    page: str | None = None
    campaign: str | None = None
    channel: str | None = None
    requested_by_name: str | None = None


class Reports:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def reuses(self, since: str, until: str) -> list[ReuseRow]:
        """Every reuse recorded in [since, until), with the reused code's type, app and page."""
        rows = self._db.execute(
            "SELECT a.actor, a.code_id, c.type, c.app, c.page, c.campaign, c.channel, "
            "(SELECT c2.requested_by_name FROM codes c2 WHERE c2.requested_by = a.actor "
            " AND c2.requested_by_name IS NOT NULL ORDER BY c2.created_at DESC LIMIT 1) "
            "FROM audit a LEFT JOIN codes c ON c.id = a.code_id "
            "WHERE a.action = 'reused' AND a.at >= ? AND a.at < ? ORDER BY a.at",
            [since, until],
        ).fetchall()
        names = ("actor", "code_id", "type", "app", "page", "campaign", "channel", "requested_by_name")
        return [ReuseRow.model_validate(dict(zip(names, row, strict=True))) for row in rows]


__all__ = ["Reports", "ReuseRow"]
