"""Several hosts, one truth: real ``minpcode serve`` processes on one PostgreSQL database, each with a data folder
of its own (hosts that share no disk), hold what one process held: one code per identical request, and a job
taken by one host only, taken over when its host is gone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from bot.sandbox import SANDBOX_APPID, SANDBOX_SECRET
from tests.conftest import Site
from tests.databases import fresh_postgres
from tests.served import Served

KEY = "hosts-0123456789abcdef0"


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_postgres() as url:
        yield url


def host_env(wechat: Site, url: str) -> dict[str, str]:
    return {"MINPCODE_SANDBOX": "false", "WECHAT_APPID": SANDBOX_APPID, "WECHAT_SECRET": SANDBOX_SECRET,
            "WECHAT_API_URL": wechat.url, "MINPCODE_API_KEYS": f"bench:{KEY}", "MINPCODE_DATABASE_URL": url}


def ask(url: str, n: int) -> int:
    with httpx.Client(timeout=60, trust_env=False) as http:
        return http.post(url + "/api/weapp/qrcode", json={"path": "pages/index/index", "scene": f"id={n}"},
                         headers={"X-API-Key": KEY}).status_code


def count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute(sql).fetchone()[0])  # type: ignore[index]


def wait_for(url: str, sql: str, wanted: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while count(url, sql) < wanted:
        assert time.monotonic() < deadline, f"{sql}: {count(url, sql)} of {wanted}"
        time.sleep(0.1)


@pytest.mark.slow
def test_identical_requests_at_two_hosts_at_once_make_one_code(wechat: Site, tmp_path: Path, database: str) -> None:
    wechat.emu.latency = 0.2
    hosts = [Served(tmp_path / name / "data", host_env(wechat, database)) for name in ("a", "b")]
    try:
        for host in hosts:
            host.start()
        with ThreadPoolExecutor(40) as pool:  # each of 20 requests sent to both hosts at the same moment
            answers = [pool.submit(ask, host.url, n) for n in range(20) for host in hosts]
            statuses = [a.result() for a in answers]
        wait_for(database, "SELECT count(*) FROM codes WHERE status = 'done'", 20, 60)
    finally:
        for host in hosts:
            host.stop()
    assert set(statuses) <= {200, 202}, statuses
    assert count(database, "SELECT count(*) FROM codes") == 20  # the database's unique index: one row each
    scenes = [r.body for r in wechat.log.to("/wxa/getwxacodeunlimit")]
    assert len(scenes) == 20 and len(set(scenes)) == 20  # and WeChat asked once for each
    assert not any((tmp_path / name / "data" / "minpcode.db").exists() for name in ("a", "b"))  # no local history


@pytest.mark.slow
def test_a_host_killed_mid_job_hands_its_jobs_to_another(wechat: Site, tmp_path: Path, database: str) -> None:
    wechat.emu.latency = 5.0  # every code in flight when the first host dies
    first = Served(tmp_path / "a" / "data", host_env(wechat, database)).start()
    second = Served(tmp_path / "b" / "data", host_env(wechat, database))
    try:
        with ThreadPoolExecutor(10) as pool:
            for n in range(10):
                pool.submit(ask, first.url, n)
            wait_for(database, "SELECT count(*) FROM codes", 10, 20)
            wait_for(database, "SELECT count(*) FROM leases", 1, 20)  # its workers hold leases
            assert count(database, "SELECT count(*) FROM codes WHERE status = 'pending'") == 10
            first.kill()
        wechat.emu.latency = 0.0
        second.start()  # resumes the pending rows: the dead host's leases are taken over
        wait_for(database, "SELECT count(*) FROM codes WHERE status = 'done'", 10, 90)
    finally:
        first.stop()
        second.stop()
    assert count(database, "SELECT count(*) FROM codes") == 10
    assert "taken over" in second.log()
