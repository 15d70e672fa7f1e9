"""Migrations over a real SQLite file: an old database opened by the current code is converted once."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from bot import errors
from bot.models import Status
from bot.text import Text
from storage import Storage
from storage.db import DB_NAME, open_database
from storage.migrations import MIGRATIONS, migrate

# What the last release had applied when failures were one "zh\nen" string.
OLD_RELEASE = ("001_codes_images_audit_ledger", "002_codes_fts_trigram", "003_scenes_long_parameters",
               "004_summary_runs")
OLD_COLUMNS = ("id, request_key, type, provider, status, page, name, error_code, error, requested_by, request_json, "
               "created_at, updated_at")


def old_database(directory: Path) -> Path:
    """A database exactly as the last release left it, with rows it wrote (failures as "zh\\nen")."""
    path = directory / DB_NAME
    db = sqlite_utils.Database(sqlite3.connect(path, isolation_level=None))
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    steps = dict(MIGRATIONS)
    for name in OLD_RELEASE:
        steps[name](db)
        db.execute("INSERT INTO _migrations VALUES (?, '2026-01-01T00:00:00+00:00')", [name])
    rows = [
        # an upstream failure: WeChat's own errcode, both sentences
        ("up", "k1", "A", "wechat", "failed", "pages/a", "双十一-微博", "41030",
         "页面不存在于已发布的小程序中。\nThe page is not in the released mini program."),
        # our own failures were stored under the Python class name
        ("field", "k2", "A", "gio", "failed", "pages/b", None, "FieldError",
         "没有配置 GrowingIO，请改用 via=wechat。\nGrowingIO is not configured; use via=wechat."),
        ("quota", "k3", "C", "wechat", "failed", "pages/c", None, "QuotaExhausted",
         "A+C 码已达上限。\nThe A+C cap is reached."),
        ("notfound", "k4", "A", "gio", "failed", "pages/d", None, "NotFound",
         "GrowingIO 里没有这个推广活动。\nGrowingIO has no such campaign."),
        # str(None) when an upstream error carried no code; a message in one language only
        ("nocode", "k5", "B", "wechat", "failed", "pages/e", None, "None", "只有中文"),
        ("internal", "k6", "A", "wechat", "failed", "pages/f", None, "internal",
         "生成时出现意外错误，已记录，请稍后再试或联系管理员。\n"
         "Something unexpected went wrong; it was recorded. Try again later or tell an admin."),
        ("done", "k7", "B", "wechat", "done", "pages/g", "端午节-小红书", None, None),
    ]
    for i, values in enumerate(rows):
        at = f"2026-01-01T00:00:0{i}.000000Z"
        db.execute(f"INSERT INTO codes ({OLD_COLUMNS}) VALUES ({', '.join('?' * 13)})",
                   [*values, "U_ALICE", '{"type": "A", "page": "pages/a"}', at, at])
    db.conn.close()
    return path


@pytest.fixture
def upgraded(tmp_path: Path) -> Iterator[Storage]:
    old_database(tmp_path)
    store = Storage.open(tmp_path)
    yield store
    store.close()


def columns(store: Storage) -> list[str]:
    return [r[1] for r in store.db.execute("PRAGMA table_info(codes)").fetchall()]


def test_old_failures_become_two_sentences(upgraded: Storage) -> None:
    up = upgraded.history.get("up")
    assert up is not None and up.status is Status.FAILED and up.error_code == "41030"
    assert up.error_message == Text(zh="页面不存在于已发布的小程序中。", en="The page is not in the released mini program.")
    assert up.error == "页面不存在于已发布的小程序中。\nThe page is not in the released mini program."
    internal = upgraded.history.get("internal")
    assert internal is not None and internal.error_code == "internal"
    assert internal.error_message is not None and internal.error_message.en.startswith("Something unexpected")


def test_class_names_become_stable_names(upgraded: Storage) -> None:
    codes = {code_id: upgraded.history.get(code_id) for code_id in ("field", "quota", "notfound")}
    assert {k: r.error_code for k, r in codes.items() if r} == {
        "field": "invalid_field", "quota": "quota_exhausted", "notfound": "not_found"}
    assert {k: r.error_code for k, r in codes.items() if r} == {
        "field": errors.FieldError.code_name, "quota": errors.QuotaExhausted.code_name,
        "notfound": errors.NotFound.code_name}
    field = codes["field"]
    assert field is not None and field.error_message == Text(
        zh="没有配置 GrowingIO，请改用 via=wechat。", en="GrowingIO is not configured; use via=wechat.")


def test_no_error_code_is_a_python_artefact_after_the_upgrade(upgraded: Storage) -> None:
    stored = {r[0] for r in upgraded.db.execute("SELECT DISTINCT error_code FROM codes").fetchall()}
    assert stored == {"41030", "invalid_field", "quota_exhausted", "not_found", "internal", None}
    nocode = upgraded.history.get("nocode")
    assert nocode is not None and nocode.error_code is None
    assert nocode.error_message == Text(zh="只有中文", en="只有中文")  # one language: shown in both places


def test_successful_rows_stay_without_an_error(upgraded: Storage) -> None:
    done = upgraded.history.get("done")
    assert done is not None and done.status is Status.DONE
    assert (done.error_code, done.error_zh, done.error_en, done.error_message) == (None, None, None, None)


def test_the_old_column_is_gone_and_search_still_works(upgraded: Storage) -> None:
    assert "error" not in columns(upgraded) and {"error_zh", "error_en"} <= set(columns(upgraded))
    # The full-text index joins on rowid: the rewrite of the table must have kept every row's rowid.
    assert [r.id for r in upgraded.history.search("端午节")] == ["done"]
    assert [r.id for r in upgraded.history.search("双十一")] == ["up"]
    upgraded.db.execute("INSERT INTO codes_fts (codes_fts, rank) VALUES ('integrity-check', 1)")  # raises if not


def test_migrations_are_applied_once_in_order(tmp_path: Path) -> None:
    old_database(tmp_path)
    db = open_database(tmp_path)
    applied = [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY rowid").fetchall()]
    assert applied == [name for name, _ in MIGRATIONS]
    assert applied[:4] == list(OLD_RELEASE) and "005_codes_errors_as_data" in applied
    before = db.execute("SELECT id, error_code, error_zh, error_en FROM codes ORDER BY id").fetchall()
    assert migrate(db) == []  # nothing left to do
    db.conn.close()
    again = open_database(tmp_path)
    assert migrate(again) == []
    assert again.execute("SELECT id, error_code, error_zh, error_en FROM codes ORDER BY id").fetchall() == before
    again.conn.close()


def test_a_new_database_gets_every_migration(tmp_path: Path) -> None:
    db = sqlite_utils.Database(sqlite3.connect(tmp_path / "fresh.db", isolation_level=None))
    assert migrate(db) == [name for name, _ in MIGRATIONS]
    assert migrate(db) == []
    assert len({name for name, _ in MIGRATIONS}) == len(MIGRATIONS)  # a name identifies one step


def test_a_failing_migration_leaves_nothing_half_done(tmp_path: Path) -> None:
    db = sqlite_utils.Database(sqlite3.connect(tmp_path / "fresh.db", isolation_level=None))

    def broken(db: sqlite_utils.Database) -> None:
        db.execute("CREATE TABLE half (x INTEGER)")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        migrate(db, [*MIGRATIONS, ("999_broken", broken)])
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
    assert "half" not in tables and "codes" in tables
    assert "999_broken" not in {r[0] for r in db.execute("SELECT name FROM _migrations").fetchall()}


def test_one_live_row_per_request_key_settles_the_duplicates_an_older_version_made(tmp_path: Path) -> None:
    # Two processes could each make the same request before the database held it: keep the code reuse was
    # offering, delete another made one (its id and image still answer), fail another pending one.
    db = sqlite_utils.Database(sqlite3.connect(tmp_path / DB_NAME, isolation_level=None))
    names = [name for name, _ in MIGRATIONS]
    migrate(db, MIGRATIONS[:names.index("codes_one_live_per_key")])
    rows = [("k1", "pending0", "pending", 0), ("k1", "doneold", "done", 1), ("k1", "donenew", "done", 2),
            ("k2", "pendinga", "pending", 0), ("k2", "pendingb", "pending", 1),
            ("k3", "failed", "failed", 0), ("k3", "madeafter", "done", 1),
            ("k4", "deleted", "deleted", 0), ("k4", "remade", "done", 1)]
    for key, code_id, status, second in rows:
        at = f"2026-01-01T00:00:0{second}.000000Z"
        db.execute("INSERT INTO codes (id, request_key, type, provider, status, page, requested_by, request_json, "
                   "created_at, updated_at, image_sha256) VALUES (?, ?, 'A', 'wechat', ?, 'pages/a', 'slack:U1', "
                   "'{\"type\": \"A\", \"page\": \"pages/a\"}', ?, ?, ?)",
                   [code_id, key, status, at, at, "f" * 64 if status == "done" else None])
    db.conn.close()

    store = Storage.open(tmp_path)
    status = {r[0]: r[1] for r in store.db.execute("SELECT id, status FROM codes").fetchall()}
    assert status == {"pending0": "failed", "doneold": "done", "donenew": "deleted", "pendinga": "pending",
                      "pendingb": "failed", "failed": "failed", "madeafter": "done", "deleted": "deleted",
                      "remade": "done"}
    pending0 = store.history.get("pending0")
    assert pending0 is not None and pending0.error_code == "duplicate_request"
    assert pending0.error_message is not None and "doneold" in pending0.error_message.en
    assert "doneold" in pending0.error_message.zh
    said = [(e["actor"], e["action"], e["detail"]) for e in store.audit.for_code("donenew")]
    assert said == [("minpcode:migration", "deleted", {"duplicate_of": "doneold"})]  # why it left the lists
    assert list((tmp_path / "backups").glob("before-codes_one_live_per_key-*.tar.gz"))  # rows were changed
    found = {key: store.history.find_by_key(key) for key in ("k1", "k2", "k3", "k4")}
    assert {key: r.id for key, r in found.items() if r} == {"k1": "doneold", "k2": "pendinga", "k3": "madeafter",
                                                             "k4": "remade"}
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        store.db.execute("UPDATE codes SET status = 'done' WHERE id = 'donenew'")
    store.close()
