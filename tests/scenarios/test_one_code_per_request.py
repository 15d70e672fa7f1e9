"""One code per identical request across processes: two real ``minpcode serve`` on one data directory, each
A-code request sent to both at once, make each code once (the database keeps one live row per request key)."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.sandbox import SANDBOX_APPID, SANDBOX_SECRET
from storage.db import DB_NAME
from tests.conftest import Site
from tests.served import Served, held

KEY = "pairs-0123456789abcdef01"
PAIRS = 20


def upstream_env(wechat: Site) -> dict[str, str]:
    return {"MINPCODE_SANDBOX": "false", "WECHAT_APPID": SANDBOX_APPID, "WECHAT_SECRET": SANDBOX_SECRET,
            "WECHAT_API_URL": wechat.url, "MINPCODE_API_KEYS": f"pairs:{KEY}"}


def ask(url: str, n: int) -> dict[str, Any]:
    with httpx.Client(timeout=60, trust_env=False) as http:
        answer = http.post(url + "/api/weapp/qrcode", json={"path": f"pages/pair/pair?n={n}"},
                           headers={"X-API-Key": KEY})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.mark.slow
def test_identical_a_codes_sent_to_two_processes_at_once_are_made_once(wechat: Site, tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = Served(data, upstream_env(wechat)).start()
    second = Served(data, upstream_env(wechat)).start()
    answers: list[tuple[int, dict[str, Any]]] = []
    try:
        with ThreadPoolExecutor(2) as pool:
            for n in range(PAIRS):
                # Released together: both processes have looked for the request and found nothing when the
                # database lets their writes in, at one instant; only the database can tell them apart then.
                with held(data):
                    pair = [pool.submit(ask, url, n) for url in (first.url, second.url)]
                    time.sleep(0.5)
                answers += [(n, a.result()) for a in pair]
    finally:
        first.stop()
        second.stop()
    with sqlite3.connect(data / DB_NAME) as db:
        codes, keys = db.execute("SELECT count(*), count(DISTINCT request_key) FROM codes").fetchone()
        made = db.execute("SELECT count(*) FROM codes WHERE status = 'done'").fetchone()[0]
        ledger = db.execute("SELECT count(*) FROM quota_keys").fetchone()[0]
    calls = [r.body for r in wechat.log.to("/wxa/getwxacode")]
    assert (codes, keys, made) == (PAIRS, PAIRS, PAIRS)     # one code per distinct request
    assert (len(calls), len(set(calls))) == (PAIRS, PAIRS)  # each asked of WeChat once
    assert ledger == PAIRS                                  # and counted once against the cap
    ids: dict[int, set[str]] = {}
    for n, body in answers:
        ids.setdefault(n, set()).add(body["id"])
    assert all(len(pair) == 1 for pair in ids.values())  # both askers of a pair were given the same code
    assert sum(body["reused"] for _, body in answers) == PAIRS
