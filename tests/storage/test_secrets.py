"""The server's own keys in the database (storage/secrets.py), over a real SQLite file: made once, the same for
every process that opens the database, even two starting at one instant; the key file an older version kept in
the data folder is taken in by the migration, so what was signed and hashed before the upgrade still matches."""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlite_utils

from bot.batch.links import UploadLinks
from bot.live.scans import hash_key
from storage import Storage
from storage.db import DB_NAME
from storage.migrations import MIGRATIONS, migrate
from storage.secrets import INSTALL_KEY, LEGACY_FILES


def test_a_key_is_made_once_and_every_opening_of_the_database_gets_it(tmp_path: Path, database_url: str | None) -> None:
    first = Storage.open(tmp_path, database_url)
    made = first.secrets.get_or_create("k", lambda: b"one")
    assert first.secrets.get_or_create("k", lambda: b"two") == made == b"one"
    second = Storage.open(tmp_path, database_url)  # another process on the same database
    try:
        assert second.secrets.get_or_create("k", lambda: b"three") == b"one"
        assert second.secrets.get("absent") is None
    finally:
        first.close()
        second.close()


def test_two_processes_making_the_key_at_one_instant_agree(tmp_path: Path, database_url: str | None) -> None:
    stores = [Storage.open(tmp_path, database_url) for _ in range(2)]
    both_made = threading.Barrier(2, timeout=10)

    def make(value: bytes) -> bytes:
        both_made.wait()  # neither has stored its key yet: both found none and made one
        return value

    try:
        with ThreadPoolExecutor(2) as pool:
            got = list(pool.map(lambda n: stores[n].secrets.get_or_create(INSTALL_KEY, lambda: make(b"key%d" % n)),
                                range(2)))
        assert got[0] == got[1] and got[0] in (b"key0", b"key1")
        assert stores[0].db.execute("SELECT count(*) FROM secrets").fetchone()[0] == 1
    finally:
        for store in stores:
            store.close()


def test_the_install_key_is_never_written_to_the_data_folder(tmp_path: Path) -> None:
    store = Storage.open(tmp_path)
    try:
        key = hash_key(None, store.secrets)
        assert len(key) == 64 and hash_key(None, store.secrets) == key
        assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(DB_NAME)) == []
        assert hash_key("configured", store.secrets) == b"configured"
    finally:
        store.close()


def test_the_upgrade_takes_in_the_key_file_so_old_hashes_and_links_stay_valid(tmp_path: Path) -> None:
    # a data folder from before: the database without the secrets table, the key in a file beside it
    old = sqlite_utils.Database(sqlite3.connect(tmp_path / DB_NAME, isolation_level=None))
    names = [name for name, _ in MIGRATIONS]
    migrate(old, MIGRATIONS[:names.index("secrets_in_the_database")])
    old.conn.close()
    legacy = b"5f" * 32
    (tmp_path / LEGACY_FILES[INSTALL_KEY]).write_bytes(legacy + b"\n")
    visitor_before = hmac.new(legacy, b"o6_visitor", hashlib.sha256).hexdigest()[:32]
    link_before = UploadLinks(legacy).issue("slack", "U1", "C1")

    store = Storage.open(tmp_path)
    try:
        key = hash_key(None, store.secrets)
        assert key == legacy
        assert hmac.new(key, b"o6_visitor", hashlib.sha256).hexdigest()[:32] == visitor_before
        assert UploadLinks(key).verify(link_before).user_id == "U1"
    finally:
        store.close()


def test_a_database_in_memory_is_migrated_without_a_data_folder() -> None:
    db = sqlite_utils.Database(memory=True)
    migrate(db)
    assert db.execute("SELECT count(*) FROM secrets").fetchone()[0] == 0
