"""Reading the history the way every front-end asks for it: one record by id, and pages with text, type,
status and requester filters.

The storage filters by requester and text; type and status are filtered here, reading rows in
batches, so a page holds exactly ``limit`` matching records and says whether more follow.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from bot.errors import NotFound
from bot.models import CodeRecord, CodeType, Status
from storage import Storage
from storage.clock import from_text

SCAN_BATCH = 500  # rows read at a time when filtering history by type or status


class HistoryQuery(BaseModel):
    """One page of history as a front-end asks for it (newest first)."""

    text: str | None = None
    type: CodeType | None = None
    status: Status | None = None
    requested_by: str | None = None
    mine: bool = False
    limit: int = 20
    offset: int = 0


class AuditEntry(BaseModel):
    """One line of the audit log: who did what to which code, and when (UTC)."""

    at: datetime
    actor: str
    action: str
    code_id: str | None = None
    detail: dict[str, Any] = {}


def get_record(storage: Storage, code_id: str) -> CodeRecord:
    """The record with this id, or NotFound (every verb that takes a code id answers the same)."""
    record = storage.history.get(code_id.strip())
    if record is None:
        raise NotFound(f"没有编号为 {code_id} 的码。", f"There is no code with id {code_id}.")
    return record


def audit_trail(storage: Storage, code_id: str | None = None, limit: int = 50) -> list[AuditEntry]:
    """One code's history, oldest first; or the newest ``limit`` entries of every code."""
    if code_id is not None:
        rows = [row | {"code_id": code_id} for row in storage.audit.for_code(code_id)]
    else:
        rows = storage.audit.recent(limit)
    return [AuditEntry.model_validate(row | {"at": from_text(row["at"])}) for row in rows]


class HistoryPage(BaseModel):
    items: list[CodeRecord]
    limit: int
    offset: int
    next_offset: int | None = None


def page(storage: Storage, query: HistoryQuery, who: str | None) -> HistoryPage:
    """One page, newest first; ``who`` limits it to one requester's codes."""
    history = storage.history

    def fetch(limit: int, offset: int) -> list[CodeRecord]:
        if query.text and query.text.strip():
            return history.search(query.text, requested_by=who, limit=limit, offset=offset)
        return history.recent(requested_by=who, limit=limit, offset=offset,
                              include_deleted=query.status is Status.DELETED)

    if query.type is None and query.status is None:
        rows = fetch(query.limit + 1, query.offset)
        records, more = rows[: query.limit], len(rows) > query.limit
    else:
        matched: list[CodeRecord] = []
        skip, position = query.offset, 0
        while len(matched) <= query.limit:
            rows = fetch(SCAN_BATCH, position)
            position += len(rows)
            for record in rows:
                if (query.type and record.type is not query.type) or (query.status and record.status is not query.status):
                    continue
                if skip:
                    skip -= 1
                else:
                    matched.append(record)
            if len(rows) < SCAN_BATCH:
                break
        records, more = matched[: query.limit], len(matched) > query.limit
    return HistoryPage(items=records, limit=query.limit, offset=query.offset,
                       next_offset=query.offset + len(records) if more else None)


__all__ = ["SCAN_BATCH", "AuditEntry", "HistoryPage", "HistoryQuery", "audit_trail", "page"]
