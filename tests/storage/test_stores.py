"""The small stores over a real SQLite file and a real PostgreSQL database: images, audit, the A+C ledger, scene keys,
reports."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from bot.models import CodeRequest, CodeType, Requester
from bot.sandbox import qr
from storage import Storage
from storage.clock import now_text, to_text
from storage.db import DB_NAME
from storage.engine import PostgresDatabase, SqliteDatabase
from storage.reports import ReuseRow
from storage.transaction import immediate
from tests.conftest import scan_image

ALICE = Requester(chat="slack", user_id="U_ALICE", user_name="alice")
PNG = qr.render(qr.code_url("wxapp1", "A", "pages/a"), 280, "PNG")
JPEG = qr.render(qr.code_url("wxapp1", "B", "pages/b", "s=1"), 280, "JPEG")


@pytest.fixture
def store(tmp_path: Path, database_url: str | None) -> Iterator[Storage]:
    opened = Storage.open(tmp_path, database_url)
    yield opened
    opened.close()


def window(minutes: int = 5) -> tuple[str, str]:
    """[a moment ago, a moment ahead): covers whatever the test writes now."""
    now = datetime.now(UTC)
    return to_text(now - timedelta(minutes=minutes)), to_text(now + timedelta(minutes=minutes))


# ---- the file -----------------------------------------------------------------------------------------


def test_the_database_file_is_private_and_survives_reopening(tmp_path: Path) -> None:
    first = Storage.open(tmp_path / "data")
    digest = first.images.put(PNG, "image/png")
    first.close()
    path = tmp_path / "data" / DB_NAME
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # secrets and person names live in it
    second = Storage.open(tmp_path / "data")
    assert second.images.get(digest) == (PNG, "image/png")
    second.close()


# ---- images ---------------------------------------------------------------------------------------


def test_one_transaction_keeps_all_of_its_block_or_none(store: Storage) -> None:
    db = store.db
    db.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)")
    with immediate(db):
        db.execute("INSERT INTO t VALUES (1)")
        db.execute("INSERT INTO t VALUES (2)")
    with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)), immediate(db):
        db.execute("INSERT INTO t VALUES (3)")
        db.execute("INSERT INTO t VALUES (1)")
    assert [r[0] for r in db.execute("SELECT x FROM t ORDER BY x")] == [1, 2]
    assert not in_transaction(store)
    # a replay returns from inside its transaction: it ends, and the next write has one of its own
    assert store.outbox.accept("slack", "k", "{}", seen="e1", ttl=60) is not None
    assert store.outbox.accept("slack", "k", "{}", seen="e1", ttl=60) is None
    assert not in_transaction(store)
    db.execute("INSERT INTO t VALUES (4)")  # a statement outside a block is kept at once, seen by another connection
    assert [r[0] for r in db.execute("SELECT x FROM t ORDER BY x")] == [1, 2, 4]


def in_transaction(store: Storage) -> bool:
    """Whether a transaction is left open: SQLite's connection, or (PostgreSQL) one the pool holds."""
    if isinstance(store.db, SqliteDatabase):
        return store.db.conn.in_transaction
    assert isinstance(store.db, PostgresDatabase)
    return int(store.db.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                "AND state LIKE 'idle in transaction%'").fetchone()[0]) > 0


def test_a_full_disk_inside_a_transaction_raises_its_own_error(tmp_path: Path) -> None:
    """SQLite rolls the whole transaction back itself on SQLITE_FULL: the error a caller sees is the full disk
    (which the server answers with 503), never "cannot rollback - no transaction is active"."""
    store = Storage.open(tmp_path)  # SQLite's own: PostgreSQL's server keeps its files
    conn = store.db.conn  # type: ignore[attr-defined]
    conn.execute("CREATE TABLE t (b BLOB)")
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # a disk with room for two more pages
    with pytest.raises(sqlite3.OperationalError) as raised, immediate(conn):
        for _ in range(10):
            conn.execute("INSERT INTO t VALUES (zeroblob(3000))")
    assert raised.value.sqlite_errorcode == sqlite3.SQLITE_FULL, raised.value
    assert not conn.in_transaction
    with immediate(conn):  # the connection is usable: the next transaction begins and commits
        conn.execute("DELETE FROM t")
    store.close()


def test_images_are_stored_once_by_content_hash(store: Storage) -> None:
    digest = store.images.put(PNG, "image/png")
    assert len(digest) == 64 and store.images.put(PNG, "image/png") == digest
    other = store.images.put(JPEG, "image/jpeg")
    assert other != digest and store.images.count() == 2
    data, mime = store.images.get(digest) or (b"", "")
    assert (data, mime) == (PNG, "image/png")
    assert scan_image(data) == qr.ScannedCode("wxapp1", "A", "pages/a", None)  # the bytes decode as before
    assert store.images.get("0" * 64) is None


# ---- audit --------------------------------------------------------------------------------------------


def test_audit_keeps_who_did_what_in_order(store: Storage) -> None:
    store.audit.record("U_ALICE", "requested", "code00000001", type="A", chat="slack")
    store.audit.record("U_BOB", "renamed", "code00000001", old="旧名", new="新名")
    store.audit.record("U_BOB", "deleted", "code00000001")
    store.audit.record("U_ALICE", "requested", "code00000002")
    entries = store.audit.for_code("code00000001")
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("U_ALICE", "requested"), ("U_BOB", "renamed"), ("U_BOB", "deleted")]
    assert entries[0]["detail"] == {"type": "A", "chat": "slack"}
    assert entries[1]["detail"] == {"old": "旧名", "new": "新名"} and entries[2]["detail"] == {}
    since, until = window()
    assert store.audit.count("requested", since, until) == 2
    assert store.audit.count("requested", until, window(10)[1]) == 0
    assert store.audit.for_code("nosuchcode00") == []


# ---- the A+C ledger ------------------------------------------------------------------------------------


def test_ledger_counts_each_parameter_set_once_per_mini_program(store: Storage) -> None:
    assert store.ledger.spend("wxapp1", "key-a", "code00000001") is True
    assert store.ledger.spend("wxapp1", "key-a", "code00000002") is False  # an identical repeat is free
    assert store.ledger.spend("wxapp1", "key-b", "code00000003") is True
    assert store.ledger.spend("wxapp2", "key-a", "code00000004") is True  # caps are per mini program
    assert store.ledger.counted("wxapp1", "key-a") and not store.ledger.counted("wxapp2", "key-b")
    assert (store.ledger.used("wxapp1"), store.ledger.used("wxapp2"), store.ledger.used("none")) == (2, 1, 0)
    assert store.ledger.apps() == {"wxapp1": 2, "wxapp2": 1}
    since, until = window()
    assert store.ledger.used_between("wxapp1", since, until) == 2
    assert store.ledger.used_between("wxapp1", until, window(10)[1]) == 0


def test_ledger_imports_many_keys_at_once(store: Storage) -> None:
    at = now_text()
    store.ledger.import_keys([("wxapp1", f"key-{i}", f"code{i:08d}", at) for i in range(1000)]
                             + [("wxapp1", "key-0", "code-dup", at)])
    assert store.ledger.used("wxapp1") == 1000


# ---- scene keys -----------------------------------------------------------------------------------------


def test_scene_keys_name_one_parameter_string_for_ever(store: Storage) -> None:
    params = "campaign=双十一&channel=微博&store=0042"
    assert store.scenes.key_for(params) is None
    assert store.scenes.put("k1", params, created_by="U_ALICE") == "k1"
    assert store.scenes.put("k2", params) == "k1"  # the same parameters keep their key
    assert store.scenes.put("k1", "other=1") is None  # a taken key never changes meaning
    assert store.scenes.get("k1") == params and store.scenes.get("k2") is None
    assert store.scenes.key_for(params) == "k1" and store.scenes.count() == 1


async def test_concurrent_writers_of_the_same_parameters_agree_on_one_key(tmp_path: Path,
                                                                          database_url: str | None) -> None:
    stores = [Storage.open(tmp_path, database_url) for _ in range(4)]  # separate connections, like separate processes
    try:
        keys = await asyncio.gather(*(asyncio.to_thread(s.scenes.put, f"key{i}", "a=1&b=2")
                                      for i, s in enumerate(stores)))
        assert len(set(keys)) == 1 and keys[0] is not None and stores[0].scenes.count() == 1
    finally:
        for s in stores:
            s.close()


# ---- reports ------------------------------------------------------------------------------------------


def test_reports_join_reuses_with_the_code_offered_again(store: Storage) -> None:
    request = CodeRequest(type=CodeType.A, page="pages/index/index?x=1")
    record = store.history.save_pending(request, ALICE, key=request.reuse_key(), app="wxapp1", sandbox=False).record
    store.audit.record("slack:U_BOB", "reused", record.id, by="slack")
    store.audit.record(ALICE.key, "reused", record.id)
    store.audit.record("slack:U_CAROL", "reused", "gone00000000")  # the code's row no longer exists
    store.audit.record("slack:U_BOB", "renamed", record.id)  # not a reuse
    since, until = window()
    rows = store.reports.reuses(since, until)
    assert rows == [
        ReuseRow(actor="slack:U_BOB", code_id=record.id, type="A", app="wxapp1", page="pages/index/index?x=1"),
        ReuseRow(actor="slack:U_ALICE", code_id=record.id, type="A", app="wxapp1", page="pages/index/index?x=1",
                 requested_by_name="alice"),  # the actor's latest known display name
        ReuseRow(actor="slack:U_CAROL", code_id="gone00000000"),
    ]
    assert store.reports.reuses(until, window(10)[1]) == []


def test_test_scans_are_kept_apart_and_real_counts_read_one_index(store: Storage) -> None:
    from storage.scans import TEST_SOURCE

    at = 1_700_000_000.0
    store.scans.add_many([("k=abcdefghij", at, "v1", "wxa"), ("k=abcdefghij", at + 1, "v2", "web"),
                          ("k=abcdefghij", at + 2, "v3", TEST_SOURCE), ("k=klmnopqrst", at, None, TEST_SOURCE)])
    assert (store.scans.count("k=abcdefghij"), store.scans.count("k=abcdefghij", tests=True)) == (2, 1)
    assert store.scans.count("k=abcdefghij", at + 1) == 1 and store.scans.unique("k=abcdefghij") == 2
    assert store.scans.totals(["k=abcdefghij", "k=klmnopqrst"]) == {"k=abcdefghij": 2}
    assert store.scans.top(at, at + 10) == [("k=abcdefghij", 2)]
    if store.dialect != "sqlite":
        return  # the plan below is SQLite's words; PostgreSQL's planner chooses by its statistics
    plan = " ".join(str(row[3]) for row in store.db.execute(
        "EXPLAIN QUERY PLAN SELECT count(*) FROM scans WHERE key = ? AND source <> ? AND at >= ?",
        ["k=abcdefghij", TEST_SOURCE, at]).fetchall())
    assert "COVERING INDEX scans_key_at_source" in plan  # a code's real scans since a day: the index alone


def test_scans_keep_their_page_and_platform_and_are_counted_and_exported_by_them(store: Storage) -> None:
    from storage.scans import TEST_SOURCE

    key, at = "k=routes0001", 1_700_000_000.0
    store.scans.add_many([(key, at, "h1", "wxa", "pages/a", "ios"), (key, at + 1, "h2", "link", "pages/b", "android"),
                          (key, at + 2, None, "wxa", "pages/a", None), (key, at + 3, "h3", TEST_SOURCE, "pages/a", "devtools"),
                          ("k=routes0002", at, None, "wxa", "pages/z", "ios")])
    assert store.scans.by(key, "page") == {"pages/a": 2, "pages/b": 1}  # test scans apart
    assert store.scans.by(key, "platform") == {"ios": 1, "android": 1, None: 1}
    assert store.scans.by(key, "source", at + 1) == {"link": 1, "wxa": 1}
    assert store.scans.pages_per_bucket(key, [at, at + 1, at + 10]) == [{"pages/a": 1}, {"pages/b": 1, "pages/a": 1}]
    assert list(store.scans.export(key, at + 1)) == [(at + 1, "pages/b", "android", "link", "h2"),
                                                    (at + 2, "pages/a", None, "wxa", None),
                                                    (at + 3, "pages/a", "devtools", TEST_SOURCE, "h3")]


def test_a_live_codes_routes_are_kept_with_its_destination_and_its_history(store: Storage) -> None:
    request = CodeRequest.parse({"page": "pages/minpcode/router", "scene": "k=routes0003", "type": "B"})
    record = store.history.save_pending(request, ALICE, key=request.reuse_key(), app="wxapp1", sandbox=False).record
    store.live.create("k=routes0003", record.id, "pages/a", "slack:U_ALICE", None)
    routes = '{"share":[["pages/a",70],["pages/b",30]]}'
    store.live.set_page("k=routes0003", "pages/a", "slack:U_ALICE", routes)
    found = store.live.resolve("k=routes0003").live
    assert found is not None and (found.page, found.routes) == ("pages/a", routes)
    assert [d.routes for d in store.live.destinations("k=routes0003")] == [None, routes]
    store.live.set_page("k=routes0003", "pages/c", None)
    assert store.live.get("k=routes0003").routes is None  # type: ignore[union-attr]
