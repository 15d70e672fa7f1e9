"""The history of code requests: one row per request, from ``pending`` to ``done``/``failed``/``deleted``."""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Iterable
from typing import Any, NamedTuple

from bot.models import CodeRecord, CodeRequest, CodeType, Provider, Requester, Status, UpstreamResult
from bot.text import Text
from storage import pg_schema
from storage.clock import from_text, now_text, to_text
from storage.engine import Database, PostgresDatabase, SqliteDatabase
from storage.transaction import immediate
from storage.webhooks import Events, record_events

_ID_ALPHABET = string.ascii_lowercase + string.digits
ID_LENGTH = 12  # 36^12 ≈ 4.7e18: ids in image links cannot be guessed or enumerated

_COLUMNS = (
    "id, request_key, type, provider, status, app, page, scene, name, campaign, campaign_id, channel, "
    "channel_id, medium, content, term, comments, width, transparent, title, link, tracking_url, link_id, "
    "image_sha256, image_mime, error_code, error_zh, error_en, requested_by, requested_by_name, chat, chat_channel, "
    "sandbox, attempts, request_json, created_at, updated_at, error_raw, expires_at, copy_of"
)
# A sharper copy (bot/posters/service.py) names its original in copy_of: lists and counts show the original only.
_ORIGINALS = "copy_of IS NULL"
_TAGGED = "c.id IN (SELECT code_id FROM code_tags WHERE tag = ?)"  # list tag=… (storage/tags.py)
_NAMES = tuple(c.strip() for c in _COLUMNS.split(","))


class Saved(NamedTuple):
    """What ``save_pending`` answers: the request's live row, and whether this call wrote it."""

    record: CodeRecord
    new: bool


def new_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_LENGTH))


class History:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._links_made = (
            "SELECT app, count(*) FROM codes WHERE type IN ('urllink', 'scheme') AND link IS NOT NULL "
            f"AND {db.json_flag('request_json', 'plain')} = 0 AND created_at >= ? AND app IS NOT NULL GROUP BY app",
            "SELECT app, count(*) FROM codes WHERE type = 'shortlink' AND link IS NOT NULL "
            f"AND {db.json_flag('request_json', 'permanent')} = 1 AND app IS NOT NULL GROUP BY app")

    # -- writing ------------------------------------------------------------------------------
    def save_pending(self, request: CodeRequest, requester: Requester, *, key: str, app: str | None,
                     sandbox: bool, copy_of: str | None = None) -> Saved:
        """Record the request before any upstream call, so nothing is lost if the process dies; or, when a
        pending or made code already has ``key``, write nothing and hand that one back (``new`` False).

        The database decides (the unique index ``codes_one_live_per_key``), so identical requests arriving
        at two processes at once get one row: the one that came second learns it here. ``copy_of``: the code
        this one is a sharper copy of.
        """
        code_id = new_id()
        now = now_text()
        # One transaction: the live row found on a conflict cannot fail or be deleted before it is read.
        # (Nothing else can conflict: the id is one of 36^12.)
        with immediate(self._db):
            inserted = self._db.execute(
                f"INSERT INTO codes ({_COLUMNS}) VALUES ({', '.join('?' * len(_NAMES))}) ON CONFLICT DO NOTHING",
                [code_id, key, request.type.value, request.provider.value, Status.PENDING.value, app, request.page,
                 request.scene, request.name, request.campaign, None, request.channel, None, request.medium,
                 request.content, request.term, request.comments, request.width, int(request.transparent),
                 request.title, None, None, None, None, None, None, None, None, requester.key, requester.user_name,
                 requester.chat, requester.channel_id, int(sandbox), 0,
                 request.model_dump_json(exclude_none=True), now, now, None, None, copy_of],
            ).rowcount == 1
            record = self.get(code_id) if inserted else self.find_by_key(key)
        assert record is not None
        return Saved(record, inserted)

    def start_attempt(self, code_id: str) -> int:
        self._db.execute("UPDATE codes SET attempts = attempts + 1, updated_at = ? WHERE id = ?", [now_text(), code_id])
        return int(self._db.execute("SELECT attempts FROM codes WHERE id = ?", [code_id]).fetchone()[0])

    def mark_done(self, code_id: str, result: UpstreamResult, image_sha256: str | None,
                  events: Events | None = None) -> None:
        """The code is made; ``events`` (the webhook events it makes) written in the same transaction
        (storage/webhooks.py)."""
        with immediate(self._db):
            self._db.execute(
                "UPDATE codes SET status = 'done', link = ?, tracking_url = ?, link_id = ?, image_sha256 = ?, "
                "image_mime = ?, campaign = coalesce(?, campaign), campaign_id = ?, channel = coalesce(?, channel), "
                "channel_id = ?, error_code = NULL, error_zh = NULL, error_en = NULL, error_raw = NULL, "
                "expires_at = ?, updated_at = ? WHERE id = ?",
                [result.link, result.tracking_url, result.link_id, image_sha256, result.mime, result.campaign_name,
                 result.campaign_id, result.channel_name, result.channel_id,
                 to_text(result.expires_at) if result.expires_at else None, now_text(), code_id],
            )
            record_events(self._db, events)

    def mark_failed(self, code_id: str, code: str | None, message: Text, raw: str | None = None,
                    events: Events | None = None) -> None:
        """``code``: the upstream's own code or a stable name of ours; ``message``: what to tell people;
        ``raw``: what the upstream answered (already redacted), kept for whoever looks into it; ``events``: the
        webhook events the failure makes, written in the same transaction (storage/webhooks.py)."""
        with immediate(self._db):
            self._db.execute(
                "UPDATE codes SET status = 'failed', error_code = ?, error_zh = ?, error_en = ?, error_raw = ?, "
                "updated_at = ? WHERE id = ?",
                [code, message.zh, message.en, raw[:500] if raw else None, now_text(), code_id],
            )
            record_events(self._db, events)

    def rename(self, code_id: str, name: str) -> None:
        self._db.execute("UPDATE codes SET name = ?, updated_at = ? WHERE id = ?", [name, now_text(), code_id])

    def discard(self, code_id: str) -> None:
        """Forget a row still pending whose request failed before any upstream call."""
        self._db.execute("DELETE FROM codes WHERE id = ? AND status = 'pending'", [code_id])

    def mark_deleted(self, code_id: str) -> None:
        now = now_text()
        self._db.execute(
            "UPDATE codes SET status = 'deleted', deleted_at = ?, updated_at = ? WHERE id = ?", [now, now, code_id]
        )

    # -- reading ------------------------------------------------------------------------------
    def get(self, code_id: str) -> CodeRecord | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM codes WHERE id = ?", [code_id]).fetchone()
        return _record(row) if row else None

    def find_by_key(self, key: str) -> CodeRecord | None:
        """The live code (done, or still pending) made from the same normalised request; a link that has
        expired is no longer one."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM codes WHERE request_key = ? AND status IN ('pending', 'done') "
            "AND (expires_at IS NULL OR expires_at > ?) ORDER BY status = 'done' DESC, created_at LIMIT 1",
            [key, now_text()]
        ).fetchone()
        return _record(row) if row else None

    def links_made(self, since: str) -> tuple[dict[str, int], dict[str, int]]:
        """Per mini program: URL Links and encrypted URL Schemes made since ``since`` (WeChat's shared daily
        count), and permanent Short Links ever made (their lifetime cap). Deleted ones count: WeChat made them."""
        today = dict(self._db.execute(self._links_made[0], [since]).fetchall())
        permanent = dict(self._db.execute(self._links_made[1]).fetchall())
        return today, permanent

    def name_taken(self, name: str, provider: str, *, except_id: str = "", except_key: str = "") -> bool:
        """Whether another live code uses ``name`` (the code itself, or an identical request, does not count)."""
        return self._db.execute(
            "SELECT 1 FROM codes WHERE name = ? AND provider = ? AND status IN ('done', 'pending') "
            "AND id != ? AND request_key != ? LIMIT 1",
            [name, provider, except_id, except_key],
        ).fetchone() is not None

    def pending(self) -> list[CodeRecord]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM codes WHERE status = 'pending' ORDER BY created_at").fetchall()
        return [_record(r) for r in rows]

    def copies(self, code_id: str) -> list[CodeRecord]:
        """The sharper copies made of ``code_id``, oldest first."""
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM codes WHERE copy_of = ? ORDER BY created_at",
                                [code_id]).fetchall()
        return [_record(r) for r in rows]

    def recent(self, *, requested_by: str | None = None, limit: int = 20, offset: int = 0,
               include_deleted: bool = False, tag: str | None = None) -> list[CodeRecord]:
        """Newest first, sharper copies left out (their original stands for them); ``tag``: only codes carrying it."""
        where, params = [_ORIGINALS], []
        if requested_by:
            where.append("requested_by = ?")
            params.append(requested_by)
        if tag:
            where.append(_TAGGED.replace("c.id", "id"))
            params.append(tag)
        if not include_deleted:
            where.append("status != 'deleted'")
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM codes {clause} ORDER BY created_at DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        return [_record(r) for r in rows]

    def search(self, query: str, *, requested_by: str | None = None, limit: int = 20,
               offset: int = 0, tag: str | None = None) -> list[CodeRecord]:
        """Full-text search over names, pages, scenes, campaigns, channels, comments and tracking URLs (sharper
        copies left out, as in :meth:`recent`)."""
        query = query.strip()
        if not query:
            return self.recent(requested_by=requested_by, limit=limit, offset=offset, tag=tag)
        rows = self._db.execute(*self._search_sql(query, requested_by, _prefixed("c"), limit, offset, tag)).fetchall()
        return [_record(r) for r in rows]

    def count_matching(self, query: str | None = None, *, requested_by: str | None = None, cap: int = 10_000,
                       tag: str | None = None) -> int:
        """How many codes :meth:`search` (or :meth:`recent`, without a query) would list, counted up to
        ``cap + 1`` so a count over a million rows stays as quick as a page of them."""
        query = (query or "").strip()
        if query:
            sql, params = self._search_sql(query, requested_by, "1", cap + 1, 0, tag)
        else:
            sql = (f"SELECT 1 FROM codes c WHERE c.{_ORIGINALS} AND c.status != 'deleted'"
                   + (" AND c.requested_by = ?" if requested_by else "") + (f" AND {_TAGGED}" if tag else "")
                   + " LIMIT ?")
            params = [*([requested_by] if requested_by else []), *([tag] if tag else []), cap + 1]
        return int(self._db.execute(f"SELECT count(*) FROM ({sql}) AS found", params).fetchone()[0])

    def _search_sql(self, query: str, requested_by: str | None, columns: str, limit: int,
                    offset: int, tag: str | None = None) -> tuple[str, list[Any]]:
        extra, params = f" AND c.{_ORIGINALS}", []
        if requested_by:
            extra += " AND c.requested_by = ?"
            params.append(requested_by)
        if tag:
            extra += f" AND {_TAGGED}"
            params.append(tag)
        if self._db.dialect == "postgresql":
            # The same rows as SQLite's: any substring, case-insensitive, tracking URLs from 3 characters on (as
            # the FTS table has them); pg_trgm's GIN indexes serve ILIKE (storage/pg_schema.py).
            like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            fields = pg_schema.SEARCHED if len(query) >= 3 else pg_schema.SEARCHED[:-1]
            cond = " OR ".join(f"c.{f} ILIKE ?" for f in fields)
            sql = (f"SELECT {columns} FROM codes c WHERE ({cond}) AND c.status != 'deleted'{extra} "
                   "ORDER BY c.created_at DESC, c.id DESC LIMIT ? OFFSET ?")
            return sql, [*([like] * len(fields)), *params, limit, offset]
        if len(query) >= 3:
            # trigram FTS matches any substring of 3+ characters; quoting makes it a literal phrase.
            # Newest first by rowid (the order rows were written, which is created_at's): the index hands
            # matches out in that order and stops at the limit, instead of sorting every match.
            phrase = '"' + query.replace('"', '""') + '"'
            sql = (f"SELECT {columns} FROM codes_fts JOIN codes c ON c.rowid = codes_fts.rowid "
                   f"WHERE codes_fts MATCH ? AND c.status != 'deleted'{extra} "
                   "ORDER BY codes_fts.rowid DESC LIMIT ? OFFSET ?")
            return sql, [phrase, *params, limit, offset]
        like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        fields = ("name", "page", "scene", "campaign", "channel", "comments")
        cond = " OR ".join(f"c.{f} LIKE ? ESCAPE '\\'" for f in fields)
        sql = (f"SELECT {columns} FROM codes c WHERE ({cond}) AND c.status != 'deleted'{extra} "
               "ORDER BY c.created_at DESC LIMIT ? OFFSET ?")
        return sql, [*([like] * len(fields)), *params, limit, offset]

    def between(self, since: str, until: str) -> list[CodeRecord]:
        """Every request created in [since, until), deleted ones included (summaries count them)."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM codes WHERE created_at >= ? AND created_at < ? ORDER BY created_at",
            [since, until],
        ).fetchall()
        return [_record(r) for r in rows]

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM codes").fetchone()[0])

    def import_rows(self, rows: Iterable[dict[str, Any]], batch: int = 50_000) -> int:
        """Load many history rows at once (imports, benchmarks); the full-text index is rebuilt once after."""
        sql = f"INSERT INTO codes ({_COLUMNS}) VALUES ({', '.join('?' * len(_NAMES))})"
        total = 0
        if isinstance(self._db, PostgresDatabase):  # no full-text table to keep: pg_trgm indexes keep themselves
            with immediate(self._db):  # one transaction: all the rows or none, as one INSERT would
                return self._db.copy_rows("codes", _NAMES, ([row.get(n) for n in _NAMES] for row in rows))
        assert isinstance(self._db, SqliteDatabase)  # the two backends there are
        self._db.execute("DROP TRIGGER IF EXISTS codes_ai")
        try:
            chunk: list[list[Any]] = []
            for row in rows:
                chunk.append([row.get(n) for n in _NAMES])
                if len(chunk) >= batch:
                    total += self._insert_many(sql, chunk)
                    chunk = []
            total += self._insert_many(sql, chunk)
        finally:
            self._db.utils.table("codes").rebuild_fts()
            self._db.execute(
                "CREATE TRIGGER IF NOT EXISTS codes_ai AFTER INSERT ON codes BEGIN "
                "INSERT INTO codes_fts (rowid, name, page, scene, campaign, channel, comments, tracking_url) "
                "VALUES (new.rowid, new.name, new.page, new.scene, new.campaign, new.channel, new.comments, "
                "new.tracking_url); END"
            )
        return total

    def _insert_many(self, sql: str, chunk: list[list[Any]]) -> int:
        if not chunk:
            return 0
        with immediate(self._db):
            self._db.executemany(sql, chunk)
        return len(chunk)


def _prefixed(alias: str) -> str:
    return ", ".join(f"{alias}.{name}" for name in _NAMES)


def _record(row: tuple[Any, ...]) -> CodeRecord:
    data = dict(zip(_NAMES, row, strict=True))
    data["transparent"] = bool(data["transparent"])
    data["sandbox"] = bool(data["sandbox"])
    data["request"] = json.loads(data.pop("request_json"))
    data.pop("attempts")
    data["created_at"] = from_text(data["created_at"])
    data["updated_at"] = from_text(data["updated_at"])
    data["expires_at"] = from_text(data["expires_at"]) if data["expires_at"] else None
    data["type"] = CodeType(data["type"])
    data["provider"] = Provider(data["provider"])
    data["status"] = Status(data["status"])
    # Rows were validated on the way in; re-validating every field on the way out dominated big reads.
    return CodeRecord.model_construct(**data)
