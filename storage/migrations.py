"""Schema migrations, applied once each, in order, each in its own transaction.

Add a new function to ``MIGRATIONS``; never edit one that has shipped. A migration that alters a
table that already exists (new columns, triggers, rewritten rows) goes in ``CHANGES_EXISTING`` too:
before running one on an existing database, ``storage.db`` writes a backup beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlite_utils


def _v1_codes(db: sqlite_utils.Database) -> None:
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


def _v1_fts(db: sqlite_utils.Database) -> None:
    db["codes"].enable_fts(
        ["name", "page", "scene", "campaign", "channel", "comments", "tracking_url"],
        create_triggers=True, tokenize="trigram",
    )


def _v3_scenes(db: sqlite_utils.Database) -> None:
    # Long B-code parameters behind short scene keys (storage/scenes.py); rows are never changed.
    db.execute("""
        CREATE TABLE scenes (
            key TEXT PRIMARY KEY,
            params TEXT NOT NULL UNIQUE,
            created_by TEXT,
            created_at TEXT NOT NULL
        )""")


def _v4_summary_runs(db: sqlite_utils.Database) -> None:
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


MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("001_codes_images_audit_ledger", _v1_codes),
    ("002_codes_fts_trigram", _v1_fts),
    ("003_scenes_long_parameters", _v3_scenes),
    ("004_summary_runs", _v4_summary_runs),
]


# Migrations that change tables created by earlier ones (002 puts FTS triggers on ``codes``).
CHANGES_EXISTING: frozenset[str] = frozenset({"002_codes_fts_trigram"})


def _applied(db: sqlite_utils.Database) -> set[str]:
    if not db["_migrations"].exists():
        return set()
    return {row[0] for row in db.execute("SELECT name FROM _migrations").fetchall()}


def pending(db: sqlite_utils.Database) -> list[tuple[str, bool]]:
    """What :func:`migrate` would run, in order: (name, whether it changes existing tables).

    On a database that has none applied yet, nothing exists to change, so every flag is False.
    """
    done = _applied(db)
    return [(name, bool(done) and name in CHANGES_EXISTING) for name, _ in MIGRATIONS if name not in done]


def migrate(db: sqlite_utils.Database,
            before_change: Callable[[list[str]], None] | None = None) -> list[str]:
    """Apply what has not been applied yet; return the names applied now.

    When a pending migration changes existing tables of a database that already has some applied,
    ``before_change(names)`` is called once before any runs (``names``: all those about to run).
    """
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = _applied(db)
    todo = pending(db)
    if before_change is not None and any(changes for _, changes in todo):
        before_change([name for name, _ in todo])
    applied = []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            step(db)
            db.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                       [name, datetime.now(UTC).isoformat()])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied
