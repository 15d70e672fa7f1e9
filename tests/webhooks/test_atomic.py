"""A change and its webhook event are kept together, on both backends: a process that dies right after a code is
made or failed, a live code is re-pointed, paused or resumed, the A/C quota is counted past a threshold, or a
batch is marked finished, has still recorded the event.

The crash is the one thing patched: the core's step right after the storage verb returns (``Codes._finished``,
``LiveService._changed``, the batch store's ``set_status`` once it has written) raises, as a process killed there would stop; no wire can stop a process between two
Python statements.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.batch.models import BatchOrigin, BatchStatus
from bot.batch.sheets import read_pasted
from bot.codes import Codes
from bot.live.service import LiveService
from bot.models import Requester, Status
from bot.server import open_service
from bot.service import Service
from storage.batches import Batches
from tests.emulators.upstreams import Upstreams

ADMIN = Requester(chat="cli", user_id="ops", user_name="ops")
HOOK = "https://hooks.example.com/minpcode"  # never called: the sender is not started


class Crash(Exception):
    """The process stopping right after the change was written."""


def crash(*_args: Any, **_kwargs: Any) -> None:
    raise Crash


def recorded(service: Service) -> list[tuple[str, str]]:
    """(event type, the code id in its body) of every delivery row, as a restarted sender would find them."""
    rows = service.storage.webhooks.recent(limit=50)
    return sorted((r.event_type, json.loads(r.body)["data"]["code"]["id"]) for r in rows)


async def add_endpoint(service: Service) -> None:
    service.storage.webhooks.add("wh_ops", HOOK, "s" * 20, [], ADMIN.key)  # the guard would ask DNS: not needed


async def test_a_code_made_then_a_crash_keeps_its_event(upstreams: Upstreams, tmp_path: Path,
                                                      database_url: str | None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    settings = upstreams.settings(tmp_path, minpcode_database_url=database_url)
    async with open_service(settings) as service:
        await add_endpoint(service)
        monkeypatch.setattr(Codes, "_finished", crash)
        submitted = await service.submit({"type": "B", "page": "pages/index/index", "scene": "id=1"}, ADMIN,
                                         timeout=5)
        code_id = submitted.record.id
        assert service.get(code_id).status is Status.DONE
        assert recorded(service) == [("code.made", code_id)]


async def test_a_code_failed_then_a_crash_keeps_its_event(upstreams: Upstreams, tmp_path: Path,
                                                        database_url: str | None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = upstreams.settings(tmp_path, minpcode_database_url=database_url)
    async with open_service(settings) as service:
        await add_endpoint(service)
        upstreams.wechat.inject(41030, path="/wxa/getwxacodeunlimit")
        monkeypatch.setattr(Codes, "_finished", crash)
        submitted = await service.submit({"type": "B", "page": "pages/index/index", "scene": "id=2"}, ADMIN,
                                         timeout=5)
        code_id = submitted.record.id
        assert service.get(code_id).status is Status.FAILED
        assert recorded(service) == [("code.failed", code_id)]


async def test_live_changes_then_a_crash_keep_their_events(upstreams: Upstreams, tmp_path: Path,
                                                         database_url: str | None,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    settings = upstreams.settings(tmp_path, minpcode_database_url=database_url,
                                  minpcode_public_url="https://minpcode.example.com")
    async with open_service(settings) as service:
        made = await service.submit({"type": "B", "page": "pages/coupon/get?id=1", "live": True}, ADMIN)
        code_id = made.record.id
        await add_endpoint(service)
        monkeypatch.setattr(LiveService, "_changed", crash)
        with pytest.raises(Crash):
            service.live.repoint(code_id, "pages/spring/sale?aid=1", ADMIN)
        with pytest.raises(Crash):
            service.live.pause(code_id, ADMIN)
        with pytest.raises(Crash):
            service.live.resume(code_id, ADMIN)
        assert recorded(service) == [("live.paused", code_id), ("live.repointed", code_id),
                                     ("live.resumed", code_id)]
        bodies = {r.event_type: r.body for r in service.storage.webhooks.recent(limit=10)}
        assert '"destination":"pages/spring/sale?aid=1"' in bodies["live.repointed"]
        assert '"paused":true' in bodies["live.paused"] and '"paused":false' in bodies["live.resumed"]


async def test_a_quota_threshold_crossed_then_a_crash_keeps_its_event(upstreams: Upstreams, tmp_path: Path,
                                                                     database_url: str | None,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    settings = upstreams.settings(tmp_path, minpcode_database_url=database_url, minpcode_ac_cap=5)
    async with open_service(settings) as service:
        await add_endpoint(service)
        monkeypatch.setattr(Codes, "_finished", crash)
        for n in range(5):
            made = await service.submit({"type": "A", "via": "wechat", "page": f"pages/atomic{n}/p"}, ADMIN,
                                        timeout=5)
            assert made.record.status is Status.DONE
        rows = [r for r in service.storage.webhooks.recent(limit=50) if r.event_type == "quota.threshold"]
        assert sorted(r.event_id for r in rows) == [f"evt_quota_{settings.wechat_appid}_5_80",
                                                    f"evt_quota_{settings.wechat_appid}_5_95"]


async def test_a_batch_finished_then_a_crash_keeps_its_event(upstreams: Upstreams, tmp_path: Path,
                                                           database_url: str | None,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    settings = upstreams.settings(tmp_path, minpcode_database_url=database_url)
    async with open_service(settings) as service:
        await add_endpoint(service)
        written = Batches.set_status

        def then_crash(store: Batches, batch_id: str, status: BatchStatus, *args: Any, **kwargs: Any) -> None:
            written(store, batch_id, status, *args, **kwargs)
            if status is BatchStatus.DONE:
                raise Crash  # the batch is marked done; the process stops on the next statement

        monkeypatch.setattr(Batches, "set_status", then_crash)
        origin = BatchOrigin(user_id="U1", user_name="alice", chat="slack", channel_id="D1", message_id="1.1")
        plan = await service.batches.dry_run(read_pasted("页面,类型,场景\npages/index/index,B,id=31\n"), origin)
        with pytest.raises(Crash):
            await service.batches.run(plan.batch.id)
        rows = [r for r in service.storage.webhooks.recent(limit=50) if r.event_type == "batch.finished"]
        assert [r.event_id for r in rows] == [f"evt_batch_{plan.batch.id}_finished"]
        assert json.loads(rows[0].body)["data"]["batch"]["rows"] == {"done": 1}
