"""Both WeCom front-ends on one server (the self-built app over the WeCom emulator, the AI bot over the gateway
emulator, both on 127.0.0.1): each batch is reported by the front-end it was started in, also after a restart,
and the person is the same ``wecom:<userid>`` in both."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.batch.models import BatchOrigin, BatchStatus
from bot.batch.sheets import load_pasted
from bot.config import Settings
from bot.server import create_app, open_service
from bot.service import Service
from tests.emulators.wecom import CallbackSender, WeComEmulator
from tests.emulators.wecom_aibot import BOT_ID, SECRET, AiBotGateway
from tests.wecom.test_callback import AES_KEY, TOKEN, USER, wecom_settings
from tests.wecom_aibot.test_flow import final

SHEET = "页面,类型,场景\n" + "".join(f"pages/index/index,B,id={i}\n" for i in range(1, 4))
APP_ROWS = "批量\npage,type,scene\n" + "".join(f"pages/index/index,B,app={i}\n" for i in range(1, 3))


@dataclass
class Both:
    emu: WeComEmulator  # the self-built app's WeCom
    gw: AiBotGateway  # the AI bot's gateway
    sender: CallbackSender  # callbacks to the app
    service: Service

    def app_files(self) -> list[bytes]:
        return [self.emu.uploaded_media[self.emu.media[m.media_id or ""].media_id]
                for m in self.emu.sent_messages if m.msgtype == "file"]

    def bot_files(self) -> list[bytes]:
        return [self.gw.media[m["file"]["media_id"]][2] for m in self.gw.sent if m["msgtype"] == "file"]

    def app_texts(self) -> list[str]:
        return [m.content or "" for m in self.emu.sent_messages if m.msgtype == "text"]


def settings_for(emu: WeComEmulator, api: str, gw: AiBotGateway, data_dir: Path) -> Settings:
    return wecom_settings(emu, api, data_dir, wecom_bot_id=BOT_ID, wecom_bot_secret=SecretStr(SECRET),
                          wecom_bot_ws_url=gw.url)


@pytest.fixture
def emulators(serve: Callable[[Any], str]) -> Iterator[tuple[WeComEmulator, str, AiBotGateway]]:
    emu = WeComEmulator()
    api = serve(emu.app)
    with AiBotGateway() as gw:
        yield emu, api, gw


def open_both(serve: Callable[[Any], str], emulators: tuple[WeComEmulator, str, AiBotGateway],
              data_dir: Path) -> Both:
    emu, api, gw = emulators
    settings = settings_for(emu, api, gw, data_dir)
    service = open_service(settings)
    url = serve(create_app(settings, service)) + "/wecom/callback"
    gw.wait_subscribed()
    return Both(emu, gw, emu.callback_client(url, TOKEN, AES_KEY, clock=time.time), service)


def scenes(zipped: bytes) -> int:
    with zipfile.ZipFile(io.BytesIO(zipped)) as z:
        return sum(n.endswith((".png", ".jpg")) for n in z.namelist())


def wait(done: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_each_front_end_runs_and_reports_the_batches_started_in_it(
        serve: Callable[[Any], str], emulators: tuple[WeComEmulator, str, AiBotGateway], tmp_path: Path) -> None:
    both = open_both(serve, emulators, tmp_path)
    gw = both.gw
    # the AI bot: a sheet sent 1:1, its dry run in the bot's answer, none in the app
    dry = final(gw, gw.send_file(USER, SHEET.encode(), "codes.csv"))["content"]
    assert "回复「开始」生成" in dry, dry
    [made] = both.service.batches.recent(f"wecom:{USER}", limit=5)
    assert made.origin.front_end == "wecom_aibot" and made.origin.key == f"wecom:{USER}"

    # 开始 in the app does not start the bot's draft: its results would go to the other front-end
    both.sender.send_text(USER, "开始")
    wait(lambda: bool(both.app_texts()), "the app answered nothing")
    assert both.service.batches.get(made.id).status is BatchStatus.DRAFT

    started = final(gw, gw.say(USER, "开始"))["content"]
    assert started.startswith("开始生成批量任务"), started
    wait(lambda: bool(both.bot_files()), "no zip through the AI bot")

    # the app: pasted rows, its dry run and its zip through the app
    both.sender.send_text(USER, APP_ROWS)
    wait(lambda: any("试运行" in t for t in both.app_texts()), "no dry run in the app")
    both.sender.send_text(USER, "开始")
    wait(lambda: bool(both.app_files()), "no zip through the app")
    both.sender.send_text(USER, "帮助")  # something after the zip, so a stray file would be in by now
    wait(lambda: len(both.app_texts()) >= 4, "no help")

    assert [scenes(z) for z in both.bot_files()] == [3]
    assert [scenes(z) for z in both.app_files()] == [2]
    assert not any("试运行" in m.get("markdown", {}).get("content", "") for m in gw.sent)
    assert {r.requested_by for r in both.service.recent(limit=10)} == {f"wecom:{USER}"}  # one person


def test_after_a_restart_each_running_batch_goes_on_through_its_own_front_end(
        serve: Callable[[Any], str], emulators: tuple[WeComEmulator, str, AiBotGateway], tmp_path: Path) -> None:
    emu, api, gw = emulators
    # what a stop in the middle leaves: two batches running, rows not yet made; the app's stored as every batch
    # was before batches remembered their front-end (no ``front``)
    before = open_service(settings_for(emu, api, gw, tmp_path))

    async def running(rows: str, origin: BatchOrigin) -> str:
        plan = await before.batches.dry_run(await load_pasted(rows), origin)
        before.batches.store.set_status(plan.batch.id, BatchStatus.RUNNING)
        return plan.batch.id

    old_app = BatchOrigin(user_id=USER, chat="wecom")  # no front: as every batch stored before
    app_id = asyncio.run(running("page,type,scene\npages/index/index,B,app=1\n", old_app))
    bot_id = asyncio.run(running(SHEET, BatchOrigin(user_id=USER, chat="wecom", front="wecom_aibot")))
    asyncio.run(before.close())

    both = open_both(serve, emulators, tmp_path)
    wait(lambda: bool(both.bot_files()) and bool(both.app_files()), "a resumed batch reported nowhere")
    for batch_id in (app_id, bot_id):
        wait(lambda b=batch_id: both.service.batches.get(b).status is BatchStatus.DONE, f"{batch_id} not done")
    time.sleep(0.5)  # a second report of either would be in by now
    assert [scenes(z) for z in both.bot_files()] == [3]
    assert [scenes(z) for z in both.app_files()] == [1]
