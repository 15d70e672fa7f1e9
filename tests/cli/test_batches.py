"""``minpcode bulk / batches / batch`` against the emulators on loopback ports.

Unlike tests/cli/test_cli.py (an in-process sandbox per command), the emulators here outlive each
command, so what reached the upstream can be counted across a ``kill -9`` (of a real process) and the resume.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
import zxingcpp
from openpyxl import Workbook
from PIL import Image

from bot import sandbox
from bot.sandbox.qr import code_url
from tests.cli.test_cli import COMMAND, Ran, clean_env, invoke
from tests.emulators.upstreams import Upstreams


def env_for(upstreams: Upstreams, data: Path, user: str = "alice") -> dict[str, str]:
    s = upstreams.settings(data)
    return clean_env(data, user, MINPCODE_SANDBOX="0", MINPCODE_ADMINS="cli:root",
                     WECHAT_APPID=sandbox.SANDBOX_APPID, WECHAT_SECRET=sandbox.SANDBOX_SECRET,
                     WECHAT_API_URL=s.wechat_api_url, GIO_PROJECT_UID=sandbox.GIO_PROJECT_UID,
                     GIO_CLIENT_ID=sandbox.GIO_CLIENT_ID, GIO_TOKEN=sandbox.GIO_TOKEN,
                     GIO_PRODUCT_ID=sandbox.GIO_PRODUCT_ID, GIO_API_URL=s.gio_api_url)


def run(env: dict[str, str], cwd: Path, *args: str) -> Ran:
    return invoke(args, cwd=cwd, env=env)


def done_rows(path: Path) -> int:
    """Read-only, while the other process may still be migrating or writing."""
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM batch_rows WHERE status = 'done'").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def scan(data: bytes) -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))
    assert len(found) == 1
    return str(found[0].text)


@pytest.mark.slow
def test_kill_9_mid_run_then_the_same_command_resumes_with_no_duplicate(upstreams: Upstreams, tmp_path: Path) -> None:
    upstreams.gio.latency = 0.1
    rows = 30
    sheet = tmp_path / "stores.csv"
    sheet.write_text("页面,类型,推广活动,推广渠道,名称\n" + "".join(
        f"pages/index/index?store={i},A,新品上市,今日头条,kill-门店{i}\n" for i in range(rows)), encoding="utf-8")
    env = env_for(upstreams, tmp_path / "data")
    links_before = len(upstreams.gio.links)
    proc = subprocess.Popen([*COMMAND, "bulk", str(sheet), "--yes"], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if done_rows(tmp_path / "data" / "minpcode.db") >= 5:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    made_before_kill = len(upstreams.gio.links) - links_before
    assert 5 <= made_before_kill < rows

    upstreams.gio.latency = 0.0
    again = run(env, tmp_path, "bulk", str(sheet), "--yes", "--out", "stores.zip", "--json")
    assert again.returncode == 0, again.stderr
    assert "Resuming batch" in again.stderr or "Resuming batch" in again.stdout
    assert again.stdout.lstrip().startswith("["), again.stdout + again.stderr
    manifest = json.loads(again.stdout)
    assert [m["status"] for m in manifest] == ["done"] * rows
    assert len({m["id"] for m in manifest}) == rows
    created = upstreams.gio.links[links_before:]
    assert len(created) == rows and len({link["name"] for link in created}) == rows  # one link per row, none twice
    names = zipfile.ZipFile(tmp_path / "stores.zip").namelist()
    assert sorted(names) == sorted([f"kill-门店{i}.jpg" for i in range(rows)] + ["manifest.csv", "manifest.xlsx"])
    listed = json.loads(run(env, tmp_path, "batches", "--json").stdout)
    assert len(listed) == 1 and listed[0]["status"] == "done" and listed[0]["counts"] == {"done": rows}


def test_gbk_and_xlsx_sheets_with_chinese_headers_make_a_zip_that_scans(upstreams: Upstreams, tmp_path: Path) -> None:
    env = env_for(upstreams, tmp_path / "data")
    (tmp_path / "gbk.csv").write_bytes("页面,类型,场景,名称\npages/index/index,B,gbk=1,广州店\n".encode("gbk"))
    done = run(env, tmp_path, "bulk", "gbk.csv", "--yes", "--out", "gbk.zip")
    assert done.returncode == 0, done.stderr
    assert "gb18030" in done.stderr and "Done: 1 made" in done.stdout
    archive = zipfile.ZipFile(tmp_path / "gbk.zip")
    assert scan(archive.read("广州店.jpg")) == code_url(sandbox.SANDBOX_APPID, "B", "pages/index/index", "gbk=1")

    book = Workbook()
    first = book.active
    assert first is not None
    first.append(["页面", "类型", "场景", "名称"])
    first.append(["pages/index/index", "B", "xlsx=1", "深圳店"])
    first.append(["pages/index/index", "B", "gbk=1", "广州店再来"])  # the same code as the GBK sheet made
    book.save(tmp_path / "stores.xlsx")
    done = run(env, tmp_path, "bulk", "stores.xlsx", "--yes", "--out", "x.zip", "--json")
    assert done.returncode == 0, done.stderr
    assert [(m["row"], m["status"]) for m in json.loads(done.stdout)] == [(2, "done"), (3, "reused")]
    archive = zipfile.ZipFile(tmp_path / "x.zip")
    assert scan(archive.read("深圳店.jpg")) == code_url(sandbox.SANDBOX_APPID, "B", "pages/index/index", "xlsx=1")
    assert scan(archive.read("广州店再来.jpg")) == code_url(sandbox.SANDBOX_APPID, "B", "pages/index/index", "gbk=1")


def test_no_terminal_and_no_yes_refuses_and_makes_nothing_then_cancel_rules(upstreams: Upstreams,
                                                                            tmp_path: Path) -> None:
    env = env_for(upstreams, tmp_path / "data")
    (tmp_path / "a.csv").write_text("page,type,scene\npages/index/index,B,tty=1\n", encoding="utf-8")
    done = run(env, tmp_path, "bulk", "a.csv")
    assert done.returncode == 2 and "add --yes" in done.stderr and "--yes" in done.stderr
    assert json.loads(run(env, tmp_path, "list", "--json").stdout) == []
    batch_id = json.loads(run(env, tmp_path, "batches", "--json").stdout)[0]["id"]
    assert json.loads(run(env, tmp_path, "batch", batch_id, "--json").stdout)["status"] == "cancelled"

    dry = run(env, tmp_path, "bulk", "a.csv", "--dry-run")
    assert dry.returncode == 0 and "Nothing was made" in dry.stderr + dry.stdout
    draft = json.loads(run(env, tmp_path, "batches", "--json").stdout)[0]
    assert draft["status"] == "draft"
    bob = env_for(upstreams, tmp_path / "data", user="bob")
    refused = run(bob, tmp_path, "batch", draft["id"], "--cancel")
    assert refused.returncode == 2 and "Only its starter (alice)" in refused.stderr
    root = env_for(upstreams, tmp_path / "data", user="root")
    cancelled = run(root, tmp_path, "batch", draft["id"], "--cancel")
    assert cancelled.returncode == 0 and "Cancelled" in cancelled.stdout
    assert run(env, tmp_path, "batch", "nosuchbatch").returncode == 2
