"""The backends a test runs on: SQLite in its own folder, and PostgreSQL when a server is given.

    def test_x(database_url: str | None, tmp_path: Path) -> None:    # the fixture in tests/conftest.py
        store = Storage.open(tmp_path, database_url)                 # runs once per backend

``MINPCODE_TEST_DATABASE_URL`` names a PostgreSQL server (``postgresql://postgres@127.0.0.1:55432/postgres``; any
database on it that the user may connect to): each test gets a database of its own, created with a unique name
and dropped after. Unset, the PostgreSQL runs are skipped with that reason; under CI (``CI=true``, as .ci/run
sets it) a missing server fails them instead, so CI cannot pass without having run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

SERVER = "MINPCODE_TEST_DATABASE_URL"
BACKENDS = ("sqlite", "postgresql")


def server_url() -> str:
    """The PostgreSQL server the tests may use; skips (fails under CI) when none is given."""
    url = os.environ.get(SERVER, "").strip()
    if url:
        return url
    why = f"no PostgreSQL server: set {SERVER} (scripts/ci_postgres starts one)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{why}; under CI the PostgreSQL runs are required", pytrace=False)
    pytest.skip(why)


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """The URL of a new, empty database on the test server, dropped when the block ends."""
    server = server_url()
    name = f"minpcode_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(server)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
