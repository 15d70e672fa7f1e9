"""Backups: one ``.tar.gz`` holding a consistent copy of the database, the data folder's files and a manifest.

    report = backup(storage_or_data_dir, "minpcode-2026-12-01.tar.gz")   # safe while ``serve`` writes
    report = restore("minpcode-2026-12-01.tar.gz", empty_data_dir)       # checked before it returns

The database is copied with SQLite's online backup API in a single step, which reads one snapshot
(WAL mode lets writers go on meanwhile), so the copy is what the history was at one instant. Image
bytes live in the database; any other file in the data folder (the console's ``out/`` images, for
instance) is archived beside it. The manifest records each table's row count and each file's
SHA-256; ``restore`` refuses a data folder that is not empty, then checks ``PRAGMA integrity_check``,
the hashes and the row counts before it says it is done, and removes what it wrote if any check fails.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import sqlite3
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import sqlite_utils

from bot.errors import InputError
from storage.db import DB_NAME


class _Open(Protocol):
    """An open store (``storage.Storage``): what a backup needs of it is its database."""

    @property
    def db(self) -> sqlite_utils.Database: ...

__all__ = ["BACKUP_DIR", "BackupError", "BackupExists", "BackupReport", "UsePostgresTools", "backup",
           "backup_before_migration", "restore"]

log = logging.getLogger("minpcode.storage")

FORMAT = 1
MANIFEST = "manifest.json"
BACKUP_DIR = "backups"  # inside the data folder: automatic backups before migrations, never archived
_SKIP = {DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", f"{DB_NAME}-journal"}


class BackupError(InputError):
    """The archive or the target folder cannot be used; nothing was changed."""


class BackupExists(BackupError):
    """The archive to write exists already and was not to be replaced; it was left as it was."""


class UsePostgresTools(BackupError):
    """The history is in PostgreSQL: its own tools back it up and restore it (one line each way)."""

    code_name = "backup_use_pg_dump"

    def __init__(self) -> None:
        super().__init__(
            '历史记录在 PostgreSQL 里（MINPCODE_DATABASE_URL）：备份用 pg_dump -Fc -f minpcode.dump "$MINPCODE_DATABASE_URL"，'
            '恢复用 pg_restore --clean --if-exists -d "$MINPCODE_DATABASE_URL" minpcode.dump。',
            'The history is in PostgreSQL (MINPCODE_DATABASE_URL): back it up with pg_dump -Fc -f minpcode.dump '
            '"$MINPCODE_DATABASE_URL" and restore it with pg_restore --clean --if-exists -d "$MINPCODE_DATABASE_URL" '
            'minpcode.dump.')


@dataclass
class BackupReport:
    path: Path
    tables: dict[str, int]
    files: list[str] = field(default_factory=list)
    size: int = 0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    return {name: int(conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]) for name in names}


def _data_files(data_dir: Path) -> list[Path]:
    """Regular files of the data folder other than the database itself and earlier backups."""
    found = []
    for path in sorted(data_dir.rglob("*")):
        relative = path.relative_to(data_dir)
        if path.is_symlink() or not path.is_file() or relative.parts[0] == BACKUP_DIR:
            continue
        if len(relative.parts) == 1 and relative.name in _SKIP:
            continue
        found.append(path)
    return found


def _copy_database(source: sqlite3.Connection, target: Path) -> None:
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # pages=-1: the whole database from one read snapshot
        copy.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no -wal beside it
    finally:
        copy.close()


def _data_dir_of(source: _Open | Path | str) -> Path:
    if isinstance(source, Path | str):
        return Path(source)
    return Path(source.db.conn.execute("PRAGMA database_list").fetchone()[2]).parent


def backup(source: _Open | Path | str, path: Path | str, *, replace: bool = True) -> BackupReport:
    """Write one archive at ``path`` from an open ``Storage`` or a data folder.

    The copy is read over a connection of its own, so the service's connection is never shared. With
    ``replace=False`` an existing ``path`` is :class:`BackupExists` and stays as it was.
    """
    target, data_dir = Path(path), _data_dir_of(source)
    if not replace and target.exists():
        raise _exists(target)
    if not (data_dir / DB_NAME).is_file():
        raise BackupError(f"{data_dir} 里没有 minpcode 数据库（{DB_NAME}）。",
                          f"There is no minpcode database ({DB_NAME}) in {data_dir}.")
    conn = sqlite3.connect(f"file:{data_dir / DB_NAME}?mode=ro", uri=True, timeout=30)
    try:
        with tempfile.TemporaryDirectory(prefix="minpcode-backup-") as scratch:
            copy = Path(scratch) / DB_NAME
            _copy_database(conn, copy)
            return _write_archive(target, copy, data_dir, replace=replace)
    finally:
        conn.close()


def _place_new(partial: Path, target: Path) -> None:
    """``partial`` becomes ``target`` unless that exists: a link is never made over a file, so one written
    meanwhile is kept too. A file system without hard links gets the check and a rename."""
    try:
        os.link(partial, target)
    except FileExistsError:
        partial.unlink()
        raise _exists(target) from None
    except OSError:
        if target.exists():
            partial.unlink()
            raise _exists(target) from None
        os.replace(partial, target)
    else:
        partial.unlink()


def _exists(target: Path) -> BackupExists:
    return BackupExists(f"{target} 已存在，没有覆盖。", f"{target} exists already and was kept.")


def _write_archive(target: Path, copy: Path, data_dir: Path, *, replace: bool = True) -> BackupReport:
    check = sqlite3.connect(copy)
    try:
        tables = _row_counts(check)
        migrations = [row[0] for row in check.execute("SELECT name FROM _migrations ORDER BY name")]
    finally:
        check.close()
    partial = target.with_name(target.name + ".partial")
    skip = {target.resolve(), partial.resolve()}  # an archive written inside the data folder
    files = [p for p in _data_files(data_dir) if p.resolve() not in skip]
    names = [str(PurePosixPath(*p.relative_to(data_dir).parts)) for p in files]
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(),
        **_build(),
        "migrations": migrations,
        "tables": tables,
        "files": {DB_NAME: _sha256(copy)} | {name: _sha256(p) for name, p in zip(names, files, strict=True)},
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)  # it holds the whole history
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as archive:
        body = json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8")
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mtime, info.mode = len(body), int(datetime.now(UTC).timestamp()), 0o600
        archive.addfile(info, io.BytesIO(body))
        archive.add(copy, arcname=DB_NAME, recursive=False)
        for name, file in zip(names, files, strict=True):
            archive.add(file, arcname=name, recursive=False)
    if replace:
        os.replace(partial, target)
    else:
        _place_new(partial, target)
    return BackupReport(path=target, tables=tables, files=names, size=target.stat().st_size)


def _build() -> dict[str, str | None]:
    """The version and, when the installation knows it, the commit that wrote the backup (bot/version.py)."""
    from bot.version import __commit__, __version__

    return {"minpcode": __version__, "commit": __commit__}


def _damaged(path: Path, why: str) -> BackupError:
    return BackupError(f"{path} 不是完好的 minpcode 备份（{why}），没有恢复任何内容。",
                       f"{path} is not an intact minpcode backup ({why}); nothing was restored.")


def _safe_name(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return bool(parts) and not PurePosixPath(name).is_absolute() and ".." not in parts and parts[0] != BACKUP_DIR


def restore(path: Path | str, data_dir: Path | str) -> BackupReport:
    """Unpack the archive at ``path`` into ``data_dir`` (missing or empty), then check it."""
    source, target = Path(path), Path(data_dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} 不是空文件夹：恢复只写入空的数据文件夹，请换一个或先移走里面的文件。",
                          f"{target} is not an empty folder: restore only writes into an empty data folder; "
                          "choose another or move its files away first.")
    if not source.is_file():
        raise BackupError(f"找不到备份文件 {source}。", f"There is no backup file at {source}.")
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        manifest = _unpack(source, target)
        _verify(source, target, manifest)
    except BaseException:
        for child in target.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        if created:
            target.rmdir()
        raise
    os.chmod(target / DB_NAME, 0o600)
    files = sorted(name for name in manifest["files"] if name != DB_NAME)
    return BackupReport(path=source, tables=dict(manifest["tables"]), files=files, size=source.stat().st_size)


def _unpack(source: Path, target: Path) -> dict[str, Any]:
    try:
        with tarfile.open(source, mode="r:gz") as archive:
            member = archive.getmember(MANIFEST) if MANIFEST in archive.getnames() else None
            handle = archive.extractfile(member) if member else None
            if handle is None:
                raise _damaged(source, "no manifest 缺少清单")
            manifest = json.loads(handle.read().decode("utf-8"))
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise _damaged(source, "unknown format 格式不认识")
            wanted = manifest.get("files")
            if not isinstance(wanted, dict) or DB_NAME not in wanted or not all(map(_safe_name, wanted)):
                raise _damaged(source, "bad file list 文件清单有误")
            for name in wanted:
                entry = archive.extractfile(name)  # KeyError when missing
                if entry is None:
                    raise _damaged(source, f"{name} is not a file")
                out = target.joinpath(*PurePosixPath(name).parts)
                out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(out, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
                with os.fdopen(fd, "wb") as written:
                    shutil.copyfileobj(entry, written)
    except BackupError:
        raise
    except KeyError as exc:
        raise _damaged(source, f"missing {exc.args[0]} 缺少文件") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError, UnicodeDecodeError, ValueError) as exc:
        raise _damaged(source, type(exc).__name__) from None
    return manifest


def _verify(source: Path, target: Path, manifest: dict[str, Any]) -> None:
    for name, digest in manifest["files"].items():
        if _sha256(target.joinpath(*PurePosixPath(name).parts)) != digest:
            raise _damaged(source, f"{name}: checksum differs 校验和不符")
    conn = sqlite3.connect(f"file:{target / DB_NAME}?mode=ro", uri=True)
    try:
        verdict = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        if verdict != ["ok"]:
            raise _damaged(source, "integrity_check: " + "; ".join(map(str, verdict[:3])))
        counts = _row_counts(conn)
    except sqlite3.DatabaseError as exc:
        raise _damaged(source, f"database: {type(exc).__name__}") from None
    finally:
        conn.close()
    if counts != manifest.get("tables"):
        raise _damaged(source, "row counts differ 行数不符")


def backup_before_migration(conn: sqlite3.Connection, data_dir: Path, names: list[str]) -> Path:
    """A backup beside the database before migrations that change existing tables; logged."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = data_dir / BACKUP_DIR / f"before-{names[0]}-{stamp}.tar.gz"
    (data_dir / BACKUP_DIR).mkdir(exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(prefix="minpcode-backup-") as scratch:
        copy = Path(scratch) / DB_NAME
        _copy_database(conn, copy)
        _write_archive(target, copy, data_dir)
    log.warning("database backup before migrations %s: %s (restore with: minpcode restore %s)",
                ", ".join(names), target, target)
    return target
