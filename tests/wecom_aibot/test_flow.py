"""The AI bot end to end: our real server connects out to the gateway emulator (tests/emulators/wecom_aibot.py)
over a real websocket on 127.0.0.1; people @-mention it in a group or write to it 1:1."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.config import Settings
from bot.server import create_app, open_service
from bot.service import Service
from tests.emulators.wecom_aibot import ASSUMED, BOT_ID, SECRET, AiBotGateway


@dataclass
class Site:
    gw: AiBotGateway
    service: Service
    url: str  # our server


def aibot_settings(gw: AiBotGateway, data_dir: Path, *, secret: str = SECRET, **extra: Any) -> Settings:
    return Settings(_env_file=None, minpcode_data_dir=data_dir, minpcode_sandbox=True,  # type: ignore[call-arg]
                    wecom_bot_id=BOT_ID, wecom_bot_secret=SecretStr(secret), wecom_bot_ws_url=gw.url, **extra)


@pytest.fixture
def gateway() -> Iterator[AiBotGateway]:
    with AiBotGateway() as gw:
        yield gw


@pytest.fixture
def site(gateway: AiBotGateway, serve: Callable[[Any], str], tmp_path: Path) -> Site:
    settings = aibot_settings(gateway, tmp_path)
    service = open_service(settings)
    url = serve(create_app(settings, service))
    gateway.wait_subscribed()
    return Site(gateway, service, url)


def final(gw: AiBotGateway, msgid: str | None) -> dict[str, Any]:
    """The stream that finished the answer to ``msgid``."""
    assert msgid is not None
    gw.wait(lambda: gw.finished(msgid))
    answers = gw.answers(msgid)
    assert answers[-1]["msgtype"] == "stream" and answers[-1]["stream"]["finish"] is True
    return dict(answers[-1]["stream"])


def test_a_group_mention_is_answered_in_the_group_with_the_code_image_then_details(
        site: Site, scan: Callable[[bytes], Any]) -> None:
    msgid = site.gw.say("zhangsan", "新建 pages/index/index type=B scene=id=42", chat="group-1")
    stream = final(site.gw, msgid)
    assert site.service.recent(), stream["content"]
    record = site.service.recent()[0]
    assert stream["content"].startswith("<@zhangsan>")  # the asker, mentioned
    assert record.id in stream["content"] and "pages/index/index" in stream["content"]
    [item] = stream["msg_item"]
    image = base64.b64decode(item["image"]["base64"])
    code = scan(image)
    assert code.kind == "B" and code.scene == "id=42" and code.page == "pages/index/index"
    # the same person as in the self-built app, and where it was asked
    assert record.requested_by == "wecom:zhangsan" and record.chat == "wecom" and record.chat_channel == "group-1"
    assert site.gw.refusals == []


def test_a_wrong_field_gets_the_bilingual_field_errors_chinese_first(site: Site) -> None:
    msgid = site.gw.say("lisi", "新建 pages/index/index type=B scene=这里不行", chat="group-1")
    stream = final(site.gw, msgid)
    content = stream["content"]
    assert content.startswith("<@lisi>\n请修改后再试") and "msg_item" not in stream
    assert content.index("scene 只能用") < content.index("Please fix and try again") < content.index("The scene may")
    assert site.service.recent() == []


def test_one_to_one_help_is_answered_without_a_mention(site: Site) -> None:
    msgid = site.gw.say("wangwu", "帮助")
    content = final(site.gw, msgid)["content"]
    assert not content.startswith("<@") and "新建" in content


def test_a_message_pushed_again_is_not_answered_twice(site: Site) -> None:
    msgid = site.gw.say("zhangsan", "帮助", chat="group-1")
    assert msgid is not None
    final(site.gw, msgid)
    site.gw.resend(msgid)
    time.sleep(0.5)
    assert len(site.gw.answers(msgid)) == 1 and site.gw.refusals == []


def test_after_a_drop_it_reconnects_and_answers_what_was_pushed_meanwhile(site: Site) -> None:
    site.gw.drop()
    site.gw.wait(lambda: not site.gw.connected)
    msgid = site.gw.say("zhaoliu", "帮助", chat="group-1")  # pushed again once the bot is back (ASSUMED)
    site.gw.wait_subscribed(2, timeout=40)
    final(site.gw, msgid)
    time.sleep(0.3)
    assert len(site.gw.answers(msgid)) == 1


def test_readyz_and_metrics_show_the_connection(site: Site) -> None:
    ready = httpx.get(site.url + "/readyz").json()
    assert ready["gateways"]["wecom_aibot"]["state"] == "connected"
    page = httpx.get(site.url + "/metrics").text
    assert 'minpcode_gateway_connected{front_end="wecom_aibot"} 1.0' in page


def test_refused_credentials_are_said_once_with_what_to_fix(gateway: AiBotGateway, serve: Callable[[Any], str],
                                                            tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "minpcode.wecom.aibot")
    settings = aibot_settings(gateway, tmp_path, secret="wrong-secret")
    url = serve(create_app(settings, open_service(settings)))
    gateway.wait(lambda: gateway.refused_subscriptions >= 1)
    deadline = time.monotonic() + 10
    while (answer := httpx.get(url + "/readyz")).status_code != 503:
        assert time.monotonic() < deadline, answer.json()
        time.sleep(0.05)
    assert answer.json()["gateways"]["wecom_aibot"]["state"] == "refused"
    said = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(said) == 1 and "WECOM_BOT_SECRET" in said[0] and "wrong-secret" not in said[0]
    assert ("aibot_subscribe", ASSUMED["bad_credentials"][0]) in gateway.refusals


def front_end(app: Any) -> Any:
    return next(f for f in app.state.front_ends if f.name == "wecom_aibot")


@pytest.fixture
def app_site(gateway: AiBotGateway, serve: Callable[[Any], str], tmp_path: Path) -> tuple[Site, Any]:
    settings = aibot_settings(gateway, tmp_path)
    service = open_service(settings)
    app = create_app(settings, service)
    url = serve(app)
    gateway.wait_subscribed()
    return Site(gateway, service, url), front_end(app)


def test_long_work_says_it_is_working_then_finishes_the_same_stream(app_site: tuple[Site, Any]) -> None:
    site, front = app_site
    front.working_after = 0.0  # every answer counts as long work here
    msgid = site.gw.say("zhangsan", "新建 pages/index/index type=B scene=id=7", chat="group-1")
    stream = final(site.gw, msgid)
    first = site.gw.answers(msgid or "")[0]["stream"]
    assert first["finish"] is False and first["content"].startswith("正在处理")
    assert first["id"] == stream["id"] and len(stream["msg_item"]) == 1


def test_past_the_stream_window_the_answer_is_pushed_to_the_group(app_site: tuple[Site, Any],
                                                                   scan: Callable[[bytes], Any]) -> None:
    site, front = app_site
    front.window = 0.0  # as if the code took longer than WeCom's six minutes
    msgid = site.gw.say("lisi", "新建 pages/index/index type=B scene=id=8", chat="group-1")
    site.gw.wait(lambda: len(site.gw.sent) >= 2)
    markdown, image = site.gw.sent[:2]
    assert markdown["chatid"] == "group-1" and markdown["markdown"]["content"].startswith("<@lisi>")
    assert image["chatid"] == "group-1" and image["msgtype"] == "image"
    kind, _, data = site.gw.media[image["image"]["media_id"]]
    assert kind == "image" and scan(data).scene == "id=8"
    assert site.gw.answers(msgid or "") == [] and site.gw.refusals == []


def test_new_alone_opens_the_card_form_driven_by_its_events(site: Site, scan: Callable[[bytes], Any]) -> None:
    gw = site.gw
    msgid = gw.say("zhangsan", "新建", chat="group-1")
    assert msgid is not None
    gw.wait(lambda: gw.finished(msgid))
    [answer] = gw.answers(msgid)
    card = answer["template_card"]
    assert answer["msgtype"] == "template_card" and card["card_type"] == "multiple_interaction"
    assert [s["question_key"] for s in card["select_list"]] == ["kind", "campaign", "channel"]

    gw.click("zhangsan", card["task_id"], "submit",
             {"kind": ["gio-A"], "campaign": ["SbxCmp01"], "channel": ["jinritoutiao"]}, chat="group-1")
    gw.wait(lambda: bool(gw.updates) and bool(gw.sent))
    update = gw.updates[0]
    assert update["userids"] == ["zhangsan"] and update["template_card"]["main_title"]["title"] == "已提交 ✓"
    ask = gw.sent[0]
    assert ask["chatid"] == "group-1" and ask["markdown"]["content"].startswith("<@zhangsan>")
    assert "请发送页面路径" in ask["markdown"]["content"] and "双十一推广" in ask["markdown"]["content"]

    page = gw.say("zhangsan", "pages/list/list?from=poster", chat="group-1")
    stream = final(gw, page)
    record = site.service.recent()[0]
    assert record.campaign == "双十一推广" and record.channel == "今日头条" and record.requested_by == "wecom:zhangsan"
    assert "监测链接" in stream["content"] and record.id in stream["content"]
    code = scan(base64.b64decode(stream["msg_item"][0]["image"]["base64"]))
    assert code.kind == "A" and code.page.startswith("pages/list/list?from=poster")
    assert gw.refusals == []


def test_someone_else_pressing_the_card_does_not_submit_it(site: Site) -> None:
    gw = site.gw
    msgid = gw.say("zhangsan", "新建", chat="group-1")
    assert msgid is not None
    gw.wait(lambda: gw.finished(msgid))
    task_id = gw.answers(msgid)[0]["template_card"]["task_id"]
    gw.click("lisi", task_id, "submit", {"kind": ["wx-B"]}, chat="group-1")
    gw.wait(lambda: bool(gw.sent))
    assert gw.updates[0]["userids"] == ["lisi"] and gw.updates[0]["template_card"]["main_title"]["title"] == "已失效"
    assert gw.sent[0]["markdown"]["content"].startswith("<@lisi>") and "已过期" in gw.sent[0]["markdown"]["content"]


def test_help_in_a_group_says_the_group_s_chatid_for_summaries(site: Site) -> None:
    content = final(site.gw, site.gw.say("zhangsan", "帮助", chat="group-42"))["content"]
    assert content.rstrip().endswith("WECOM_BOT_SUMMARY_CHAT): group-42")


@pytest.mark.parametrize("msgtype", ["voice", "mixed"])
def test_a_transcribed_voice_or_a_text_with_a_picture_is_read_as_its_text(site: Site, msgtype: str) -> None:
    chat = "group-1" if msgtype == "mixed" else None
    content = final(site.gw, site.gw.say("zhangsan", "帮助 新建", chat=chat, msgtype=msgtype))["content"]
    assert "我只看得懂文字命令" not in content and "新建" in content and "scene" in content, content


def test_an_image_is_answered_with_what_the_bot_takes(site: Site) -> None:
    content = final(site.gw, site.gw.say("zhangsan", "", msgtype="image"))["content"]
    assert content.startswith("我只看得懂文字命令") and "Send help" in content


def test_a_stopping_front_end_does_not_take_a_newer_one_s_place_on_readyz() -> None:
    from bot.metrics import METRICS

    old, new = AiBotState("stopped"), AiBotState("connected")
    METRICS.feed_gateway("wecom_aibot", old.state)
    METRICS.feed_gateway("wecom_aibot", new.state)  # a newer process' front-end started
    METRICS.unfeed_gateway("wecom_aibot", old.state)  # the older one's stop comes late
    try:
        assert METRICS.gateways()["wecom_aibot"][0] == "connected"
    finally:
        METRICS.unfeed_gateway("wecom_aibot", new.state)
    assert "wecom_aibot" not in METRICS.gateways()


@dataclass
class AiBotState:
    name: str

    def state(self) -> tuple[str, float]:
        return self.name, 0.0


def test_a_sheet_sent_1to1_is_a_batch_dry_run_then_start_and_the_zip_comes_back(site: Site) -> None:
    import io
    import zipfile

    gw = site.gw
    sheet = "页面,类型,场景\npages/index/index,B,id=1\npages/index/index,B,id=2\n".encode()
    content = final(gw, gw.send_file("zhangsan", sheet, "codes.csv"))["content"]
    assert "2" in content and "回复「开始」生成" in content, content
    started = final(gw, gw.say("zhangsan", "开始"))["content"]
    assert started.startswith("开始生成批量任务"), started
    gw.wait(lambda: any(m["msgtype"] == "file" for m in gw.sent), timeout=60)
    zipped = next(m for m in gw.sent if m["msgtype"] == "file")
    assert zipped["chatid"] == "zhangsan"  # a push to a single chat names the member
    kind, name, data = gw.media[zipped["file"]["media_id"]]
    assert kind == "file" and name.endswith(".zip")
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert sum(n.endswith((".png", ".jpg")) for n in names) == 2, names
    assert sorted(r.scene or "" for r in site.service.recent()) == ["id=1", "id=2"]
    assert {r.requested_by for r in site.service.recent()} == {"wecom:zhangsan"}


def test_half_configured_it_stays_off_with_one_line_naming_the_missing_setting(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from handlers.wecom_aibot.front import wecom_aibot_front_end

    caplog.set_level(logging.INFO, "minpcode.wecom.aibot")
    settings = Settings(_env_file=None, minpcode_data_dir=tmp_path, minpcode_sandbox=True,  # type: ignore[call-arg]
                        wecom_bot_id=BOT_ID)
    service = open_service(settings)
    try:
        assert wecom_aibot_front_end(service) is None
    finally:
        asyncio.run(service.close())
    [line] = [r.getMessage() for r in caplog.records if "AI bot is off" in r.getMessage()]
    assert "WECOM_BOT_SECRET not set" in line
