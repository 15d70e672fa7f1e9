"""Backups and restores (storage/backup.py, ``minpcode backup|restore|migrate``) over real files and processes.

The consistency test runs a real ``minpcode serve`` child process and makes codes through its HTTP
API while backups are taken from the same data folder, as an operator's cron job would.
"""

from __future__ import annotations

import io
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import httpx
import pytest
import sqlite_utils

from bot.version import __commit__, __version__
from storage import Storage
from storage.backup import BACKUP_DIR, MANIFEST, BackupError, BackupReport, backup, restore
from storage.db import DB_NAME, pending_migrations
from storage.migrations import CHANGES_EXISTING, MIGRATIONS, migrate

KEY = "backup-test-key-0123456789abcdef"
SECRET_PREFIXES = ("WECHAT_", "GIO_", "SLACK_", "WECOM_", "MINPCODE_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SECRET_PREFIXES)}
    env.update(MINPCODE_DATA_DIR=str(data_dir), MINPCODE_SANDBOX="1", PYTHONUTF8="1", **extra)
    return env


def dump(db_path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table (FTS shadow tables included), in a stable order."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}
    finally:
        conn.close()


@pytest.fixture
def serving(tmp_path: Path):
    data = tmp_path / "live"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=child_env(data, MINPCODE_API_KEYS=f"cms:{KEY}"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, process.stdout and process.stdout.read()
        time.sleep(0.1)
    try:
        yield url, data
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_backup_while_serve_writes_restores_to_an_identical_history(serving, tmp_path: Path) -> None:
    url, data = serving
    made: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as client:
            for n in range(400):  # bounded; usually stopped much earlier
                if stop.is_set():
                    return
                answer = client.post("/api/weapp/qrcode", json={"path": "pages/index/index", "scene": f"n={n}"})
                assert answer.status_code == 200, answer.text
                made.append(answer.json()["id"])

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(made) < 3:
            time.sleep(0.05)
        during: list[BackupReport] = []
        deadline = time.monotonic() + 30
        while len(made) < 25 and time.monotonic() < deadline and thread.is_alive():
            during.append(backup(data, tmp_path / f"during-{len(during)}.tar.gz"))
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=60)
    counts = [r.tables["codes"] for r in during]
    assert len(set(counts)) >= 2, counts  # codes were written between the backups
    for i, report in enumerate(during):
        restored = tmp_path / f"restored-{i}"
        assert restore(report.path, restored).tables == report.tables
        snapshot = dump(restored / DB_NAME)
        # A snapshot of one instant: every done code has its image and its audit line.
        with sqlite3.connect(restored / DB_NAME) as conn:
            orphans = conn.execute("SELECT count(*) FROM codes WHERE status = 'done' AND image_sha256 IS NOT NULL "
                                   "AND image_sha256 NOT IN (SELECT sha256 FROM images)").fetchone()[0]
        assert orphans == 0
        assert len(snapshot["codes"]) == report.tables["codes"]

    # Taken after the writer stopped but with serve still running (its WAL not checkpointed).
    final = backup(data, tmp_path / "final.tar.gz")
    restore(final.path, tmp_path / "restored-final")
    live, copy = dump(data / DB_NAME), dump(tmp_path / "restored-final" / DB_NAME)
    assert copy == live
    assert {row[0] for row in copy["codes"]} == set(made) and len(made) >= 5


def make_history(folder: Path) -> Storage:
    store = Storage.open(folder)
    store.images.put(b"\x89PNG\r\n\x1a\n" + b"0" * 64, "image/png")
    (folder / "out").mkdir()
    (folder / "out" / "abc.png").write_bytes(b"\x89PNG\r\n\x1a\nimage")
    return store


def test_restore_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    store = make_history(tmp_path / "data")
    report = backup(store, tmp_path / "b.tar.gz")
    store.close()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("keep me")
    with pytest.raises(BackupError) as caught:
        restore(report.path, busy)
    assert "not an empty folder" in caught.value.en and "不是空文件夹" in caught.value.zh
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    restored = restore(report.path, tmp_path / "fresh")
    assert restored.files == ["out/abc.png"] and restored.tables["images"] == 1
    assert (tmp_path / "fresh" / "out" / "abc.png").read_bytes() == b"\x89PNG\r\n\x1a\nimage"
    assert oct((tmp_path / "fresh" / DB_NAME).stat().st_mode & 0o777) == "0o600"


def test_the_manifest_names_the_version_and_commit_that_wrote_it(tmp_path: Path) -> None:
    store = make_history(tmp_path / "data")
    report = backup(store, tmp_path / "b.tar.gz")
    store.close()
    with tarfile.open(report.path, "r:gz") as archive:
        handle = archive.extractfile(MANIFEST)
        assert handle is not None
        manifest = json.loads(handle.read())
    assert __commit__  # the tests run from a git checkout
    assert manifest["minpcode"] == __version__ and manifest["commit"] == __commit__


def _rewrite(source: Path, target: Path, change) -> None:
    """Copy an archive member by member, letting ``change(name, data)`` alter each one."""
    with tarfile.open(source, "r:gz") as old, tarfile.open(target, "w:gz") as new:
        for member in old.getmembers():
            handle = old.extractfile(member)
            data = change(member.name, handle.read() if handle else b"")
            if data is None:
                continue
            member.size = len(data)
            new.addfile(member, io.BytesIO(data))


@pytest.mark.parametrize("damage, why", [
    ("truncate", "is not an intact minpcode backup"),
    ("flip-db", "checksum differs"),
    ("drop-manifest", "no manifest"),
    ("traversal", "bad file list"),
    ("not-gzip", "is not an intact minpcode backup"),
])
def test_a_damaged_archive_is_refused_clearly_and_leaves_nothing(tmp_path: Path, damage: str, why: str) -> None:
    store = make_history(tmp_path / "data")
    good = backup(store, tmp_path / "good.tar.gz").path
    store.close()
    bad = tmp_path / "bad.tar.gz"
    if damage == "truncate":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif damage == "not-gzip":
        bad.write_bytes(b"PK\x03\x04 this is a zip file, or so it claims")
    elif damage == "flip-db":
        _rewrite(good, bad, lambda name, data: data[:200] + bytes([data[200] ^ 0xFF]) + data[201:]
                 if name == DB_NAME else data)
    elif damage == "drop-manifest":
        _rewrite(good, bad, lambda name, data: None if name == MANIFEST else data)
    else:
        _rewrite(good, bad, lambda name, data: data.replace(b'"out/abc.png"', b'"../../evil.png"')
                 if name == MANIFEST else data)
    target = tmp_path / "target"
    with pytest.raises(BackupError) as caught:
        restore(bad, target)
    assert why in caught.value.en and "没有恢复任何内容" in caught.value.zh
    assert not target.exists() and not (tmp_path / "evil.png").exists()


def test_migrate_check_lists_pending_and_a_changing_migration_backs_up_first(tmp_path: Path,
                                                                             caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "old"
    assert [name for name, _ in pending_migrations(folder)] == [name for name, _ in MIGRATIONS]
    assert not folder.exists()  # --check changes nothing
    folder.mkdir()
    db = sqlite_utils.Database(folder / DB_NAME)
    first = MIGRATIONS[0]
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    first[1](db)
    db.execute("INSERT INTO _migrations VALUES (?, '2026-01-01T00:00:00+00:00')", [first[0]])
    db.conn.commit()
    db.conn.close()
    todo = pending_migrations(folder)
    assert todo[0] == ("002_codes_fts_trigram", True)
    assert sorted(name for name, changes in todo if changes) == sorted(CHANGES_EXISTING)
    with caplog.at_level("WARNING", logger="minpcode.storage"):
        Storage.open(folder).close()
    saved = list((folder / BACKUP_DIR).glob("before-002_codes_fts_trigram-*.tar.gz"))
    assert len(saved) == 1 and str(saved[0]) in caplog.text and "minpcode restore" in caplog.text
    assert restore(saved[0], tmp_path / "back").tables["_migrations"] == 1
    assert pending_migrations(folder) == []
    assert migrate(sqlite_utils.Database(folder / DB_NAME)) == []  # nothing twice
    fresh = tmp_path / "fresh"
    Storage.open(fresh).close()
    assert not (fresh / BACKUP_DIR).exists()  # a new database has nothing to lose


@pytest.mark.slow
def test_the_commands(tmp_path: Path) -> None:
    env = child_env(tmp_path / "data")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot", *args], env=env, capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)

    assert f"{len(MIGRATIONS)} migrations would run" in run("migrate", "--check").stdout
    assert run("create", "--page", "pages/index/index", "--type", "B", "--scene", "id=1").returncode == 0
    assert "up to date" in run("migrate", "--check").stdout
    done = run("backup", str(tmp_path / "b.tar.gz"))
    assert done.returncode == 0 and "1 codes" in done.stdout
    refused = run("restore", str(tmp_path / "b.tar.gz"))
    assert refused.returncode == 2 and "not an empty folder" in refused.stderr and "Traceback" not in refused.stderr
    ok = run("restore", str(tmp_path / "b.tar.gz"), "--data-dir", str(tmp_path / "copy"))
    assert ok.returncode == 0 and "checked (1 codes)" in ok.stdout
    version = run("--version")
    assert version.returncode == 0 and version.stdout.split()[:2] == ["minpcode", __version__]
