"""The server's own keys, generated at first start and kept in the database, so every process and every
host on it signs and hashes with the same ones.

    key = storage.secrets.get_or_create(INSTALL_KEY, lambda: token_hex(32).encode("ascii"))

Only keys minpcode makes for itself live here (the install key: visitor hashes and, derived from it,
the batch links' signatures and the webhook secrets' sealing key, bot/live/scans.py, bot/batch/links.py and
bot/webhooks/sealing.py). Credentials an operator is given
by someone else (WeChat's AppSecret, Slack's signing secret, API keys) stay in the settings, never here.

Stored as they are: the database and its backups already hold everything these keys guard (the codes, the
scans, the batches), so whoever can read one can read the other. The webhook secrets sealed under the install key
are the exception worth naming: sealed, they stay out of a dump of their own table, of a log of SQL and of
anything that prints rows; against someone holding the whole database they are safe only when the key is not
in it, i.e. under ``MINPCODE_SCAN_HASH_KEY`` (docs/webhooks.md). An operator who wants the key out of the
database sets ``MINPCODE_SCAN_HASH_KEY`` (the same on every replica): then nothing is stored here
(docs/deploy.md, "Two or more replicas"). A value is never logged.

Before this table the install key sat in ``<data dir>/scan-hash.key``; :func:`migration` takes that value
in, so links signed and visitors hashed before the upgrade stay valid. That import is the only reader of
the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from secrets import token_hex

from storage.clock import now_text
from storage.engine import Database
from storage.transaction import immediate

INSTALL_KEY = "install"
# The files a key was kept in before it moved here (read once, by the migration).
LEGACY_FILES = {INSTALL_KEY: "scan-hash.key"}


class Secrets:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, name: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM secrets WHERE name = ?", [name]).fetchone()
        return bytes(row[0]) if row else None

    def get_or_create(self, name: str, make: Callable[[], bytes]) -> bytes:
        """The key called ``name``; made with ``make()`` and stored when there is none yet.

        Two processes starting together may both make one: the insert keeps the first to commit and the
        read in the same transaction hands both that one, so they agree."""
        found = self.get(name)
        if found is not None:
            return found
        made = make()  # before the transaction: nothing slow while the write lock is held
        with immediate(self._db):
            self._db.execute("INSERT INTO secrets (name, value, created_at) VALUES (?, ?, ?) "
                             "ON CONFLICT (name) DO NOTHING", [name, made, now_text()])
            found = self.get(name)
        assert found is not None
        return found

    def install_key(self, configured: str | None) -> bytes:
        """The install key: ``MINPCODE_SCAN_HASH_KEY`` when the operator set it (``configured``), else the one kept
        here, made at the first start. Visitor hashes, the batch links' signatures and the webhook secrets' sealing
        key all come from it, so every process and host on the database agrees."""
        if configured:
            return configured.encode("utf-8")
        return self.get_or_create(INSTALL_KEY, lambda: token_hex(32).encode("ascii"))


def _data_folder(db: Database) -> Path | None:
    """The folder of the database file; None for one in memory.

    Only an SQLite database has a data folder with an old key file beside it: a PostgreSQL one starts empty
    or is filled by ``minpcode db copy``, which moves this table with the rest, so its migration creates the
    table alone."""
    if db.dialect != "sqlite":
        return None
    main = next((str(r[2]) for r in db.execute("PRAGMA database_list").fetchall() if r[1] == "main"), "")
    return Path(main).parent if main else None


def migration(db: Database) -> None:
    """The secrets table, with the keys the data folder's files held (migrations.py lists it)."""
    blob = "BYTEA" if db.dialect == "postgresql" else "BLOB"
    db.execute(f"CREATE TABLE secrets (name TEXT PRIMARY KEY, value {blob} NOT NULL, created_at TEXT NOT NULL)")
    folder = _data_folder(db)
    if folder is None:
        return
    for name, file in LEGACY_FILES.items():
        path = folder / file
        if path.is_file():
            value = path.read_bytes().strip()  # as hash_key read it: the same bytes, the same hashes
            if value:
                db.execute("INSERT INTO secrets (name, value, created_at) VALUES (?, ?, ?)",
                           [name, value, now_text()])


__all__ = ["INSTALL_KEY", "LEGACY_FILES", "Secrets", "migration"]
