"""Batches and their rows: each row's fields, status, code id, poster id and error survive any restart."""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Iterable
from typing import Any

from bot.batch.models import Batch, BatchOrigin, BatchRow, BatchStatus, RowStatus
from storage.clock import from_text, now_text
from storage.engine import Database
from storage.transaction import immediate
from storage.webhooks import Events, record_events

_ALPHABET = string.ascii_lowercase + string.digits
_BATCH = "id, status, origin_json, filename, sha256, encoding, total, created_at, updated_at, finished_at"
_ROW = "batch_id, line, fields_json, status, code_id, error, attempts, poster_id"


def new_batch_id() -> str:
    return "b" + "".join(secrets.choice(_ALPHABET) for _ in range(9))


class Batches:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._poster_counts = (
            "SELECT count(*), count(poster_id), "
            "coalesce(sum(CASE WHEN poster_id IS NULL AND status IN ('done', 'reused') THEN 1 ELSE 0 END), 0) "
            f"FROM batch_rows WHERE batch_id = ? AND {db.json_value('fields_json', 'poster')} IS NOT NULL "
            "AND status NOT IN ('invalid', 'skipped')")

    def create(self, origin: BatchOrigin, *, filename: str, sha256: str, encoding: str,
               rows: Iterable[tuple[int, dict[str, Any], RowStatus, str | None, str | None]]) -> Batch:
        """One transaction: the batch and every row (line, fields, status, code id, error)."""
        batch_id = new_batch_id()
        now = now_text()
        items = list(rows)
        with immediate(self._db):
            self._db.execute(
                f"INSERT INTO batches ({_BATCH}, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                [batch_id, BatchStatus.DRAFT.value, origin.model_dump_json(), filename, sha256, encoding,
                 len(items), now, now, origin.key])
            self._db.executemany(
                "INSERT INTO batch_rows (batch_id, line, fields_json, status, code_id, error, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(batch_id, line, json.dumps(fields, ensure_ascii=False), status.value, code_id, error, now)
                 for line, fields, status, code_id, error in items])
        found = self.get(batch_id)
        assert found is not None
        return found

    def get(self, batch_id: str) -> Batch | None:
        row = self._db.execute(f"SELECT {_BATCH} FROM batches WHERE id = ?", [batch_id.strip()]).fetchone()
        return self._batch(row) if row else None

    def set_origin(self, batch_id: str, origin: BatchOrigin) -> None:
        """Where the batch reports, once its message exists (the chat posts the dry run after storing it)."""
        self._db.execute("UPDATE batches SET origin_json = ? WHERE id = ?", [origin.model_dump_json(), batch_id])

    def status(self, batch_id: str) -> BatchStatus | None:
        """Just the status (checked before each row is submitted, so a cancel from another process is seen)."""
        row = self._db.execute("SELECT status FROM batches WHERE id = ?", [batch_id]).fetchone()
        return BatchStatus(row[0]) if row else None

    def find_open(self, sha256: str, user_id: str) -> Batch | None:
        """The same person's unfinished batch of the same file (re-running a command resumes it)."""
        row = self._db.execute(
            f"SELECT {_BATCH} FROM batches WHERE sha256 = ? AND user_id = ? AND status IN ('draft', 'running') "
            "ORDER BY created_at DESC LIMIT 1", [sha256, user_id]).fetchone()
        return self._batch(row) if row else None

    def recent(self, *, user_id: str | None = None, limit: int = 20) -> list[Batch]:
        where, args = ("WHERE user_id = ?", [user_id]) if user_id else ("", [])
        rows = self._db.execute(
            f"SELECT {_BATCH} FROM batches {where} ORDER BY created_at DESC LIMIT ?", [*args, limit]).fetchall()
        return [self._batch(r) for r in rows]

    def running(self) -> list[Batch]:
        rows = self._db.execute(f"SELECT {_BATCH} FROM batches WHERE status = 'running' ORDER BY created_at").fetchall()
        return [self._batch(r) for r in rows]

    def rows(self, batch_id: str, statuses: Iterable[RowStatus] | None = None) -> list[BatchRow]:
        sql = f"SELECT {_ROW} FROM batch_rows WHERE batch_id = ?"
        args: list[Any] = [batch_id]
        wanted = [s.value for s in statuses] if statuses is not None else None
        if wanted is not None:
            sql += f" AND status IN ({', '.join('?' * len(wanted))})"
            args += wanted
        return [_row(r) for r in self._db.execute(sql + " ORDER BY line", args).fetchall()]

    def counts(self, batch_id: str) -> dict[str, int]:
        return {status: count for status, count in self._db.execute(
            "SELECT status, count(*) FROM batch_rows WHERE batch_id = ? GROUP BY status", [batch_id]).fetchall()}

    def poster_counts(self, batch_id: str) -> dict[str, int]:
        """Rows asking for a poster (``wanted``), those whose poster is made, and those whose poster failed
        (the row's code is made, its poster is not)."""
        wanted, made, failed = self._db.execute(self._poster_counts, [batch_id]).fetchone()
        return {"wanted": int(wanted), "made": int(made), "failed": int(failed)}

    def row_states(self) -> dict[str, int]:
        """Rows of every batch by status (``/metrics``)."""
        return {status: count for status, count in self._db.execute(
            "SELECT status, count(*) FROM batch_rows GROUP BY status").fetchall()}

    def set_status(self, batch_id: str, status: BatchStatus, events: Events | None = None) -> None:
        """``events``: the webhook events of the change (a batch finished), written in its transaction
        (storage/webhooks.py)."""
        now = now_text()
        finished = now if status in (BatchStatus.DONE, BatchStatus.CANCELLED) else None
        with immediate(self._db):
            self._db.execute("UPDATE batches SET status = ?, updated_at = ?, finished_at = ? WHERE id = ?",
                             [status.value, now, finished, batch_id])
            record_events(self._db, events)

    def update_row(self, batch_id: str, line: int, status: RowStatus, *, code_id: str | None = None,
                   error: str | None = None, attempt: bool = False, poster_id: str | None = None) -> None:
        self._db.execute(
            "UPDATE batch_rows SET status = ?, code_id = coalesce(?, code_id), error = ?, "
            "poster_id = coalesce(?, poster_id), attempts = attempts + ?, updated_at = ? "
            "WHERE batch_id = ? AND line = ?",
            [status.value, code_id, error, poster_id, int(attempt), now_text(), batch_id, line])

    def skip_unfinished(self, batch_id: str, error: str) -> int:
        """Cancel: rows not yet submitted are skipped (rows already made stay made)."""
        cursor = self._db.execute(
            "UPDATE batch_rows SET status = 'skipped', error = ?, updated_at = ? WHERE batch_id = ? AND status = 'ready'",
            [error, now_text(), batch_id])
        return int(cursor.rowcount)

    def _batch(self, row: tuple[Any, ...]) -> Batch:
        (batch_id, status, origin, filename, sha256, encoding, total, created, updated, finished) = row
        return Batch(id=batch_id, status=BatchStatus(status), origin=BatchOrigin.model_validate_json(origin),
                     filename=filename, sha256=sha256, encoding=encoding, total=total, counts=self.counts(batch_id),
                     posters=self.poster_counts(batch_id),
                     created_at=from_text(created), updated_at=from_text(updated),
                     finished_at=from_text(finished) if finished else None)


def _row(row: tuple[Any, ...]) -> BatchRow:
    batch_id, line, fields, status, code_id, error, attempts, poster_id = row
    return BatchRow(batch_id=batch_id, line=line, fields=json.loads(fields), status=RowStatus(status),
                    code_id=code_id, error=error, attempts=attempts, poster_id=poster_id)


__all__ = ["Batches", "new_batch_id"]
