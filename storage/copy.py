"""``minpcode db copy --to postgresql://…``: an existing SQLite history moved into PostgreSQL, every table (images
included), the counts checked.

    report = copy_to_postgres(data_dir, url)            # refuses a target that holds data
    report = copy_to_postgres(data_dir, url, force=True)  # empties it first

The source is opened (and migrated) as ``serve`` would open it; the target is set up as a new database is at a
first start. Tables go in the order their foreign keys need, a chunk at a time, all in one transaction: a copy
that fails leaves the target as it was. Identity columns keep their values and their sequences continue after
them. The quota counts (``quota_used``) are copied as they are, not rebuilt by the target's triggers, so a count
the source kept is the count the target has. Then every table's rows are counted on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.errors import InputError
from storage import Storage
from storage.db import DB_NAME
from storage.engine import PostgresDatabase, SqliteDatabase, is_postgres_url
from storage.transaction import immediate

CHUNK = 2000
# Parents before children (posters name codes and images, live codes name codes …); _migrations is the target's own.
ORDER = ("codes", "images", "audit", "quota_keys", "quota_used", "scenes", "summary_runs", "summary_attempts",
         "posters", "poster_templates", "poster_settings", "live_codes", "live_destinations", "scans", "site_files",
         "form_drafts", "leases", "outbox", "seen", "batches", "batch_rows")


class CopyRefused(InputError):
    """The copy cannot be made as asked; nothing was written."""

    code_name = "copy_refused"


@dataclass
class CopyReport:
    tables: dict[str, int]  # rows copied, per table (equal on both sides)


def _tables(target: PostgresDatabase) -> list[str]:
    found = {str(r[0]) for r in target.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
        "AND table_type = 'BASE TABLE' AND table_name <> '_migrations'").fetchall()}
    extra = sorted(found - set(ORDER))  # a table added after this list: no foreign keys to wait for, by rule
    return [t for t in ORDER if t in found] + extra


def _columns(target: PostgresDatabase, table: str) -> list[str]:
    return [str(r[0]) for r in target.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()]


def _count(db: object, table: str) -> int:
    return int(db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])  # type: ignore[attr-defined]


def copy_to_postgres(data_dir: Path | str, url: str, *, force: bool = False) -> CopyReport:
    path = Path(data_dir) / DB_NAME
    if not path.is_file():
        raise CopyRefused(f"{path} 不存在：没有可复制的 SQLite 历史记录。",
                          f"{path} does not exist: there is no SQLite history to copy.")
    if not is_postgres_url(url):
        raise CopyRefused("--to 要填 postgresql://用户:密码@主机:5432/数据库。",
                          "--to takes a postgresql://user:password@host:5432/database URL.")
    source = Storage.open(data_dir)
    try:
        target = Storage.open(data_dir, url)  # a new database is set up here
    except BaseException:
        source.close()
        raise
    try:
        assert isinstance(target.db, PostgresDatabase) and isinstance(source.db, SqliteDatabase)
        pg, lite = target.db, source.db
        tables = _tables(pg)
        held = {t: n for t in tables if (n := _count(pg, t))}
        if held and not force:
            listed = ", ".join(f"{t} {n}" for t, n in held.items())
            raise CopyRefused(f"目标 PostgreSQL 数据库里已经有数据（{listed}）：没有复制。确定要覆盖就加 --force。",
                              f"The target PostgreSQL database already holds data ({listed}): nothing was copied. "
                              "Add --force to replace it.")
        missing = [t for t in tables if lite.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [t]).fetchone() is None]
        if missing:
            raise CopyRefused(f"两边的表结构不一致（SQLite 缺少 {', '.join(missing)}）：先升级 minpcode。",
                              f"The two schemas differ (SQLite lacks {', '.join(missing)}): upgrade minpcode first.")
        with immediate(pg):
            if held:
                pg.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
            for table in tables:
                columns = _columns(pg, table)
                listed = ", ".join(columns)
                insert = f'INSERT INTO "{table}" ({listed}) VALUES ({", ".join("?" * len(columns))})'
                if table == "quota_used":
                    pg.execute("DELETE FROM quota_used")  # the triggers filled it from quota_keys: the source's wins
                cursor = lite.conn.execute(f'SELECT {listed} FROM "{table}"')
                while rows := cursor.fetchmany(CHUNK):
                    pg.executemany(insert, rows)
                if "id" in columns and pg.execute(
                        "SELECT pg_get_serial_sequence(?, 'id')", [table]).fetchone()[0] is not None:
                    pg.execute(f"SELECT setval(pg_get_serial_sequence(?, 'id'), coalesce(max(id), 0) + 1, false) "
                               f'FROM "{table}"', [table])
        counts = {t: _count(source.db, t) for t in tables}
        copied = {t: _count(pg, t) for t in tables}
        differ = [t for t in tables if counts[t] != copied[t]]
        if differ:
            raise CopyRefused(f"复制后行数不一致：{', '.join(differ)}。", f"The row counts differ after the copy: "
                              f"{', '.join(f'{t} {counts[t]} -> {copied[t]}' for t in differ)}.")
        return CopyReport(tables=copied)
    finally:
        source.close()
        target.close()


__all__ = ["CopyRefused", "CopyReport", "copy_to_postgres"]
