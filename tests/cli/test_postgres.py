"""The operator's commands with the history in PostgreSQL (MINPCODE_DATABASE_URL): doctor checks the connection and
the schema, migrate --check reads it, backup and restore say which tools to use instead."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from bot import doctor
from bot.config import Settings
from bot.models import CodeRequest, CodeType, Provider, Requester, UpstreamResult
from bot.ports import Check
from bot.preflight import DatabasePreflight
from storage import Storage
from tests.cli.test_cli import Cli
from tests.databases import fresh_postgres
from tests.served import free_port

ALICE = Requester(chat="cli", user_id="alice", user_name="alice")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64 + bytes(range(256))  # bytes of every value survive the copy


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_postgres() as url:
        yield url


def rows(tmp_path: Path, url: str | None) -> list[tuple[str, str, str]]:
    settings = Settings(_env_file=None, minpcode_data_dir=tmp_path / "data", minpcode_database_url=url)  # type: ignore[call-arg]
    found: list[Check] = asyncio.run(doctor.diagnose([DatabasePreflight(settings)]))
    return [(r.name, r.status, r.detail.en if r.detail else "") for r in found]


def test_doctor_reads_the_connection_and_the_schema_of_postgresql(tmp_path: Path, database: str) -> None:
    [(name, status, detail), schema] = rows(tmp_path, database)
    assert (name, status) == ("connection", "ok") and detail.startswith("PostgreSQL 1")
    assert schema[:2] == ("schema", "ok") and "will run at start" in schema[2]  # new: serve sets it up
    Storage.open(tmp_path / "data", database).close()
    assert rows(tmp_path, database)[1][:2] == ("schema", "ok")


def test_doctor_fails_a_postgresql_schema_that_waits_for_the_go_ahead(
        tmp_path: Path, database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from storage import migrations

    Storage.open(tmp_path / "data", database).close()
    later = ("later_change", lambda db: db.execute("ALTER TABLE codes ADD COLUMN later TEXT"))
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, later])
    monkeypatch.setattr(migrations, "CHANGES_EXISTING", migrations.CHANGES_EXISTING | {"later_change"})
    settings = Settings(_env_file=None, minpcode_data_dir=tmp_path / "data", minpcode_database_url=database)  # type: ignore[call-arg]
    schema = asyncio.run(doctor.diagnose([DatabasePreflight(settings)]))[1]
    assert (schema.name, schema.status, schema.setting) == ("schema", "failed", "MINPCODE_MIGRATE")
    assert schema.fix is not None and "pg_dump" in schema.fix.en and "MINPCODE_MIGRATE=yes" in schema.fix.en


def test_doctor_says_postgresql_cannot_be_reached_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://minpcode:Sup3rSecret@127.0.0.1:{free_port()}/minpcode"
    settings = Settings(_env_file=None, minpcode_data_dir=tmp_path, minpcode_database_url=url)  # type: ignore[call-arg]
    [row] = asyncio.run(doctor.diagnose([DatabasePreflight(settings)]))
    assert (row.part, row.name, row.status, row.setting) == ("database", "connection", "failed", "MINPCODE_DATABASE_URL")
    assert row.detail is not None and "Cannot reach PostgreSQL" in row.detail.en
    assert "Sup3rSecret" not in row.model_dump_json()


def test_doctor_on_sqlite_reads_the_schema_of_the_file(tmp_path: Path) -> None:
    [(name, status, detail)] = rows(tmp_path, None)  # no file yet: made at start
    assert (name, status) == ("schema", "ok") and "will run at start" in detail
    Storage.open(tmp_path / "data").close()
    assert rows(tmp_path, None) == [("schema", "ok", "SQLite: the schema is up to date.")]


def test_backup_and_restore_name_postgresqls_own_tools(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    url = "postgresql://minpcode@127.0.0.1:5432/minpcode"
    for args in (("backup", str(tmp_path / "b.tar.gz")), ("restore", str(tmp_path / "b.tar.gz"))):
        done = cli.run(*args, MINPCODE_DATABASE_URL=url)
        assert done.returncode == 2, done
        assert "pg_dump -Fc" in done.stderr and "pg_restore" in done.stderr and "备份" in done.stderr
    assert not (tmp_path / "b.tar.gz").exists()


def test_migrate_check_reads_postgresql(tmp_path: Path, database: str) -> None:
    cli = Cli(tmp_path)
    done = cli.run("migrate", "--check", MINPCODE_DATABASE_URL=database)
    assert "postgresql_baseline" in done.stdout and "PostgreSQL" in done.stdout
    Storage.open(tmp_path / "data", database).close()
    done = cli.run("migrate", "--check", MINPCODE_DATABASE_URL=database)
    assert done.returncode == 0 and "up to date" in done.stdout
    assert not (tmp_path / "data" / "minpcode.db").exists()  # nothing was read from (or left in) the folder


def a_history(data: Path) -> tuple[str, str]:
    """A SQLite history touching most tables: a made code with its image, its ledger row and audit, a live code
    with a destination and scans, an outbox row and a summary run. Answers (code id, image digest)."""
    store = Storage.open(data)
    try:
        request = CodeRequest(type=CodeType.B, page="pages/index/index", scene="id=1", name="春季海报")
        saved = store.history.save_pending(request, ALICE, key=request.reuse_key(), app="wxapp", sandbox=False)
        code_id = saved.record.id
        digest = store.images.put(PNG, "image/png")
        store.history.mark_done(code_id, UpstreamResult(provider=Provider.WECHAT, mime="image/png"), digest)
        store.ledger.spend("wxapp", request.reuse_key(), code_id)
        store.audit.record(ALICE.key, "created", code_id, via="cli")
        store.live.create("k=abcdefghij", code_id, "pages/a/a", ALICE.key, None)
        store.scans.add_many([("k=abcdefghij", 1_700_000_000.0 + n, f"v{n}", "wxa") for n in range(5)])
        store.outbox.accept("slack", "run_text", "{}", seen="slack:1", ttl=600)
        now = datetime.now(UTC)
        store.summary_runs.start_manual(now - timedelta(days=7), now, now=now)
    finally:
        store.close()
    return code_id, digest


def test_db_copy_moves_every_table_into_postgresql_and_checks_the_counts(tmp_path: Path, database: str) -> None:
    cli = Cli(tmp_path)
    code_id, digest = a_history(cli.data)
    done = cli.run("db", "copy", "--to", database)
    assert done.returncode == 0, done
    assert "every table's count matches (1 codes, 1 images)" in done.stdout
    moved = Storage.open(cli.data, database)
    try:
        record = moved.history.get(code_id)
        assert record is not None and record.name == "春季海报" and record.status.value == "done"
        assert moved.images.get(digest) == (PNG, "image/png")  # the bytes themselves
        assert moved.scans.count("k=abcdefghij") == 5 and moved.ledger.used("wxapp") == 1
        assert moved.live.get("k=abcdefghij") is not None and not moved.outbox.first_seen("slack:1", 600)
        assert [e["action"] for e in moved.audit.for_code(code_id)] == ["created"]
        # identities continue after the copied ones
        assert moved.outbox.accept("slack", "run_text", "{}") == 2
    finally:
        moved.close()
    again = cli.run("db", "copy", "--to", database)
    assert again.returncode == 2 and "--force" in again.stderr and "codes 1" in again.stderr  # nothing replaced
    forced = cli.run("db", "copy", "--to", database, "--force")
    assert forced.returncode == 0, forced
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (1,)  # the target's own row is gone


def test_db_copy_refuses_a_folder_without_a_history(tmp_path: Path, database: str) -> None:
    done = Cli(tmp_path).run("db", "copy", "--to", database)
    assert done.returncode == 2 and "no SQLite history" in done.stderr
