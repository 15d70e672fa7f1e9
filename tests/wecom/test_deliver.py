"""Sending in WeCom (handlers/wecom/deliver.py) against the WeCom emulator: an image sent again by a delivery
run a second time, after a crash, is the same request, and WeCom's duplicate check keeps it from the member."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.outbox import Outbox
from handlers.wecom.client import DUPLICATE_CHECK_INTERVAL, Target, WeComClient
from handlers.wecom.deliver import Deliverer
from storage import Storage
from tests.emulators.test_wecom import png
from tests.emulators.wecom import MEDIA_TTL, FakeClock, WeComEmulator

USER = "zhangsan"
TO = Target(USER)


@dataclass
class Site:
    emu: WeComEmulator
    clock: FakeClock
    deliver: Deliverer
    outbox: Outbox

    def images(self) -> int:
        return sum(1 for m in self.emu.messages_for(USER) if m.msgtype == "image")


@pytest.fixture
async def site(serve: Callable[[Any], str], tmp_path: Path) -> AsyncIterator[Site]:
    clock = FakeClock()
    emu = WeComEmulator(clock=clock)
    api = serve(emu.app)
    store = Storage.open(tmp_path)
    async with httpx.AsyncClient(trust_env=False) as http:
        client = WeComClient(http, api, emu.corp_id, emu.agent_id, SecretStr(emu.secret))
        yield Site(emu, clock, Deliverer(client), Outbox(store, "test"))
    store.close()


async def crash_after_sending(site: Site, row: int, image: bytes) -> None:
    """A first run of ``row``'s delivery that dies right after WeCom took the image."""
    async def work() -> None:
        await site.deliver.image(TO, image, "image/png", "code.png")
        raise ConnectionError("killed before the row was marked delivered")

    with pytest.raises(ConnectionError):
        await site.outbox.deliver(row, work)


async def test_a_delivery_run_again_sends_the_same_upload_and_the_member_gets_it_once(site: Site) -> None:
    row = site.outbox.accept("wecom", "message", "{}")
    assert row is not None
    image = png(300)
    await crash_after_sending(site, row, image)
    assert await site.outbox.deliver(row, lambda: site.deliver.image(TO, image, "image/png", "code.png"))
    first, again = [c.json for c in site.emu.calls_to("message/send")]
    assert first == again and first["enable_duplicate_check"] == 1
    assert first["duplicate_check_interval"] == DUPLICATE_CHECK_INTERVAL
    assert len(site.emu.calls_to("media/upload")) == 1 and site.images() == 1 and len(site.emu.duplicates) == 1


async def test_another_request_for_the_same_image_is_no_repeat(site: Site) -> None:
    image = png(300)
    for _ in range(2):  # two messages asking for the same code: two rows, two uploads, two images
        row = site.outbox.accept("wecom", "message", "{}")
        assert row is not None
        assert await site.outbox.deliver(row, lambda: site.deliver.image(TO, image, "image/png", "code.png"))
    await site.deliver.image(TO, image, "image/png", "code.png")  # and outside the outbox
    sends = [c.json for c in site.emu.calls_to("message/send")]
    assert [body["enable_duplicate_check"] for body in sends] == [1, 1, 1]  # each checked, none a repeat
    assert len(site.emu.calls_to("media/upload")) == 3 and site.images() == 3 and site.emu.duplicates == []


async def test_a_kept_upload_that_has_expired_is_uploaded_again(site: Site) -> None:
    row = site.outbox.accept("wecom", "message", "{}")
    assert row is not None
    image = png(300)
    await crash_after_sending(site, row, image)
    site.clock.advance(MEDIA_TTL + 60)  # restarted three days later: the media_id is gone (40007)
    assert await site.outbox.deliver(row, lambda: site.deliver.image(TO, image, "image/png", "code.png"))
    sends = [c.errcode for c in site.emu.calls_to("message/send")]
    assert [code for code in sends if code != 42001] == [0, 40007, 0]  # (the token expired too)
    # past the duplicate check's 4 hours as well: sent again, at least once
    assert len(site.emu.calls_to("media/upload")) == 2 and site.images() == 2
