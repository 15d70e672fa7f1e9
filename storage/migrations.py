"""Schema migrations, applied once each, in order, each in its own transaction.

Add a new function to ``MIGRATIONS``; never edit one that has shipped. A migration that alters a
table that already exists (new columns, triggers, rewritten rows) goes in ``CHANGES_EXISTING`` too:
before running one on an existing database, ``storage.db`` writes a backup beside it (SQLite), or
refuses to start until the operator has taken one and says so (PostgreSQL: ``MINPCODE_MIGRATE=yes``).

Both backends. A PostgreSQL database never had the history the early migrations convert, so it starts
from a baseline, storage/pg_schema.py (the schema as the migrations in :data:`POSTGRES_BASELINE` leave it,
in PostgreSQL's words), recorded with their names. Every migration added after those runs on both: it is
handed a :class:`storage.engine.Database`, so write SQL that both accept (``ALTER TABLE … ADD COLUMN``,
``CREATE INDEX``, ``UPDATE`` with ``CASE``/``coalesce``, ``BIGINT`` for integers, ``TEXT`` for text and
times) and branch on ``db.dialect`` for the rest (``BYTEA`` for SQLite's ``BLOB``, an identity column for
``INTEGER PRIMARY KEY AUTOINCREMENT``, a trigger). ``tests/storage/test_migrations.py`` runs every one
on both. Never add a name to :data:`POSTGRES_BASELINE`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from bot.errors import MinpcodeError
from bot.models import SHORTLINK_DAYS
from storage import drafts as _drafts
from storage import leases as _leases
from storage import live as _live
from storage import pg_schema
from storage import secrets as _secrets
from storage import tags as _tags
from storage import webhooks as _webhooks
from storage.clock import from_text, now_text, to_text
from storage.engine import Database, SqliteDatabase
from storage.transaction import immediate

MIGRATION_ACTOR = "minpcode:migration"  # who the audit names for what a migration did to a code


def _v1_codes(db: Database) -> None:
    db.execute("""
        CREATE TABLE codes (
            id TEXT PRIMARY KEY,
            request_key TEXT NOT NULL,
            type TEXT NOT NULL,
            provider TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed', 'deleted')),
            app TEXT,
            page TEXT NOT NULL,
            scene TEXT,
            name TEXT,
            campaign TEXT, campaign_id TEXT,
            channel TEXT, channel_id TEXT,
            medium TEXT, content TEXT, term TEXT, comments TEXT,
            width INTEGER NOT NULL DEFAULT 430,
            transparent INTEGER NOT NULL DEFAULT 0,
            title TEXT,
            link TEXT, tracking_url TEXT, link_id TEXT,
            image_sha256 TEXT,
            image_mime TEXT,
            error_code TEXT, error TEXT,
            requested_by TEXT NOT NULL, requested_by_name TEXT,
            chat TEXT, chat_channel TEXT,
            sandbox INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            request_json TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            deleted_at TEXT
        )""")
    db.execute("CREATE INDEX codes_created ON codes (created_at)")
    db.execute("CREATE INDEX codes_requester ON codes (requested_by, created_at)")
    db.execute("CREATE INDEX codes_key ON codes (request_key, status)")
    db.execute("CREATE INDEX codes_status ON codes (status)")
    db.execute("CREATE INDEX codes_name ON codes (name)")
    db.execute("""
        CREATE TABLE images (
            sha256 TEXT PRIMARY KEY,
            mime TEXT NOT NULL,
            size INTEGER NOT NULL,
            bytes BLOB NOT NULL,
            created_at TEXT NOT NULL
        )""")
    db.execute("""
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            code_id TEXT,
            detail TEXT
        )""")
    db.execute("CREATE INDEX audit_code ON audit (code_id)")
    db.execute("CREATE INDEX audit_at ON audit (at)")
    # The A+C ledger: one row per distinct parameter set that WeChat counted against the cap.
    db.execute("""
        CREATE TABLE quota_keys (
            app TEXT NOT NULL,
            request_key TEXT NOT NULL,
            code_id TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (app, request_key)
        )""")


def _v1_fts(db: Database) -> None:
    # SQLite only (PostgreSQL searches with pg_trgm, storage/pg_schema.py); a test may hand sqlite-utils' own
    utils: Any = db.utils if isinstance(db, SqliteDatabase) else db
    utils.table("codes").enable_fts(
        ["name", "page", "scene", "campaign", "channel", "comments", "tracking_url"],
        create_triggers=True, tokenize="trigram",
    )


def _v3_scenes(db: Database) -> None:
    # Long B-code parameters behind short scene keys (storage/scenes.py); rows are never changed.
    db.execute("""
        CREATE TABLE scenes (
            key TEXT PRIMARY KEY,
            params TEXT NOT NULL UNIQUE,
            created_by TEXT,
            created_at TEXT NOT NULL
        )""")


def _v4_summary_runs(db: Database) -> None:
    # Summary posts (storage/summary_runs.py): one scheduled row per period, so a period posts at most once.
    db.execute("""
        CREATE TABLE summary_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL CHECK (kind IN ('scheduled', 'manual')),
            period_start TEXT NOT NULL,
            period_end TEXT NOT NULL,
            fire_at TEXT,
            status TEXT NOT NULL CHECK (status IN ('posting', 'retrying', 'posted', 'failed', 'skipped')),
            attempts INTEGER NOT NULL DEFAULT 0,
            steps TEXT NOT NULL DEFAULT '{}',
            last_error TEXT,
            next_attempt_at TEXT,
            lease_until TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""")
    db.execute("CREATE UNIQUE INDEX summary_runs_period ON summary_runs (period_start, period_end) "
               "WHERE kind = 'scheduled'")
    db.execute("CREATE INDEX summary_runs_status ON summary_runs (status)")
    db.execute("""
        CREATE TABLE summary_attempts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id INTEGER NOT NULL REFERENCES summary_runs (id),
            at TEXT NOT NULL,
            ok INTEGER NOT NULL,
            error TEXT
        )""")
    db.execute("CREATE INDEX summary_attempts_run ON summary_attempts (run_id)")


def _v6_posters(db: Database) -> None:
    # Rendered posters (storage/posters.py): one row per request key, bytes in ``images``.
    db.execute("""
        CREATE TABLE posters (
            id TEXT PRIMARY KEY,
            code_id TEXT NOT NULL REFERENCES codes (id),
            request_key TEXT NOT NULL UNIQUE,
            template TEXT NOT NULL,
            format TEXT NOT NULL CHECK (format IN ('png', 'pdf')),
            image_sha256 TEXT NOT NULL REFERENCES images (sha256),
            mime TEXT NOT NULL,
            size INTEGER NOT NULL,
            width_px INTEGER NOT NULL,
            height_px INTEGER NOT NULL,
            dpi INTEGER NOT NULL,
            request_json TEXT NOT NULL,
            created_by TEXT,
            created_at TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX posters_code ON posters (code_id, created_at)")
    db.execute("""
        CREATE TABLE poster_templates (
            name TEXT PRIMARY KEY,
            layout_json TEXT NOT NULL,
            background_sha256 TEXT REFERENCES images (sha256),
            created_by TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""")
    db.execute("""
        CREATE TABLE poster_settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_by TEXT,
            updated_at TEXT NOT NULL
        )""")


def _codes_errors_as_data(db: Database) -> None:
    # Failures were one "zh\nen" string that every reader split again, and error_code could be a Python
    # class name (FieldError, QuotaExhausted). Now: the two sentences as columns, and stable names only.
    db.execute("ALTER TABLE codes ADD COLUMN error_zh TEXT")
    db.execute("ALTER TABLE codes ADD COLUMN error_en TEXT")
    db.execute("""
        UPDATE codes SET
            error_zh = CASE WHEN instr(error, char(10)) > 0 THEN substr(error, 1, instr(error, char(10)) - 1)
                            ELSE error END,
            error_en = CASE WHEN instr(error, char(10)) > 0 THEN substr(error, instr(error, char(10)) + 1)
                            ELSE error END
        WHERE error IS NOT NULL AND error != ''""")
    names = _stable_names()
    cases = " ".join("WHEN ? THEN ?" for _ in names)
    db.execute(
        f"UPDATE codes SET error_code = CASE error_code {cases} END "
        f"WHERE error_code IN ({', '.join('?' * len(names))})",
        [*(v for pair in names.items() for v in pair), *names],
    )
    # str(None) was stored when an upstream error carried no code: that is "no code known".
    db.execute("UPDATE codes SET error_code = NULL WHERE error_code = 'None'")
    db.execute("ALTER TABLE codes DROP COLUMN error")


def _stable_names() -> dict[str, str]:
    """Class name -> ``code_name`` for every error in bot/errors.py (what old rows stored as error_code)."""
    names: dict[str, str] = {}
    pending: list[type[MinpcodeError]] = [MinpcodeError]
    while pending:
        cls = pending.pop()
        if cls.__module__ == MinpcodeError.__module__:  # not whatever else happens to be imported
            names[cls.__name__] = cls.code_name
        pending.extend(cls.__subclasses__())
    return names


def _codes_error_raw(db: Database) -> None:
    # What the upstream answered, as received (redacted, at most 500 characters): GrowingIO documents no
    # error bodies, so its own words are kept beside our sentences for whoever looks into a failure.
    db.execute("ALTER TABLE codes ADD COLUMN error_raw TEXT")


def _summary_speed(db: Database) -> None:
    # count(*) over a million-row ledger took longer than a chat answer may: the count per mini program
    # is kept beside it by triggers, and (app, at) indexed for the quota spent in a summary's period.
    # codes_period covers every column the summary counts by, so a period is read from the index alone.
    db.execute("CREATE INDEX codes_period ON codes (created_at, status, type, provider, campaign, channel, "
               "requested_by, requested_by_name, page)")
    db.execute("CREATE TABLE quota_used (app TEXT PRIMARY KEY, used INTEGER NOT NULL)")
    db.execute("INSERT INTO quota_used (app, used) SELECT app, count(*) FROM quota_keys GROUP BY app")
    db.execute("""
        CREATE TRIGGER quota_keys_counted AFTER INSERT ON quota_keys BEGIN
            INSERT INTO quota_used (app, used) VALUES (new.app, 1)
            ON CONFLICT (app) DO UPDATE SET used = used + 1;
        END""")
    db.execute("""
        CREATE TRIGGER quota_keys_uncounted AFTER DELETE ON quota_keys BEGIN
            UPDATE quota_used SET used = used - 1 WHERE app = old.app;
        END""")
    db.execute("CREATE INDEX quota_keys_at ON quota_keys (app, at)")


def _summary_made_index(db: Database) -> None:
    # A week of a million-row history took 60 ms because every group read every row of the period and
    # worked out "made" for each. codes_made holds only the made rows (the same expression as
    # storage/reports.py's _MADE, which names this index so a drift fails loudly), so a summary's groups
    # read made rows straight from it; (created_at, status) answers requested, pending and failures.
    db.execute("DROP INDEX IF EXISTS codes_period")
    db.execute("CREATE INDEX codes_made ON codes (created_at, campaign, channel, type, provider, status, "
               "requested_by_name, requested_by, page) WHERE (status = 'done' OR (status = 'deleted' AND "
               "(image_sha256 IS NOT NULL OR link IS NOT NULL OR tracking_url IS NOT NULL)))")
    db.execute("CREATE INDEX codes_created_status ON codes (created_at, status)")
    db.execute("DROP INDEX IF EXISTS codes_created")  # a prefix of codes_created_status


def _requesters_with_front_end(db: Database) -> None:
    # A requester was a bare id, so the WeCom user "cms" owned the API key "cms"'s codes. Now every id
    # is "front-end:id". Audit rows first, while codes.requested_by is still bare: an actor's front-end
    # is the one its row names, else that of the code it made; an actor we cannot place is "unknown:".
    db.execute("""
        UPDATE audit SET actor = coalesce(
            json_extract(detail, '$.chat'), json_extract(detail, '$.by'),
            (SELECT coalesce(nullif(c.chat, ''), 'cli') FROM codes c
             WHERE c.id = audit.code_id AND c.requested_by = audit.actor),
            'unknown') || ':' || actor""")
    db.execute("UPDATE audit SET actor = 'cli:' || substr(actor, 9) WHERE actor LIKE 'console:%'")
    # a live code's destinations were set by its owner (placed like the owner) or by an admin (unknown)
    db.execute("""
        UPDATE live_destinations SET set_by = coalesce(
            (SELECT CASE WHEN coalesce(c.chat, '') IN ('', 'console') THEN 'cli' ELSE c.chat END
             FROM live_codes l JOIN codes c ON c.id = l.code_id
             WHERE l.key = live_destinations.key AND c.requested_by = live_destinations.set_by),
            'unknown') || ':' || set_by
        WHERE set_by IS NOT NULL""")
    db.execute("UPDATE codes SET requested_by = CASE WHEN coalesce(chat, '') IN ('', 'console') THEN 'cli' "
               "ELSE chat END || ':' || requested_by")
    db.execute("UPDATE scenes SET created_by = 'unknown:' || created_by WHERE created_by IS NOT NULL")
    db.execute("UPDATE live_codes SET created_by = (SELECT c.requested_by FROM codes c WHERE c.id = live_codes.code_id) "
               "WHERE created_by IS NOT NULL")
    db.execute("UPDATE site_files SET created_by = 'unknown:' || created_by WHERE created_by IS NOT NULL")
def _batches(db: Database) -> None:
    # Batches (storage/batches.py): a sheet of requests, its dry run and its run, durable across restarts.
    db.execute("""
        CREATE TABLE batches (
            id TEXT PRIMARY KEY,
            status TEXT NOT NULL CHECK (status IN ('draft', 'running', 'done', 'cancelled')),
            user_id TEXT NOT NULL,  -- the starter as codes name a person: front-end:id
            origin_json TEXT NOT NULL,
            filename TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            encoding TEXT NOT NULL,
            total INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            finished_at TEXT
        )""")
    db.execute("CREATE INDEX batches_source ON batches (sha256, user_id, status)")
    db.execute("CREATE INDEX batches_status ON batches (status)")
    db.execute("""
        CREATE TABLE batch_rows (
            batch_id TEXT NOT NULL REFERENCES batches (id),
            line INTEGER NOT NULL,
            fields_json TEXT NOT NULL,
            status TEXT NOT NULL
                CHECK (status IN ('invalid', 'ready', 'queued', 'done', 'reused', 'failed', 'skipped')),
            code_id TEXT,
            error TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (batch_id, line)
        )""")
    db.execute("CREATE INDEX batch_rows_status ON batch_rows (batch_id, status)")


def _poster_makers_with_front_end(db: Database) -> None:
    # Posters, team templates and the default logo named their maker by a bare id as well: a poster's maker
    # is placed like its code's requester when they are the same id; anyone else is "unknown:".
    db.execute("""
        UPDATE posters SET created_by = coalesce(
            (SELECT substr(c.requested_by, 1, instr(c.requested_by, ':')) FROM codes c
             WHERE c.id = posters.code_id AND substr(c.requested_by, instr(c.requested_by, ':') + 1) = posters.created_by),
            'unknown:') || created_by
        WHERE created_by IS NOT NULL AND instr(created_by, ':') = 0""")
    for table, column in (("poster_templates", "created_by"), ("poster_settings", "updated_by")):
        db.execute(f"UPDATE {table} SET {column} = 'unknown:' || {column} "
                   f"WHERE {column} IS NOT NULL AND instr({column}, ':') = 0")


def _batch_row_posters(db: Database) -> None:
    # A batch row may ask for a poster: its id is kept beside the row's code id, written in the same
    # update that makes the row final, so a resumed run neither loses nor repeats it.
    db.execute("ALTER TABLE batch_rows ADD COLUMN poster_id TEXT")


def _codes_expires_at(db: Database) -> None:
    # When a link stops working (Short Link, URL Link, URL Scheme): shown in every answer, and an expired link
    # is neither reused nor offered. A temporary Short Link made before lasts 30 days from when it was asked for
    # (the earliest it can have been made, so we never say it lasts longer than it does).
    db.execute("ALTER TABLE codes ADD COLUMN expires_at TEXT")
    for code_id, created, request_json in db.execute(
            "SELECT id, created_at, request_json FROM codes WHERE type = 'shortlink' AND link IS NOT NULL").fetchall():
        if json.loads(request_json).get("permanent"):
            continue
        ends = from_text(created) + timedelta(days=SHORTLINK_DAYS)
        db.execute("UPDATE codes SET expires_at = ? WHERE id = ?", [to_text(ends), code_id])


def _codes_one_live_per_key(db: Database) -> None:
    # One code per identical request, held by the database (issue 22): a lock in one process let two
    # processes on one folder each make the same code, and spend WeChat's A+C cap twice while the ledger
    # counted it once. At most one pending or done row per request key; a failed or deleted row holds
    # nothing, so asking again after a failure (or a deletion) makes a new code. A made link that expires
    # (Short Link, URL Link, URL Scheme: expires_at is set when it is made) leaves the index too, so the same
    # request after its expiry makes a new link; while pending it is held like any code.
    # Duplicates an older version made are settled first. The row reuse was offering stays (the oldest
    # made, else the oldest pending). Another made one is deleted: its id and image still answer and
    # summaries still count it as made, but it is no longer listed or offered; the audit says why. Another
    # pending one fails naming the kept code, so no worker asks the upstream for it again.
    duplicates = db.execute("""
        SELECT id, status, kept FROM (
            SELECT id, status, row_number() OVER w AS n, first_value(id) OVER w AS kept FROM codes
            WHERE status IN ('pending', 'done') AND expires_at IS NULL
            WINDOW w AS (PARTITION BY request_key ORDER BY status = 'done' DESC, created_at, rowid))
        WHERE n > 1""").fetchall()
    now = now_text()
    for code_id, status, kept in duplicates:
        if status == "done":
            db.execute("UPDATE codes SET status = 'deleted', deleted_at = ?, updated_at = ? WHERE id = ?",
                       [now, now, code_id])
            db.execute("INSERT INTO audit (at, actor, action, code_id, detail) VALUES (?, ?, 'deleted', ?, ?)",
                       [now, MIGRATION_ACTOR, code_id, json.dumps({"duplicate_of": kept})])
        else:
            db.execute(
                "UPDATE codes SET status = 'failed', error_code = 'duplicate_request', error_zh = ?, error_en = ?, "
                "updated_at = ? WHERE id = ?",
                [f"同样的请求已有码 {kept}，这个没有生成，请用 {kept}。",
                 f"An identical request already has code {kept}; this one was not made: use {kept}.", now, code_id])
    db.execute("CREATE UNIQUE INDEX codes_one_live_per_key ON codes (request_key) "
               "WHERE status IN ('pending', 'done') AND expires_at IS NULL")


def _outbox_notes(db: Database) -> None:
    # What a delivery must do the same way if it runs again after a crash (a WeCom media_id), written
    # before the send it is for: a JSON object, NULL until the first note.
    db.execute("ALTER TABLE outbox ADD COLUMN notes TEXT")


def _codes_copy_of(db: Database) -> None:
    # A sharper copy of a code for a poster (bot/posters/service.py) names its original: lists show the
    # original only and summaries do not count the copy as a code made. codes_made leaves copies out, in
    # the same words as storage/reports.py's made clause.
    db.execute("ALTER TABLE codes ADD COLUMN copy_of TEXT")
    db.execute("CREATE INDEX codes_copies ON codes (copy_of) WHERE copy_of IS NOT NULL")
    db.execute("DROP INDEX IF EXISTS codes_made")
    db.execute("CREATE INDEX codes_made ON codes (created_at, campaign, channel, type, provider, status, "
               "requested_by_name, requested_by, page) WHERE (status = 'done' OR (status = 'deleted' AND "
               "(image_sha256 IS NOT NULL OR link IS NOT NULL OR tracking_url IS NOT NULL))) AND copy_of IS NULL")


def _scans_test_source(db: Database) -> None:
    # Test scans (source 'test', storage/scans.py) are kept and left out of the real counts: with the source
    # in the index, "this code's real scans since …" is still read from the index alone.
    db.execute("CREATE INDEX scans_key_at_source ON scans (key, at, source)")
    db.execute("DROP INDEX IF EXISTS scans_key_at")  # a prefix of scans_key_at_source


def _live_routes_scan_pages(db: Database) -> None:
    # Routes (bot/live/routes.py): a live code may lead to several pages, stored as JSON beside its default
    # destination and in its history; each scan keeps the page it was sent to and the platform the router
    # page reported, so stats can count per destination and per phone.
    db.execute("ALTER TABLE live_codes ADD COLUMN routes TEXT")
    db.execute("ALTER TABLE live_destinations ADD COLUMN routes TEXT")
    db.execute("ALTER TABLE scans ADD COLUMN page TEXT")
    db.execute("ALTER TABLE scans ADD COLUMN platform TEXT")


Migration = tuple[str, Callable[[Database], None]]

MIGRATIONS: list[Migration] = [
    ("001_codes_images_audit_ledger", _v1_codes),
    ("002_codes_fts_trigram", _v1_fts),
    ("003_scenes_long_parameters", _v3_scenes),
    ("004_summary_runs", _v4_summary_runs),
    ("005_codes_errors_as_data", _codes_errors_as_data),
    ("006_posters", _v6_posters),
    ("007_codes_error_raw", _codes_error_raw),
    ("live_codes_destinations_scans", _live.migration),
    ("008_summary_speed", _summary_speed),
    ("requesters_with_front_end", _requesters_with_front_end),
    (_drafts.MIGRATION, _drafts.migration),
    ("leases_outbox_seen", _leases.migration),
    ("poster_makers_with_front_end", _poster_makers_with_front_end),
    ("batches_rows", _batches),
    ("summary_made_index", _summary_made_index),
    ("batch_row_posters", _batch_row_posters),
    ("codes_expires_at", _codes_expires_at),
    ("codes_one_live_per_key", _codes_one_live_per_key),
    ("outbox_notes", _outbox_notes),
    ("codes_copy_of", _codes_copy_of),
    ("scans_test_source", _scans_test_source),
    ("secrets_in_the_database", _secrets.migration),
    (_webhooks.MIGRATION, _webhooks.migration),
    ("live_routes_scan_pages", _live_routes_scan_pages),
    (_tags.MIGRATION, _tags.migration),
]


# Migrations that change tables created by earlier ones (002 puts FTS triggers on ``codes``).
CHANGES_EXISTING: frozenset[str] = frozenset({"002_codes_fts_trigram", "005_codes_errors_as_data",
                                              "007_codes_error_raw", "008_summary_speed",
                                              "requesters_with_front_end", "batch_row_posters",
                                              "codes_expires_at", "codes_one_live_per_key", "outbox_notes",
                                              "codes_copy_of", "live_routes_scan_pages"})


# The PostgreSQL baseline (storage/pg_schema.py) and the migrations it stands for: the final schema of every
# migration above, as of when PostgreSQL became a backend. Never add to it (see the module docstring).
BASELINE = "postgresql_baseline"
POSTGRES_BASELINE: frozenset[str] = frozenset({
    "001_codes_images_audit_ledger", "002_codes_fts_trigram", "003_scenes_long_parameters", "004_summary_runs",
    "005_codes_errors_as_data", "006_posters", "007_codes_error_raw", "live_codes_destinations_scans",
    "008_summary_speed", "requesters_with_front_end", "form_drafts", "leases_outbox_seen",
    "poster_makers_with_front_end", "batches_rows", "summary_made_index", "batch_row_posters", "codes_expires_at",
    "codes_one_live_per_key", "outbox_notes", "codes_copy_of", "scans_test_source"})


def _applied(db: Database) -> set[str]:
    if not _has_migrations_table(db):
        return set()
    return {row[0] for row in db.execute("SELECT name FROM _migrations").fetchall()}


def _has_migrations_table(db: Database) -> bool:
    if db.dialect == "postgresql":
        return db.execute("SELECT to_regclass('_migrations')").fetchone()[0] is not None
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_migrations'").fetchone() is not None


def _database(db: Database | sqlite_utils.Database) -> Database:
    """Ours, also when handed sqlite-utils' wrapper (tools and tests that opened a file themselves)."""
    return SqliteDatabase(db.conn) if isinstance(db, sqlite_utils.Database) else db


def _steps(db: Database, steps: list[Migration] | None) -> list[Migration]:
    """What a database of this dialect runs, in order. PostgreSQL starts from :data:`POSTGRES_BASELINE` (today's
    final schema, storage/pg_schema.py), which stands for every migration up to it: it never had the history
    they convert."""
    chosen = MIGRATIONS if steps is None else steps
    if db.dialect != "postgresql":
        return chosen
    return [(BASELINE, _postgres_baseline), *((n, f) for n, f in chosen if n not in POSTGRES_BASELINE)]


def pending(db: Database | sqlite_utils.Database, steps: list[Migration] | None = None) -> list[tuple[str, bool]]:
    """What :func:`migrate` would run, in order: (name, whether it changes existing tables).

    On a database that has none applied yet, nothing exists to change, so every flag is False.
    """
    ours = _database(db)
    done = _applied(ours)
    return [(name, bool(done) and name in CHANGES_EXISTING) for name, _ in _steps(ours, steps) if name not in done]


def migrate(db: Database | sqlite_utils.Database, steps: list[Migration] | None = None,
            before_change: Callable[[list[str]], None] | None = None) -> list[str]:
    """Apply what has not been applied yet of ``steps`` (all of ``MIGRATIONS``); return the names applied now.

    When a pending migration changes existing tables of a database that already has some applied,
    ``before_change(names)`` is called once before any runs (``names``: all those about to run).
    """
    ours = _database(db)
    with immediate(ours):  # behind the write lock: hosts starting together on a new PostgreSQL database
        ours.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = _applied(ours)
    todo = pending(ours, steps)
    if before_change is not None and any(changes for _, changes in todo):
        before_change([name for name, _ in todo])
    applied: list[str] = []
    for name, step in _steps(ours, steps):
        if name in done:
            continue
        with immediate(ours):
            if name in done | set(applied) or name in _applied(ours):
                continue  # another host ran it while this one waited for the write lock (PostgreSQL)
            step(ours)
            ours.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                         [name, datetime.now(UTC).isoformat()])
            if name == BASELINE:
                ours.executemany("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                                 [(n, datetime.now(UTC).isoformat()) for n in sorted(POSTGRES_BASELINE)])
        applied.append(name)
    return applied


def _postgres_baseline(db: Database) -> None:
    for statement in pg_schema.BASELINE:
        db.execute(statement)
    pg_schema.search_indexes(db)
