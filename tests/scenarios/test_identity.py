"""A person is (front-end, id), over a real ``minpcode serve``: the same id on two front-ends is two people.

The WeCom member ``cms``, the CLI login ``cms`` and the API key ``cms`` each own only their own codes;
``MINPCODE_ADMINS=slack:U0ADMIN`` makes no WeCom member ``U0ADMIN`` an admin; refusals are audited.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from storage import AuditLog, ImageStore, Storage
from storage.db import DB_NAME
from storage.migrations import MIGRATIONS, migrate
from tests.emulators.wecom import CallbackSender, WeComEmulator
from tests.served import COMMAND, Served
from tests.wecom.test_callback import AES_KEY, TOKEN

API_KEY = "cms-0123456789abcdef0123"


@dataclass
class Site:
    proc: Served
    emu: WeComEmulator
    sender: CallbackSender

    def texts_to(self, user: str) -> list[str]:
        return [m.content or "" for m in self.emu.sent_messages if m.msgtype == "text" and user in m.delivered_to]

    def wait_text(self, user: str, count: int, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while len(self.texts_to(user)) < count:
            assert time.monotonic() < deadline, f"no text {count} to {user}: {self.texts_to(user)}"
            time.sleep(0.05)
        return self.texts_to(user)[count - 1]

    def audit(self) -> list[tuple[str, str, str]]:
        with sqlite3.connect(self.proc.data_dir / DB_NAME) as db:
            return [tuple(r) for r in db.execute("SELECT actor, action, code_id FROM audit ORDER BY id")]


def wecom_env(emu: WeComEmulator, api: str) -> dict[str, str]:
    return {"WECOM_CORP_ID": emu.corp_id, "WECOM_AGENT_ID": str(emu.agent_id), "WECOM_SECRET": emu.secret,
            "WECOM_TOKEN": TOKEN, "WECOM_AES_KEY": AES_KEY, "WECOM_API_URL": api}


@pytest.fixture
def site(serve: Callable[[Any], str], tmp_path: Path) -> Iterator[Site]:
    emu = WeComEmulator()
    api = serve(emu.app)
    proc = Served(tmp_path / "data", {**wecom_env(emu, api), "MINPCODE_API_KEYS": f"cms:{API_KEY}",
                                      "MINPCODE_ADMINS": "slack:U0ADMIN"}).start()
    yield Site(proc, emu, emu.callback_client(proc.url + "/wecom/callback", TOKEN, AES_KEY, clock=time.time))
    proc.stop()


def api_code(site: Site, scene: str) -> str:
    answer = site.proc.post("/api/weapp/qrcode", json={"path": "pages/index/index", "scene": scene},
                            headers={"Authorization": f"Bearer {API_KEY}"})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


@pytest.mark.slow
def test_the_same_id_on_another_front_end_is_another_person(site: Site) -> None:
    code_id = api_code(site, "id=1")
    assert site.proc.get(f"/api/codes/{code_id}", headers={"X-API-Key": API_KEY}).json()["data"][
        "requested_by"] == "api:cms"

    site.sender.send_text("cms", f"删除 {code_id}")
    assert "Only its creator" in site.wait_text("cms", 1)
    site.sender.send_text("U0ADMIN", f"delete {code_id}")  # Slack's admin id, typed in WeCom: nobody special
    assert "Only its creator" in site.wait_text("U0ADMIN", 1)

    cli = subprocess.run([*COMMAND, "rename", code_id, "by-cli"], env={**site.proc.env, "USER": "cms"},
                         capture_output=True, text=True, timeout=60, cwd=site.proc.data_dir.parent)
    assert cli.returncode == 2 and "Only its creator" in cli.stderr

    record = site.proc.get(f"/api/codes/{code_id}", headers={"X-API-Key": API_KEY}).json()["data"]
    assert record["status"] == "done" and record["name"] != "by-cli"
    assert site.audit() == [("api:cms", "requested", code_id), ("wecom:cms", "delete_refused", code_id),
                            ("wecom:U0ADMIN", "delete_refused", code_id), ("cli:cms", "rename_refused", code_id)]


@pytest.mark.slow
def test_a_bare_admin_id_is_refused_at_start_with_the_fix(tmp_path: Path) -> None:
    proc = Served(tmp_path / "data", {"MINPCODE_ADMINS": "slack:U0ADMIN,U0OTHER"})
    with pytest.raises(RuntimeError) as failed:
        proc.start(timeout=60)
    assert "MINPCODE_ADMINS entry 'U0OTHER'" in str(failed.value) and "slack:U0OTHER" in str(failed.value)
    assert "Traceback" not in str(failed.value)


def test_existing_rows_are_migrated_to_front_end_ids(tmp_path: Path) -> None:
    data = tmp_path / "old"
    data.mkdir()
    old = sqlite_utils.Database(sqlite3.connect(data / DB_NAME, isolation_level=None))
    migrate(old, MIGRATIONS[:[name for name, _ in MIGRATIONS].index("requesters_with_front_end")])
    audit = AuditLog(old)
    # rows as an older minpcode wrote them: bare ids (in the columns that version had)
    made = {}
    for chat, user in (("wecom", "cms"), ("api", "cms"), ("console", "alice"), ("slack", "U0ADMIN")):
        made[chat] = f"code{chat}"
        old.execute("INSERT INTO codes (id, request_key, type, provider, status, page, scene, requested_by, "
                    "chat, request_json, created_at, updated_at) VALUES (?, ?, 'B', 'wechat', 'pending', "
                    "'pages/index/index', ?, ?, ?, '{}', '2026-01-01', '2026-01-01')",
                    [made[chat], f"k-{chat}", f"{chat}={user}", user, chat])
    audit.record("cms", "requested", made["wecom"], chat="wecom")
    audit.record("cms", "deleted", made["api"])  # no front-end in the row: the code's own
    audit.record("U0ADMIN", "renamed", made["wecom"])  # someone else's code, front-end unknown
    digest = ImageStore(old).put(b"\x89PNG not decoded here", "image/png")
    for n, (code, maker) in enumerate(((made["wecom"], "cms"), (made["api"], "boss"))):
        old.execute("INSERT INTO posters (id, code_id, request_key, template, format, image_sha256, mime, size, "
                    "width_px, height_px, dpi, request_json, created_by, created_at) "
                    "VALUES (?, ?, ?, 'a4', 'png', ?, 'image/png', 1, 1, 1, 300, '{}', ?, '2026-01-01')",
                    [f"p{n}", code, f"pk{n}", digest, maker])
    old.conn.close()

    migrated = Storage.open(data)
    owners = {chat: migrated.history.get(code_id).requested_by for chat, code_id in made.items()}  # type: ignore[union-attr]
    assert owners == {"wecom": "wecom:cms", "api": "api:cms", "console": "cli:alice", "slack": "slack:U0ADMIN"}
    actors = [r[0] for r in migrated.db.execute("SELECT actor FROM audit ORDER BY id").fetchall()]
    assert actors == ["wecom:cms", "api:cms", "unknown:U0ADMIN"]
    makers = [r[0] for r in migrated.db.execute("SELECT created_by FROM posters ORDER BY id").fetchall()]
    assert makers == ["wecom:cms", "unknown:boss"]  # the code's own requester is placed; anyone else is not
    migrated.close()

