"""The operator's commands with the history in PostgreSQL (MINPCODE_DATABASE_URL): doctor checks the connection and
the schema, migrate --check reads it, backup and restore say which tools to use instead."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import doctor
from bot.config import Settings
from bot.ports import Check
from bot.preflight import DatabasePreflight
from storage import Storage
from tests.cli.test_cli import Cli
from tests.databases import fresh_postgres
from tests.served import free_port


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
    assert schema[:2] == ("schema", "warning") and "will run at start" in schema[2]  # new: serve sets it up
    Storage.open(tmp_path / "data", database).close()
    assert rows(tmp_path, database)[1][:2] == ("schema", "ok")


def test_doctor_says_postgresql_cannot_be_reached_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://minpcode:Sup3rSecret@127.0.0.1:{free_port()}/minpcode"
    settings = Settings(_env_file=None, minpcode_data_dir=tmp_path, minpcode_database_url=url)  # type: ignore[call-arg]
    [row] = asyncio.run(doctor.diagnose([DatabasePreflight(settings)]))
    assert (row.part, row.name, row.status, row.setting) == ("database", "connection", "failed", "MINPCODE_DATABASE_URL")
    assert row.detail is not None and "Cannot reach PostgreSQL" in row.detail.en
    assert "Sup3rSecret" not in row.model_dump_json()


def test_doctor_on_sqlite_reads_the_schema_of_the_file(tmp_path: Path) -> None:
    assert [r[:2] for r in rows(tmp_path, None)] == [("schema", "ok")]  # no file yet: the first start makes it, nothing to warn of
    Storage.open(tmp_path / "data").close()
    assert [r[:2] for r in rows(tmp_path, None)] == [("schema", "ok")]


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
