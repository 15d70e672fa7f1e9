"""Live codes (活码): a key printed once in a B code, and where it leads now (see ``bot/live/rules.py``).

``live_codes`` holds one row per key with the current destination (so a resolve is one indexed
read); ``live_destinations`` keeps every destination ever set, with who set it and when. Rows are
never deleted: printed codes carry the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.clock import from_text, now_text
from storage.engine import Database
from storage.transaction import immediate
from storage.webhooks import Events, record_events

_LIVE = "key, code_id, page, paused, expires_at, created_by, created_at, updated_at, routes"


@dataclass(frozen=True)
class LiveRow:
    key: str
    code_id: str
    page: str                   # the current destination: page with its query; '' for a blank code (空码)
    paused: bool
    expires_at: float | None    # Unix seconds; None: never
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    routes: str | None = None   # JSON of its routes (bot/live/routes.py), None: every scan goes to ``page``


@dataclass(frozen=True)
class Destination:
    page: str
    set_by: str | None
    set_at: datetime
    routes: str | None = None


@dataclass(frozen=True)
class Resolved:
    """What one read of a key finds: a live code, or the parameters of a long scene."""

    live: LiveRow | None = None
    params: str | None = None


def _row(values: tuple[object, ...]) -> LiveRow:
    key, code_id, page, paused, expires_at, created_by, created_at, updated_at, routes = values
    return LiveRow(str(key), str(code_id), str(page), bool(paused),
                   float(expires_at) if expires_at is not None else None,  # type: ignore[arg-type]
                   str(created_by) if created_by is not None else None,
                   from_text(str(created_at)), from_text(str(updated_at)),
                   str(routes) if routes is not None else None)


class LiveStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def taken(self, key: str) -> bool:
        """Whether ``key`` names a live code or a long scene already (both share the ``k=`` keys)."""
        row = self._db.execute("SELECT 1 FROM live_codes WHERE key = ? UNION ALL SELECT 1 FROM scenes WHERE key = ?",
                               [key, key]).fetchone()
        return row is not None

    def create(self, key: str, code_id: str, page: str, set_by: str | None, expires_at: float | None) -> LiveRow:
        now = now_text()
        with immediate(self._db):
            self._db.execute(f"INSERT INTO live_codes ({_LIVE}) VALUES (?, ?, ?, 0, ?, ?, ?, ?, NULL)",
                             [key, code_id, page, expires_at, set_by, now, now])
            if page:  # a blank code ('' : no destination yet) has no destination to remember until it is bound
                self._db.execute("INSERT INTO live_destinations (key, page, set_by, set_at) VALUES (?, ?, ?, ?)",
                                 [key, page, set_by, now])
        found = self.get(key)
        assert found is not None
        return found

    def get(self, key: str) -> LiveRow | None:
        row = self._db.execute(f"SELECT {_LIVE} FROM live_codes WHERE key = ?", [key]).fetchone()
        return _row(row) if row else None

    def resolve(self, key: str) -> Resolved:
        """The live code or the long scene behind ``key``, in one statement over two primary keys."""
        row = self._db.execute(
            f"SELECT {_LIVE}, NULL FROM live_codes WHERE key = ? "
            "UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, params FROM scenes WHERE key = ? "
            "LIMIT 1", [key, key]).fetchone()
        if row is None:
            return Resolved()
        if row[0] is None:
            return Resolved(params=str(row[9]))
        return Resolved(live=_row(tuple(row[:9])))

    def for_code(self, code_id: str) -> LiveRow | None:
        row = self._db.execute(f"SELECT {_LIVE} FROM live_codes WHERE code_id = ?", [code_id]).fetchone()
        return _row(row) if row else None

    def for_codes(self, code_ids: list[str]) -> dict[str, LiveRow]:
        if not code_ids:
            return {}
        marks = ", ".join("?" * len(code_ids))
        rows = self._db.execute(f"SELECT {_LIVE} FROM live_codes WHERE code_id IN ({marks})", code_ids).fetchall()
        return {str(r[1]): _row(r) for r in rows}

    def set_page(self, key: str, page: str, set_by: str | None, routes: str | None = None,
                 events: Events | None = None) -> None:
        """Set the default destination and the routes (JSON, None: none) together, kept in the history; ``events``
        (its webhook events) written in the same transaction (storage/webhooks.py)."""
        now = now_text()
        with immediate(self._db):
            self._db.execute("UPDATE live_codes SET page = ?, routes = ?, updated_at = ? WHERE key = ?",
                             [page, routes, now, key])
            self._db.execute("INSERT INTO live_destinations (key, page, set_by, set_at, routes) VALUES (?, ?, ?, ?, ?)",
                             [key, page, set_by, now, routes])
            record_events(self._db, events)

    def set_paused(self, key: str, paused: bool, *, clear_expiry: bool = False, events: Events | None = None) -> None:
        """Pause or resume; ``events`` written in the same transaction (storage/webhooks.py)."""
        sql = "UPDATE live_codes SET paused = ?, updated_at = ?" + (", expires_at = NULL" if clear_expiry else "")
        with immediate(self._db):
            self._db.execute(sql + " WHERE key = ?", [int(paused), now_text(), key])
            record_events(self._db, events)

    def destinations(self, key: str) -> list[Destination]:
        rows = self._db.execute("SELECT page, set_by, set_at, routes FROM live_destinations WHERE key = ? ORDER BY id",
                                [key]).fetchall()
        return [Destination(str(p), str(b) if b is not None else None, from_text(str(t)), str(r) if r is not None else None)
                for p, b, t, r in rows]


class SiteFiles:
    """Small files served at the site's root, such as WeChat's domain verification file."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def put(self, name: str, body: bytes, created_by: str | None) -> None:
        self._db.execute("INSERT INTO site_files (name, body, created_by, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) "
                         "DO UPDATE SET body = excluded.body, created_by = excluded.created_by, created_at = excluded.created_at",
                         [name, body, created_by, now_text()])

    def get(self, name: str) -> bytes | None:
        row = self._db.execute("SELECT body FROM site_files WHERE name = ?", [name]).fetchone()
        return bytes(row[0]) if row else None


def migration(db: Database) -> None:
    """Tables of live codes, their destinations, their scans and the site's files (migrations.py lists it)."""
    db.execute("""
        CREATE TABLE live_codes (
            key TEXT PRIMARY KEY,
            code_id TEXT NOT NULL UNIQUE REFERENCES codes (id),
            page TEXT NOT NULL,
            paused INTEGER NOT NULL DEFAULT 0,
            expires_at REAL,
            created_by TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""")
    db.execute("""
        CREATE TABLE live_destinations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL REFERENCES live_codes (key),
            page TEXT NOT NULL,
            set_by TEXT,
            set_at TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX live_destinations_key ON live_destinations (key, id)")
    # One row per scan; the visitor is a keyed hash (bot/live/scans.py), never what the mini program sent.
    db.execute("""
        CREATE TABLE scans (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL,
            at REAL NOT NULL,
            visitor TEXT,
            source TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX scans_key_at ON scans (key, at)")
    db.execute("CREATE INDEX scans_at ON scans (at)")
    db.execute("""
        CREATE TABLE site_files (
            name TEXT PRIMARY KEY,
            body BLOB NOT NULL,
            created_by TEXT,
            created_at TEXT NOT NULL
        )""")
