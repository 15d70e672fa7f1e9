"""Malformed input over a real ``minpcode serve``: 4xx, never 500, and nothing stored for a refusal."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from storage.db import DB_NAME
from tests.emulators.wecom import CallbackSender, WeComEmulator
from tests.scenarios.test_identity import wecom_env
from tests.served import Served
from tests.wecom.test_callback import AES_KEY, TOKEN

pytestmark = pytest.mark.slow  # every test here starts a process or a browser

KEY = "inputs-0123456789abcdef"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, CallbackSender]]:
    from bot.sandbox.server import ServerThread

    emu = WeComEmulator()
    thread = ServerThread(emu.app).start()
    proc = Served(tmp_path_factory.mktemp("inputs") / "data",
                  {**wecom_env(emu, thread.url), "MINPCODE_API_KEYS": f"cms:{KEY}"}).start()
    yield proc, emu.callback_client(proc.url + "/wecom/callback", TOKEN, AES_KEY, clock=time.time)
    proc.stop()
    thread.stop()


def rows(proc: Served, table: str) -> int:
    with sqlite3.connect(proc.data_dir / DB_NAME) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


@pytest.mark.parametrize("body", [
    {"path": "pages/index/index", "scene": "x" * 80, "long_scene": "key", "width": 5000},
    {"path": "pages/index/index", "scene": "活动=春节&门店=" + "徐汇" * 20, "long_scene": "key", "width": "wide"},
    {"path": "", "scene": "y" * 90, "long_scene": "key"},
])
def test_a_refused_api_request_leaves_no_rows(site: tuple[Served, CallbackSender], body: dict[str, Any]) -> None:
    proc, _ = site
    before = (rows(proc, "scenes"), rows(proc, "codes"))
    answer = proc.post("/api/weapp/qrcode", json=body, headers={"X-API-Key": KEY})
    assert 400 <= answer.status_code < 500, answer.text
    assert (rows(proc, "scenes"), rows(proc, "codes")) == before


@pytest.mark.parametrize("make", [
    lambda: b'{"msgtype":"text","text":' + b"[" * 30_000 + b"]" * 30_000 + b"}",  # the smart-bot JSON form
    lambda: b"<xml>" + b"<a>" * 30_000 + b"</a>" * 30_000 + b"</xml>",
    lambda: b"\xff\xfe\x00garbage",
])
def test_wecom_garbage_and_deep_nesting_are_4xx(site: tuple[Served, CallbackSender], make: Callable[[], bytes]) -> None:
    proc, _ = site
    params = {"msg_signature": "0" * 40, "timestamp": str(int(time.time())), "nonce": "1"}
    answer = proc.post("/wecom/callback", params=params, content=make(), headers={"content-type": "application/json"})
    assert 400 <= answer.status_code < 500


@pytest.mark.parametrize("timestamp", ["9" * 400, "-1", "1e9", "abc"])
def test_a_signed_but_odd_wecom_timestamp_is_4xx(site: tuple[Served, CallbackSender], timestamp: str) -> None:
    proc, sender = site
    request = sender.build(sender.text_xml("zhangsan", "帮助"), timestamp=timestamp)
    answer = proc.post("/wecom/callback", params=request.params, content=request.body, headers=request.headers)
    assert 400 <= answer.status_code < 500


def test_nothing_above_was_a_500(site: tuple[Served, CallbackSender]) -> None:
    proc, _ = site
    assert "Traceback" not in proc.log() and '" 500' not in proc.log()
