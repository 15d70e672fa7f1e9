"""One owner per job: two real ``minpcode serve`` processes on one data directory never make a code twice."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from bot import outbox as delivering
from bot.sandbox import SANDBOX_APPID, SANDBOX_SECRET
from storage import Storage
from storage.db import DB_NAME
from tests.conftest import Site
from tests.served import Served

KEY = "jobs-0123456789abcdef01"


def upstream_env(wechat: Site) -> dict[str, str]:
    return {"MINPCODE_SANDBOX": "false", "WECHAT_APPID": SANDBOX_APPID, "WECHAT_SECRET": SANDBOX_SECRET,
            "WECHAT_API_URL": wechat.url, "MINPCODE_API_KEYS": f"bench:{KEY}"}


def ask(url: str, n: int) -> int:
    with httpx.Client(timeout=60, trust_env=False) as http:
        return http.post(url + "/api/weapp/qrcode", json={"path": "pages/index/index", "scene": f"id={n}"},
                         headers={"X-API-Key": KEY}).status_code


@pytest.mark.slow
def test_a_second_process_takes_no_job_the_first_one_holds(wechat: Site, tmp_path: Path) -> None:
    wechat.emu.latency = 0.25  # 60 codes on 4 workers: ~4 s in flight
    data = tmp_path / "data"
    first = Served(data, upstream_env(wechat)).start()
    second = Served(data, upstream_env(wechat))
    try:
        with ThreadPoolExecutor(30) as pool:
            answers = [pool.submit(ask, first.url, n) for n in range(60)]
            deadline = time.monotonic() + 20
            while _count(data, "SELECT count(*) FROM codes") < 60:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert _count(data, "SELECT count(*) FROM codes WHERE status = 'pending'") > 20  # busy
            second.start()  # resumes every pending row it may: none that the first one holds
            statuses = [a.result() for a in answers]
        deadline = time.monotonic() + 60
        while _count(data, "SELECT count(*) FROM codes WHERE status = 'done'") < 60:
            assert time.monotonic() < deadline, "not every code was made"
            time.sleep(0.1)
    finally:
        first.stop()
        second.stop()
    assert statuses.count(200) + statuses.count(202) == 60
    scenes = [r.body for r in wechat.log.to("/wxa/getwxacodeunlimit")]
    assert len(scenes) == 60 and len(set(scenes)) == 60  # every code asked of WeChat exactly once


def test_a_lease_is_taken_over_only_once_it_lapses(tmp_path: Path, database_url: str | None) -> None:
    store = Storage.open(tmp_path, database_url)
    leases = store.leases
    assert leases.claim("code:x", "a", 30, now=1000)
    assert not leases.claim("code:x", "b", 30, now=1029)  # a's lease is live
    assert leases.claim("code:x", "a", 30, now=1029)      # a renews by claiming again
    assert not leases.claim("code:x", "b", 30, now=1058)
    assert leases.claim("code:x", "b", 30, now=1060)      # lapsed: b takes it over
    assert not leases.renew("code:x", "a", 30)            # and a learns it is no longer its
    leases.release("code:x", "a")                         # a's release does not drop b's lease
    assert leases.holder("code:x") is not None and leases.holder("code:x")[0] == "b"  # type: ignore[index]
    store.close()


def _count(data: Path, sql: str) -> int:
    try:
        with sqlite3.connect(data / DB_NAME, timeout=10) as db:
            return int(db.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_the_outbox_saves_once_per_id_and_forgets_what_was_delivered_a_day_ago(tmp_path: Path, database_url: str | None) -> None:
    store = Storage.open(tmp_path, database_url)
    outbox = store.outbox
    first = outbox.accept("wecom", "message", "{}", seen="wecom:1", ttl=900)
    assert first is not None and outbox.accept("wecom", "message", "{}", seen="wecom:1", ttl=900) is None
    assert [row for row, _, _ in outbox.pending("wecom")] == [first]
    outbox.done(first)
    assert outbox.pending("wecom") == [] and outbox.state(first) == "done"
    store.db.execute("UPDATE outbox SET done_at = done_at - 2 * 86400 WHERE id = ?", [first])
    second = outbox.accept("slack", "run_text", "{}")
    assert second is not None
    outbox.done(second)
    assert outbox.state(first) is None and outbox.state(second) == "done"
    store.close()


async def test_a_delivery_run_again_after_a_crash_recalls_what_the_first_run_remembered(
        tmp_path: Path, database_url: str | None) -> None:
    store = Storage.open(tmp_path, database_url)
    row = store.outbox.accept("wecom", "message", "{}")
    assert row is not None
    seen: list[str | None] = []

    async def first_run() -> None:
        run = delivering.attempt()
        assert run is not None and run.row_id == row and run.recall("media") is None
        run.remember("media", "m-1")
        raise ConnectionError("the process dies with the send in flight")

    with pytest.raises(ConnectionError):
        await delivering.Outbox(store, "first").deliver(row, first_run)
    assert delivering.attempt() is None  # only inside a delivery
    store.close()

    store = Storage.open(tmp_path, database_url)  # the restart: what was remembered is on disk
    assert [r for r, _, _ in store.outbox.pending("wecom")] == [row]

    delivered = asyncio.Event()
    later: list[delivering.Attempt | None] = []

    async def outliving() -> None:  # a task the work starts (a batch run) inherits the row's context
        await delivered.wait()
        later.append(delivering.attempt())

    async def second_run() -> None:
        run = delivering.attempt()
        assert run is not None
        seen.append(run.recall("media"))
        tasks.append(asyncio.create_task(outliving()))

    tasks: list[asyncio.Task[None]] = []
    assert await delivering.Outbox(store, "second").deliver(row, second_run)
    delivered.set()
    await asyncio.gather(*tasks)
    assert seen == ["m-1"] and store.outbox.state(row) == "done"
    assert later == [None]  # once the row is delivered, it is no task's delivery
    other = store.outbox.accept("wecom", "message", "{}")  # each row its own notes
    assert other is not None and store.outbox.notes(other) == {} and store.outbox.notes(row) == {"media": "m-1"}
    store.close()
