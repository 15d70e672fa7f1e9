"""The database file deleted under a running ``minpcode serve`` (issue 22): SQLite would keep writing to
the unlinked file and every answer would stay 200. The server notices: /readyz turns red naming the
cause, writes are refused with a 503 (the API's envelope on /api/), reads still answer, and the log says
what happened once."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from tests.served import Served

KEY = "cms-gone-0a9b8c7d6e5f"


@pytest.mark.slow
def test_a_deleted_database_turns_readiness_red_and_refuses_writes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    auth = {"Authorization": f"Bearer {KEY}"}
    with Served(data, env={"MINPCODE_API_KEYS": f"cms:{KEY}"}) as proc:
        made = proc.post("/api/weapp/qrcode", json={"path": "pages/index/index", "scene": "id=1"}, headers=auth)
        assert made.status_code == 200, made.text
        assert proc.get("/readyz").status_code == 200

        for file in data.glob("minpcode.db*"):
            file.unlink()
        time.sleep(1.1)  # the file is looked at most once a second

        ready = proc.get("/readyz")
        assert ready.status_code == 503, ready.text
        database = ready.json()["database"]
        assert database["ok"] is False and database["error"] == "deleted"
        assert str(data / "minpcode.db") in database["message"] and "minpcode restore" in database["message"]

        refused = proc.post("/api/weapp/qrcode", json={"path": "pages/index/index", "scene": "id=2"}, headers=auth)
        assert refused.status_code == 503, refused.text
        body = refused.json()
        assert body["code"] == -1 and body["data"] is None
        assert "被删除" in body["msg"] and "was deleted" in body["msg"]
        assert refused.headers["x-request-id"]
        assert proc.get("/healthz").status_code == 200  # alive: a supervisor should not loop restarting it
        assert proc.post("/api/weapp/qrcode", json={"path": "pages/x"}, headers=auth).status_code == 503
        assert proc.get("/readyz").status_code == 503
        log = proc.log()
    # (each background writer that stops says so once, naming the problem: those lines are theirs)
    said = [line for line in log.splitlines()
            if "was deleted while minpcode was running" in line and "stops writing" not in line]
    assert len(said) == 1, log  # once, however many requests were refused
    assert "ERROR" in said[0] and str(data / "minpcode.db") in said[0]
    access = [line for line in log.splitlines() if "minpcode.access" in line]
    assert any('"POST /api/weapp/qrcode" 503 ' in line for line in access), access


def test_a_new_empty_database_is_said_aloud(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from storage import Storage

    caplog.set_level(logging.INFO, logger="minpcode.storage")
    Storage.open(tmp_path).close()
    Storage.open(tmp_path).close()
    said = [r.getMessage() for r in caplog.records if "created a new, empty one" in r.getMessage()]
    assert said == [f"No database at {tmp_path / 'minpcode.db'}: created a new, empty one "
                    "(to bring one back: minpcode restore)"]
