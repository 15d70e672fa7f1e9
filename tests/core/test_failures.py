"""What the history keeps when making a code fails: the upstream's code or a stable name of ours, and both
sentences as data, over the emulators on loopback ports and a real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import messages
from bot.errors import NotFound
from bot.models import CodeRequest, CodeType, Provider, Requester, Status
from bot.server import open_service
from bot.service import Service
from storage import Storage
from tests.emulators.upstreams import Upstreams

ALICE = Requester(chat="wecom", user_id="U_ALICE", user_name="alice")
B_CODE = {"type": "B", "page": "pages/index/index", "scene": "id=7"}


@pytest.fixture
async def service(upstreams: Upstreams, tmp_path: Path) -> AsyncIterator[Service]:
    async with open_service(upstreams.settings(tmp_path)) as svc:
        yield svc


async def test_an_upstream_code_is_stored_with_the_catalogue_sentences(service: Service, upstreams: Upstreams) -> None:
    upstreams.wechat.inject(45009, path="/wxa/getwxacodeunlimit")
    record = (await service.submit(B_CODE, ALICE)).record
    assert record.status is Status.FAILED and record.error_code == "45009"
    expected = messages.wechat_error(45009, "reach max api daily quota limit", api="B").message
    assert (record.error_zh, record.error_en) == (expected.zh, expected.en)
    assert record.error_message == expected
    stored = service.storage.history.get(record.id)  # as read back from the file, not a cached object
    assert stored is not None and stored.error_message == expected


async def test_an_unforeseen_failure_is_stored_as_internal_without_its_trace(
        service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    # A bug has no wire to break: the one place where a function is replaced.
    async def broken(request: CodeRequest, *, resume: bool = False) -> None:
        raise KeyError("link")

    monkeypatch.setattr(service.upstream, "make", broken)
    record = (await service.submit(B_CODE | {"scene": "id=8"}, ALICE)).record
    assert record.status is Status.FAILED and record.error_code == messages.INTERNAL_CODE == "internal"
    assert record.error_message == messages.INTERNAL
    assert "KeyError" not in (record.error_zh or "") + (record.error_en or "")


async def test_our_own_errors_are_stored_under_their_stable_name(upstreams: Upstreams, tmp_path: Path) -> None:
    # A row an earlier process left pending, for a campaign GrowingIO no longer has: resumed on start.
    request = CodeRequest(type=CodeType.C, via=Provider.GIO, app="SbxMinp1", page="pages/a/a",
                          name="gone-campaign-link", campaign="已下线的活动", channel="今日头条")
    earlier = Storage.open(tmp_path)
    pending = earlier.history.save_pending(request, ALICE, key=request.reuse_key(), app="SbxMinp1",
                                           sandbox=False).record
    earlier.close()
    async with open_service(upstreams.settings(tmp_path)) as service:
        record = await service.wait(pending.id, timeout=30)
    assert record.status is Status.FAILED
    assert record.error_code == NotFound.code_name == "not_found"  # never the class name "NotFound"
    assert record.error_message is not None and "已下线的活动" in record.error_message.zh
    assert "已下线的活动" in record.error_message.en
