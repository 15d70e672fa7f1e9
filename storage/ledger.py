"""The A+C quota ledger: distinct parameter sets WeChat counted against a mini program's lifetime cap."""

from __future__ import annotations

from storage.clock import now_text
from storage.engine import Database
from storage.transaction import immediate
from storage.webhooks import Events, record_events


class QuotaLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    def spend(self, app: str, request_key: str, code_id: str, events: Events | None = None) -> bool:
        """Count ``request_key`` once; False when it was already counted (an identical repeat is free).
        ``events``: the webhook events a new count makes (the cap's thresholds), written in the same transaction
        (storage/webhooks.py); not asked for a repeat."""
        with immediate(self._db):
            cursor = self._db.execute(
                "INSERT INTO quota_keys (app, request_key, code_id, at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [app, request_key, code_id, now_text()],
            )
            counted = cursor.rowcount == 1
            if counted:
                record_events(self._db, events)
        return counted

    def import_keys(self, rows: list[tuple[str, str, str, str]]) -> None:
        """Load (app, request_key, code_id, at) rows at once (imports, benchmarks)."""
        with immediate(self._db):
            self._db.executemany(
                "INSERT INTO quota_keys (app, request_key, code_id, at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", rows
            )

    def counted(self, app: str, request_key: str) -> bool:
        return self._db.execute(
            "SELECT 1 FROM quota_keys WHERE app = ? AND request_key = ?", [app, request_key]
        ).fetchone() is not None

    def used(self, app: str) -> int:
        """Kept by triggers on ``quota_keys`` (migration 008_summary_speed), so reading it costs nothing at any size."""
        row = self._db.execute("SELECT used FROM quota_used WHERE app = ?", [app]).fetchone()
        return int(row[0]) if row else 0

    def apps(self) -> dict[str, int]:
        rows = self._db.execute("SELECT app, used FROM quota_used WHERE used > 0").fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def used_between(self, app: str, since: str, until: str) -> int:
        return int(self._db.execute(
            "SELECT count(*) FROM quota_keys WHERE app = ? AND at >= ? AND at < ?", [app, since, until]
        ).fetchone()[0])
