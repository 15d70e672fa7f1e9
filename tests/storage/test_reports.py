"""The storage reads that had to become fast at a million rows (issue 11) still count the truth.

Migration 008 fills the per-app quota counts from an existing ledger and keeps them with triggers;
``Reports.period`` puts rows on local days by the day starts it is given (exact across a DST switch).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils

from storage import Storage
from storage.clock import to_text
from storage.migrations import MIGRATIONS, migrate


def test_migration_008_counts_an_existing_ledger_and_triggers_keep_it(tmp_path: Path) -> None:
    db = sqlite_utils.Database(tmp_path / "minpcode.db")
    cut = next(i for i, (name, _) in enumerate(MIGRATIONS) if name == "008_summary_speed")
    migrate(db, MIGRATIONS[:cut])  # a database from before 008, with a ledger
    db.conn.executemany("INSERT INTO quota_keys (app, request_key, code_id, at) VALUES (?, ?, ?, ?)",
                        [("wxa", f"k{i}", f"c{i}", to_text(datetime.now(UTC))) for i in range(5)]
                        + [("wxb", "k0", "d0", to_text(datetime.now(UTC)))])
    db.conn.commit()
    db.close()
    store = Storage.open(tmp_path)
    assert (store.ledger.used("wxa"), store.ledger.used("wxb"), store.ledger.used("none")) == (5, 1, 0)
    assert store.ledger.spend("wxa", "k9", "c9") and not store.ledger.spend("wxa", "k9", "c9")
    assert store.ledger.used("wxa") == 6 and store.ledger.apps() == {"wxa": 6, "wxb": 1}
    store.close()


def test_period_days_follow_the_day_starts_given(tmp_path: Path, database_url: str | None) -> None:
    store = Storage.open(tmp_path, database_url)
    start = datetime(2025, 3, 8, 5, 0, tzinfo=UTC)  # three local days of 24, 23 and 24 hours (a DST switch)
    starts = [start + timedelta(hours=24), start + timedelta(hours=47)]
    at = [start + timedelta(hours=h) for h in (0, 23.9, 24, 46.9, 47, 70)]

    def row(i: int, when: datetime) -> dict[str, object]:
        return {"id": f"code{i:08d}", "request_key": f"{i:032x}", "type": "B", "provider": "wechat",
                "status": "done", "page": "pages/a/a", "scene": f"id={i}", "campaign": "c" if i % 2 else None,
                "channel": "ch", "width": 430, "transparent": 0, "requested_by": "cli:alice", "chat": "cli",
                "sandbox": 0, "attempts": 1, "request_json": "{}", "created_at": to_text(when),
                "updated_at": to_text(when)}

    store.history.import_rows(row(i, when) for i, when in enumerate(at))
    counts = store.reports.period(to_text(start), to_text(start + timedelta(hours=71)), [to_text(s) for s in starts])
    assert counts.daily_total == {0: 2, 1: 2, 2: 2} and counts.made == counts.requested == 6
    assert dict(counts.by_campaign) == {"c": 3, None: 3} and counts.daily_campaign[1] == {"": 1, "c": 1}
    assert counts.top_pages == [("pages/a/a", 6)] and dict(counts.by_person) == {"cli:alice": 6}
    store.close()
