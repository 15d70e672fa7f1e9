"""A database file that is not a database at start (issue 22): one message naming the file and the way
back (``minpcode restore``), in both languages, exit 2 — never a traceback — for the CLI commands, chat
and serve."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.test_cli import Cli, Ran
from tests.served import Served

GARBAGE = bytes(range(256)) * 80  # 20 KB that no SQLite header starts with


def damage(data: Path) -> Path:
    data.mkdir(parents=True, exist_ok=True)
    db = data / "minpcode.db"
    db.write_bytes(GARBAGE)
    return db


def assert_one_message(ran: Ran | subprocess.CompletedProcess[str], db: Path, output: str) -> None:
    assert ran.returncode == 2, output
    assert "Traceback" not in output and "sqlite3" not in output, output
    said = [line for line in output.splitlines() if str(db) in line]
    assert len(said) == 2, output  # one line in Chinese, one in English
    assert all("minpcode restore" in line for line in said), output
    assert "损坏" in said[0] and "damaged" in said[1], output


@pytest.mark.parametrize("args", [("list",), ("show", "abcdefabcdef"), ("migrate",), ("chat",),
                                  ("create", "--page", "pages/index/index", "--type", "B", "--scene", "id=1")])
def test_a_damaged_database_is_one_message_and_exit_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    cli = Cli(tmp_path)
    db = damage(cli.data)
    ran = cli.run(*args, stdin="exit\n")
    assert_one_message(ran, db, ran.stdout + ran.stderr)
    assert db.read_bytes() == GARBAGE  # left as it was, for whoever looks at it


@pytest.mark.slow
def test_serve_on_a_damaged_database_says_so_in_one_message_and_exits_2(tmp_path: Path) -> None:
    db = damage(tmp_path / "data")
    served = Served(tmp_path / "data")
    with pytest.raises(RuntimeError, match="serve exited 2"):
        served.start(timeout=60)
    served.stop()
    ran = subprocess.CompletedProcess(args=[], returncode=served.proc.returncode if served.proc else -1)
    assert_one_message(ran, db, served.log())
