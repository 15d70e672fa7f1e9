"""WeCom form drafts live in SQLite with their expiry: a restart in the middle of the form loses nothing.

The "restart" is a second service and server over the same data folder (the first one's memory is not
shared), answering the same member through the WeCom emulator on a loopback port.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.config import Settings
from bot.drafts import Drafts
from bot.server import create_app, open_service
from storage import Storage
from tests.wecom.test_callback import AES_KEY, TOKEN, USER, WeComSite, make_site
from tests.wecom.test_flow import card_sent, greyed, submit, wait_text


def restarted(site: WeComSite, serve: Callable[[Any], str], tmp_path: Path) -> WeComSite:
    settings = Settings(
        _env_file=None, minpcode_data_dir=tmp_path, minpcode_sandbox=True,  # type: ignore[call-arg]
        wecom_corp_id=site.emu.corp_id, wecom_agent_id=str(site.emu.agent_id), wecom_secret=SecretStr(site.emu.secret),
        wecom_token=SecretStr(TOKEN), wecom_aes_key=SecretStr(AES_KEY), wecom_api_url=site.api)
    service = open_service(settings)
    url = serve(create_app(settings, service)) + "/wecom/callback"
    return WeComSite(site.emu, url, site.emu.callback_client(url, TOKEN, AES_KEY, clock=time.time), service, site.api)


def test_a_form_in_progress_survives_a_restart(serve: Callable[[Any], str], tmp_path: Path,
                                               scan: Callable[[bytes], Any]) -> None:
    first = make_site(serve, tmp_path)
    first.sender.send_text(USER, "新建")
    card = card_sent(first, 1)
    submit(first, card, kind="gio-A", campaign="SbxCmp01", channel="jinritoutiao")
    greyed(first, card)
    wait_text(first, 1, "请发送页面路径")
    assert first.service.drafts.load("wecom", USER) is not None

    second = restarted(first, serve, tmp_path)
    second.sender.send_text(USER, "pages/list/list?from=poster")
    image = next(m for m in second.sent(4) if m.msgtype == "image")
    wait_text(second, 2, "监测链接")
    code = scan(second.emu.uploaded_media[image.media_id or ""])
    assert code.kind == "A" and code.page.startswith("pages/list/list?from=poster")
    record = second.service.recent()[0]
    assert record.campaign == "双十一推广" and record.channel == "今日头条"
    assert second.service.drafts.load("wecom", USER) is None  # the finished form is gone from the database


def test_drafts_expire_in_wall_clock_time(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    storage = Storage.open(tmp_path)
    try:
        drafts = Drafts(storage, clock=lambda: now[0])
        drafts.save("wecom", "lisi", {"step": "page"}, ttl=30)
        now[0] += 10
        found = drafts.load("wecom", "lisi")
        assert found is not None and found[0] == {"step": "page"} and abs(found[1] - 20) < 1e-6
        now[0] += 21
        assert drafts.load("wecom", "lisi") is None
        drafts.save("wecom", "wangwu", {"step": "card"}, ttl=30)  # writing purges the expired rows
        assert storage.drafts.count() == 1
        drafts.drop("wecom", "wangwu")
        assert storage.drafts.count() == 0
    finally:
        storage.close()


def test_a_form_moved_on_by_another_replica_is_answered_from_the_database(
        serve: Callable[[Any], str], tmp_path: Path) -> None:
    # Two replicas behind a load balancer (issue 25): each message of one member may reach either.
    first = make_site(serve, tmp_path)
    first.sender.send_text(USER, "新建")
    submit(first, card_sent(first, 1), kind="gio-A", campaign="SbxCmp01", channel="jinritoutiao")
    wait_text(first, 1, "请发送页面路径")
    second = restarted(first, serve, tmp_path)  # the other replica, the first one still running
    second.sender.send_text(USER, "pages/list/list?from=poster")
    wait_text(second, 2, "监测链接")
    assert len(second.service.recent()) == 1
    # The form is finished: the first replica must not make a second code from what it remembers of it.
    first.sender.send_text(USER, "pages/list/list?from=again")
    answer = wait_text(first, 3)
    assert "监测链接" not in answer
    assert len(first.service.recent()) == 1 and first.service.drafts.load("wecom", USER) is None
