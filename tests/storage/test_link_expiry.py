"""When links stop working, as stored over a real SQLite file: the migration that adds ``expires_at`` dates the
temporary Short Links made before it (30 days, WeChat's
https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/shortlink.html), and an expired link is
no longer the one an identical request finds."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils

from bot.models import CodeRequest, Requester, UpstreamResult
from storage import Storage
from storage.clock import from_text, to_text
from storage.migrations import MIGRATIONS, migrate

MADE = "2026-01-01T08:00:00.000000Z"


def test_the_migration_dates_temporary_short_links_made_before(tmp_path: Path) -> None:
    db = sqlite_utils.Database(sqlite3.connect(tmp_path / "old.db", isolation_level=None))
    names = [name for name, _ in MIGRATIONS]
    migrate(db, MIGRATIONS[:names.index("codes_expires_at")])
    for code_id, kind, link, request in (
            ("temp", "shortlink", "#小程序://app/x", {"type": "shortlink", "page": "pages/a/a"}),
            ("perm", "shortlink", "#小程序://app/y", {"type": "shortlink", "page": "pages/a/a", "permanent": True}),
            ("failed", "shortlink", None, {"type": "shortlink", "page": "pages/a/a"}),
            ("code", "B", None, {"type": "B", "page": "pages/a/a", "scene": "x"})):
        db.execute("INSERT INTO codes (id, request_key, type, provider, status, page, link, requested_by, request_json, "
                   "created_at, updated_at) VALUES (?, ?, ?, 'wechat', ?, 'pages/a/a', ?, 'cli:me', ?, ?, ?)",
                   [code_id, code_id, kind, "done" if link or kind == "B" else "failed", link, json.dumps(request),
                    MADE, MADE])
    assert migrate(db) == names[names.index("codes_expires_at"):]
    ends = dict(db.execute("SELECT id, expires_at FROM codes").fetchall())
    assert from_text(ends["temp"]) == from_text(MADE) + timedelta(days=30)
    assert ends["perm"] is None and ends["failed"] is None and ends["code"] is None
    db.conn.close()


def test_an_expired_link_is_not_found_for_reuse(tmp_path: Path) -> None:
    store = Storage.open(tmp_path)
    try:
        request = CodeRequest.parse({"type": "urllink", "page": "pages/a/a"})
        who = Requester(chat="cli", user_id="me")
        record = store.history.save_pending(request, who, key=request.reuse_key(), app="wxapp", sandbox=False).record
        soon = datetime.now(UTC) + timedelta(hours=1)
        store.history.mark_done(record.id, UpstreamResult(provider="wechat", link="https://wxaurl.cn/x", expires_at=soon),
                                None)
        found = store.history.find_by_key(request.reuse_key())
        assert found is not None and found.id == record.id and found.expires_at == soon
        store.db.execute("UPDATE codes SET expires_at = ? WHERE id = ?",
                         [to_text(datetime.now(UTC) - timedelta(seconds=1)), record.id])
        assert store.history.find_by_key(request.reuse_key()) is None
    finally:
        store.close()
