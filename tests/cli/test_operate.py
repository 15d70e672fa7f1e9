"""The deploy gates of ``minpcode migrate --check`` and ``minpcode backup`` (issue 24), run in-process over a
real data folder: ``migrate --check`` exits 1 while a migration would run (``--json`` lists them), and
``backup`` keeps an existing archive unless ``--force``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlite_utils

from storage.backup import BackupExists, _place_new, backup
from storage.db import DB_NAME, pending_migrations
from storage.migrations import CHANGES_EXISTING, MIGRATIONS, migrate
from tests.cli.test_cli import B_ARGS, Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def old_database(folder: Path, applied: int) -> None:
    """A database an older minpcode left: the first ``applied`` migrations only."""
    folder.mkdir(parents=True)
    db = sqlite_utils.Database(folder / DB_NAME)
    migrate(db, MIGRATIONS[:applied])
    db.conn.close()


def test_migrate_check_exits_1_while_migrations_would_run_and_lists_them_as_json(cli: Cli) -> None:
    old_database(cli.data, 1)
    todo = [name for name, _ in MIGRATIONS[1:]]
    listed = cli.run("migrate", "--check", "--json")
    assert listed.returncode == 1, listed.stderr
    pending = json.loads(listed.stdout)
    assert [p["name"] for p in pending] == todo
    assert {p["name"] for p in pending if p["changes_existing_tables"]} == set(CHANGES_EXISTING) & set(todo)
    assert f"{len(todo)} migrations would run" in listed.stderr  # the words beside the JSON, not in it
    said = cli.run("migrate", "--check")
    assert said.returncode == 1 and f"{len(todo)} migrations would run" in said.stdout
    assert [name for name, _ in pending_migrations(cli.data)] == todo  # --check changed nothing

    applied = cli.run("migrate", "--json")
    assert applied.returncode == 0 and [p["name"] for p in json.loads(applied.stdout)] == todo
    gate = cli.run("migrate", "--check", "--json")
    assert gate.returncode == 0 and json.loads(gate.stdout) == [] and "up to date" in gate.stderr
    assert cli.run("migrate", "--check").returncode == 0


def test_migrate_check_on_a_folder_without_a_database_would_run_them_all(cli: Cli) -> None:
    listed = cli.run("migrate", "--check", "--json")
    assert listed.returncode == 1 and len(json.loads(listed.stdout)) == len(MIGRATIONS)
    assert not (cli.data / DB_NAME).exists()


def test_backup_keeps_an_existing_archive_unless_force(cli: Cli) -> None:
    cli.ok("create", *B_ARGS)
    archive = cli.cwd / "minpcode.tar.gz"
    cli.ok("backup", str(archive))
    first = archive.read_bytes()
    cli.ok("create", "--page", "pages/index/index", "--type", "B", "--scene", "id=43")

    refused = cli.run("backup", str(archive))
    assert refused.returncode == 2 and refused.stdout == ""
    [line] = refused.stderr.strip().splitlines()  # one line, both languages, naming the file and --force
    assert str(archive) in line and "--force" in line and "已存在" in line and "exists already" in line
    assert archive.read_bytes() == first and not list(cli.cwd.glob("*.partial"))

    replaced = cli.run("backup", str(archive), "--force")
    assert replaced.returncode == 0 and "2 codes" in replaced.stdout and archive.read_bytes() != first


def test_an_archive_written_meanwhile_is_kept(tmp_path: Path) -> None:
    """The check before the copy can be overtaken: the archive is placed with a link, never over a file."""
    data = tmp_path / "data"
    old_database(data, len(MIGRATIONS))
    target = tmp_path / "b.tar.gz"
    target.write_bytes(b"someone else's archive")
    with pytest.raises(BackupExists) as refused:
        backup(data, target, replace=False)
    assert str(target) in refused.value.en and "已存在" in refused.value.zh
    partial = tmp_path / "c.tar.gz.partial"
    partial.write_bytes(b"ours")
    with pytest.raises(BackupExists):
        _place_new(partial, target)
    assert target.read_bytes() == b"someone else's archive" and not partial.exists()
    assert backup(data, tmp_path / "new.tar.gz", replace=False).path.is_file()
