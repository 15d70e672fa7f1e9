"""Both backends hold the same schema and migrate the same way (storage/engine.py, storage/pg_schema.py,
storage/migrations.py): a new PostgreSQL database is set up without asking, one that holds data is changed only
with the operator's go-ahead, and a migration added later runs on both."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from bot.models import CodeRequest, CodeType, Requester
from storage import Storage, migrations
from storage.db import MigrationNeedsGoAhead, pending_migrations
from storage.engine import Database, PostgresDatabase, to_driver
from storage.transaction import immediate
from tests.databases import fresh_postgres

ALICE = Requester(chat="slack", user_id="U_ALICE", user_name="alice")


def columns(db: Database) -> dict[str, list[str]]:
    """Every table of ours and its columns, in order."""
    if isinstance(db, PostgresDatabase):
        rows = db.execute("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = "
                          "current_schema() ORDER BY table_name, ordinal_position").fetchall()
    else:
        rows = db.execute("SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p "
                          "WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE 'codes_fts%' "
                          "ORDER BY m.name, p.cid").fetchall()
    found: dict[str, list[str]] = {}
    for table, column in rows:
        found.setdefault(str(table), []).append(str(column))
    return found


def indexes(db: Database) -> set[str]:
    if isinstance(db, PostgresDatabase):
        rows = db.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                          "AND indexname NOT IN (SELECT conname FROM pg_constraint) "  # primary keys, UNIQUE columns
                          "AND indexname NOT LIKE 'codes_search_%'").fetchall()
    else:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").fetchall()
    return {str(r[0]) for r in rows}


def test_the_postgresql_baseline_is_the_sqlite_schema(tmp_path: Path) -> None:
    with fresh_postgres() as url:
        lite, pg = Storage.open(tmp_path / "lite"), Storage.open(tmp_path / "pg", url)
        try:
            assert columns(pg.db) == columns(lite.db)  # every table and column, in the same order
            assert indexes(pg.db) == indexes(lite.db)  # the same indexes, the partial unique one included
            search = {r[0] for r in pg.db.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE "
                                                  "'codes_search_%'").fetchall()}
            assert len(search) == 7  # pg_trgm on every column SQLite's codes_fts indexes
        finally:
            lite.close()
            pg.close()


def test_a_new_postgresql_database_is_set_up_at_start_and_then_current(tmp_path: Path) -> None:
    with fresh_postgres() as url:
        todo = pending_migrations(tmp_path, url)
        assert todo[0] == (migrations.BASELINE, False) and not any(changes for _, changes in todo)
        Storage.open(tmp_path, url).close()  # no go-ahead needed: nothing to lose
        assert pending_migrations(tmp_path, url) == []
        store = Storage.open(tmp_path, url)
        try:
            applied = {r[0] for r in store.db.execute("SELECT name FROM _migrations").fetchall()}
            assert applied == {migrations.BASELINE} | {name for name, _ in migrations.MIGRATIONS}
        finally:
            store.close()


def _later(db: Database) -> None:
    # a migration as the module docstring asks them to be written: SQL both dialects accept
    db.execute("ALTER TABLE codes ADD COLUMN later_note TEXT")
    db.execute("UPDATE codes SET later_note = CASE WHEN status = 'done' THEN 'made' ELSE 'not made' END")


def _one_code(store: Storage) -> str:
    request = CodeRequest(type=CodeType.A, page="pages/index/index")
    saved = store.history.save_pending(request, ALICE, key=request.reuse_key(), app="wxapp", sandbox=False)
    return saved.record.id


def test_a_later_migration_runs_on_both_and_asks_postgresql_for_a_go_ahead(
        tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Storage.open(tmp_path, database_url)
    code_id = _one_code(store)
    store.close()
    # the list as it will be once someone adds a migration that changes a table
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, ("later_note", _later)])
    monkeypatch.setattr(migrations, "CHANGES_EXISTING", migrations.CHANGES_EXISTING | {"later_note"})
    assert pending_migrations(tmp_path, database_url) == [("later_note", True)]
    if database_url is not None:
        with pytest.raises(MigrationNeedsGoAhead) as refused:
            Storage.open(tmp_path, database_url)
        assert "pg_dump" in refused.value.en and "MINPCODE_MIGRATE=yes" in refused.value.en
        assert "pg_dump" in refused.value.zh and "MINPCODE_MIGRATE=yes" in refused.value.zh
        assert pending_migrations(tmp_path, database_url) == [("later_note", True)]  # nothing was changed
    store = Storage.open(tmp_path, database_url, migrate=True)  # SQLite makes its backup by itself
    try:
        assert store.db.execute("SELECT later_note FROM codes WHERE id = ?", [code_id]).fetchone()[0] == "not made"
        assert pending_migrations(tmp_path, database_url) == []
    finally:
        store.close()


def test_two_hosts_starting_on_one_new_database_set_it_up_once(tmp_path: Path) -> None:
    with fresh_postgres() as url:
        go, opened, failed = threading.Barrier(3), [], []

        def start() -> None:
            go.wait(timeout=10)
            try:
                opened.append(Storage.open(tmp_path, url))
            except Exception as exc:
                failed.append(exc)

        hosts = [threading.Thread(target=start) for _ in range(3)]
        for host in hosts:
            host.start()
        for host in hosts:
            host.join(timeout=60)
        try:
            assert failed == [] and len(opened) == 3
            rows = opened[0].db.execute("SELECT name, count(*) FROM _migrations GROUP BY name HAVING count(*) > 1")
            assert rows.fetchall() == []
        finally:
            for store in opened:
                store.close()


def test_statements_inside_a_transaction_share_its_connection_across_threads_not_into_it(tmp_path: Path) -> None:
    """On PostgreSQL a transaction holds one pooled connection for its block: its statements see its own writes,
    another thread's statement meanwhile is not part of it (and does not see them until the commit)."""
    with fresh_postgres() as url:
        store = Storage.open(tmp_path, url)
        try:
            store.db.execute("CREATE TABLE t (x BIGINT PRIMARY KEY)")
            seen_outside: list[int] = []
            with immediate(store.db):
                store.db.execute("INSERT INTO t VALUES (1)")
                assert store.db.execute("SELECT count(*) FROM t").fetchone()[0] == 1
                reader = threading.Thread(target=lambda: seen_outside.append(
                    int(store.db.execute("SELECT count(*) FROM t").fetchone()[0])))
                reader.start()
                reader.join(timeout=10)
            assert seen_outside == [0]
            assert store.db.execute("SELECT count(*) FROM t").fetchone()[0] == 1
            with pytest.raises(RuntimeError, match="does not nest"), immediate(store.db), immediate(store.db):
                pass  # refused at once, as SQLite refuses it, rather than waiting on its own lock
        finally:
            store.close()


def test_placeholders_are_translated_once_and_literals_are_left_alone() -> None:
    assert to_driver("SELECT * FROM t WHERE a = ? AND b LIKE '%?%' AND c = :name AND d::text = ?") == (
        "SELECT * FROM t WHERE a = %s AND b LIKE '%%?%%' AND c = %(name)s AND d::text = %s")
    assert to_driver("SELECT '{}' || \"a?b\" FROM t") == "SELECT '{}' || \"a?b\" FROM t"


def test_without_a_server_the_postgresql_runs_skip_here_and_fail_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.databases import SERVER, server_url

    monkeypatch.delenv(SERVER, raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=SERVER):
        server_url()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="under CI"):
        server_url()


def test_a_connection_the_server_dropped_is_replaced(tmp_path: Path) -> None:
    """After a PostgreSQL restart (here: its connections ended by the server) a pooled connection fails once at
    most, is thrown away, and every statement after it is answered."""
    with fresh_postgres() as url:
        store = Storage.open(tmp_path, url)
        try:
            assert store.db.execute("SELECT 1").fetchone() == (1,)
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                              "current_database() AND pid <> pg_backend_pid()")
            answers = []
            for _ in range(4):
                try:
                    answers.append(store.db.execute("SELECT 1").fetchone())
                except psycopg.OperationalError:
                    answers.append(None)
            assert answers[1:] == [(1,)] * 3
        finally:
            store.close()
