"""A full disk under a running ``minpcode serve`` (issue 22), simulated with SQLite's own page limit
(tests/scenarios/small_disk/sitecustomize.py) and filled over the real server.

Before: a code request answered a plain 500, the WeCom callback 500, the log said "cannot rollback - no
transaction is active", and /readyz stayed green. Now: 503 in the API's envelope with a sentence in both
languages, 503 to WeCom (no 200 for a message that was not saved, so WeCom sends it again), /readyz red
naming the cause, one log line when it starts and one when it ends, and writes go on by themselves once
there is room again."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from storage import Storage
from tests.emulators.wecom import WeComEmulator
from tests.scenarios.test_identity import wecom_env
from tests.served import Served
from tests.wecom.test_callback import AES_KEY, TOKEN

pytestmark = pytest.mark.slow  # every test here starts a process

KEY = "cms-full-5e4d3c2b1a09"
SMALL_DISK = Path(__file__).with_name("small_disk")


def _until(answer: Callable[[], httpx.Response], status: int, tries: int) -> httpx.Response:
    """Ask until the answer's status is ``status`` (or ``tries`` run out): writes fail only once no page is left."""
    for _ in range(tries):
        got = answer()
        if got.status_code == status:
            return got
        assert got.status_code == 200, got.text
    return got


def test_a_full_disk_is_503_and_not_ready_until_there_is_room(serve: Callable[[Any], str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = Storage.open(data)
    store.db.conn.execute("CREATE TABLE filler (b BLOB)")  # a megabyte the test gives back later
    store.db.conn.execute("INSERT INTO filler VALUES (zeroblob(1048576))")
    pages = store.db.conn.execute("PRAGMA page_count").fetchone()[0]
    store.close()

    emu = WeComEmulator()
    auth = {"Authorization": f"Bearer {KEY}"}
    paths = [str(SMALL_DISK), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**wecom_env(emu, serve(emu.app)), "MINPCODE_API_KEYS": f"cms:{KEY}", "SMALL_DISK_PAGES": str(pages),
           "PYTHONPATH": os.pathsep.join(paths)}
    with Served(data, env) as proc:
        scenes = iter(range(1000))
        full = _until(lambda: proc.post("/api/weapp/qrcode", headers=auth,
                                        json={"path": "pages/index/index", "scene": f"id={next(scenes)}"}), 503, 50)
        assert full.status_code == 503, full.text
        body = full.json()
        assert body["code"] == -1 and body["data"] is None
        assert "磁盘满了" in body["msg"] and "disk is full" in body["msg"], body
        assert str(data) not in body["msg"]  # a caller learns what happened, not where the server keeps files
        assert full.headers["x-request-id"]

        ready = proc.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert ready.json()["database"]["error"] == "full"
        assert proc.get("/healthz").status_code == 200  # alive: a supervisor should not restart it for this

        sender = emu.callback_client(proc.url + "/wecom/callback", TOKEN, AES_KEY, clock=time.time)
        ids = iter(range(30_000, 31_000))
        refused = _until(lambda: sender.send_text("member01", "帮助", msg_id=next(ids)), 503, 200)
        assert refused.status_code == 503, "every WeCom message fitted: the test proves nothing"

        with sqlite3.connect(data / "minpcode.db") as room:  # space comes back: the filler's pages are free
            room.execute("DROP TABLE filler")
        deadline = time.monotonic() + 30
        while (ready := proc.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.2)
        made = proc.post("/api/weapp/qrcode", headers=auth, json={"path": "pages/index/index", "scene": "id=room"})
        assert made.status_code == 200, made.text
        assert sender.send_text("member01", "帮助", msg_id=next(ids)).status_code == 200
        log = proc.log()

    assert "cannot rollback" not in log
    assert "Traceback" not in log, log  # an answered condition, not a bug of ours
    started = [line for line in log.splitlines() if "The disk holding" in line]
    assert len(started) == 1 and str(data / "minpcode.db") in started[0], started
    assert sum("There is room again" in line for line in log.splitlines()) == 1, log
    access = [line for line in log.splitlines() if "minpcode.access" in line]
    assert any('"POST /api/weapp/qrcode" 503 ' in line for line in access), access
    assert any('"POST /wecom/callback' in line and '" 503 ' in line for line in access), access
