"""GrowingIO as its documents describe it, not as our emulator once invented it (issue 11).

No error bodies are documented for campaigns, channels or minplinks, so: any refused or failed
create is looked up by name and adopted when identical; GrowingIO's own words are shown; the raw
answer (redacted, at most 500 characters) is kept in the record and the log; any 2xx is success, a
2xx without the fields we need is a plain upstream error; ``X-Client-Id`` only when configured;
Chinese goes out as UTF-8 bytes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.config import Settings
from bot.errors import UpstreamBusy, UpstreamError, UpstreamRejected
from bot.models import CodeRequest, Requester, Status
from bot.sandbox import GIO_PRODUCT_ID, GIO_PROJECT_UID, GIO_TOKEN
from bot.sandbox._gio_rules import SHAPES
from bot.service import Service
from bot.upstream import Upstream
from bot.upstream.growingio import GrowingIOClient, MinpLinkCreate
from bot.upstream.wechat import WeChatClient
from storage import Storage
from tests.conftest import Site

ALICE = Requester(chat="cli", user_id="alice")


def link(name: str = "poster-001", **extra: Any) -> MinpLinkCreate:
    data = {"name": name, "productId": GIO_PRODUCT_ID, "redirectUrl": "pages/list/list", "campaignId": "SbxCmp01",
            "channelId": "SbxChn01", "buildQrCode": True, "codeType": "A"}
    return MinpLinkCreate.model_validate(data | extra)


@pytest.mark.parametrize("shape", SHAPES)
async def test_a_refusal_in_any_shape_shows_growingios_words_and_keeps_the_raw_body(
        gio: Site, gio_client: GrowingIOClient, shape: str, caplog: pytest.LogCaptureFixture) -> None:
    gio.emu.error_shape = shape
    await gio_client.create_minplink(link(buildQrCode=False))
    with caplog.at_level(logging.WARNING, "minpcode.upstream.gio"), pytest.raises(UpstreamRejected) as caught:
        await gio_client.create_minplink(link(redirectUrl="pages/other/other"))  # a namesake: not adopted
    error = caught.value
    assert error.code == "duplicate_name"
    assert "同名监测链接" in error.zh and "GrowingIO" in error.en and "already exists" in error.en
    assert error.raw.startswith("HTTP 400 ") and len(error.raw) <= 500
    assert error.raw in caplog.text


@pytest.mark.parametrize(("status", "body"), [
    (409, "Conflict"),
    (422, "名称已被占用"),
    (400, "the request could not be processed"),
])
async def test_any_refused_create_is_looked_up_by_name_and_adopted_when_identical(
        gio: Site, gio_client: GrowingIOClient, status: int, body: str) -> None:
    first, _ = await gio_client.create_minplink(link())
    gio.emu.error_shape = "text"
    gio.emu.inject(status, "x", body, path="minplinks")
    again, image = await gio_client.create_minplink(link())
    assert again.id == first.id and image and len(gio.emu.links) == 1
    assert gio.log.count("minplinks", "GET") == 1


async def test_words_we_do_not_recognise_are_shown_as_growingio_said_them(gio: Site,
                                                                         gio_client: GrowingIOClient) -> None:
    gio.emu.error_shape = "status"
    gio.emu.inject(422, "x", "项目已冻结，请联系客服", path="minplinks")
    with pytest.raises(UpstreamRejected) as caught:
        await gio_client.create_minplink(link())
    assert caught.value.code == 422
    assert "项目已冻结，请联系客服" in caught.value.zh and "项目已冻结，请联系客服" in caught.value.en
    assert "HTTP 422" in caught.value.en


async def test_the_raw_body_is_redacted_and_cut_to_500(gio: Site, gio_client: GrowingIOClient) -> None:
    gio.emu.error_shape = "text"
    gio.emu.inject(400, "x", f"bad Authorization: {GIO_TOKEN} " + "y" * 900, path="channels")
    with pytest.raises(UpstreamError) as caught:
        await gio_client.channels()
    assert GIO_TOKEN not in caught.value.raw and GIO_TOKEN not in caught.value.en
    assert len(caught.value.raw) <= 500


async def test_a_201_is_success(gio: Site, gio_client: GrowingIOClient) -> None:
    gio.emu.created_status = 201
    created, image = await gio_client.create_minplink(link())
    assert created.trackingUrl == f"pages/list/list?aid={created.id}" and image
    assert (await gio_client.create_channel("新渠道")).name == "新渠道"


@pytest.mark.parametrize("path", ["minplinks", "campaigns"])
async def test_a_2xx_without_the_fields_we_need_is_a_plain_upstream_error(gio: Site, gio_client: GrowingIOClient,
                                                                          path: str) -> None:
    gio.emu.inject(200, "ok", "ok", times=5, path=path)
    call = gio_client.create_minplink(link()) if path == "minplinks" else gio_client.campaigns(fresh=True)
    with pytest.raises(UpstreamBusy) as caught:
        await call
    assert caught.value.code == "bad-answer" and "GrowingIO" in caught.value.en
    assert "validation" not in str(caught.value).lower() and "pydantic" not in str(caught.value).lower()


async def test_a_campaign_or_channel_that_exists_by_name_is_adopted_when_its_create_is_refused(
        gio: Site, gio_client: GrowingIOClient) -> None:
    assert (await gio_client.create_campaign("双十一推广")).id == "SbxCmp01"
    assert (await gio_client.create_channel("今日头条")).id == "jinritoutiao"
    assert gio.log.count("campaigns", "POST") == 1 and gio.log.count("channels", "POST") == 1


async def test_x_client_id_is_sent_only_when_configured(gio: Site, http: httpx.AsyncClient) -> None:
    client = GrowingIOClient(http, gio.url, GIO_PROJECT_UID, None, SecretStr(GIO_TOKEN))
    assert await client.products()
    [call] = gio.log.to("products")
    assert "x-client-id" not in call.headers and call.headers["authorization"] == GIO_TOKEN
    settings = Settings(_env_file=None, gio_project_uid=GIO_PROJECT_UID, gio_token=SecretStr(GIO_TOKEN),
                        gio_product_id=GIO_PRODUCT_ID)
    assert settings.gio_configured and not settings.sandbox
    assert not Settings(_env_file=None, gio_project_uid=GIO_PROJECT_UID, gio_token=SecretStr(GIO_TOKEN)).gio_configured


async def test_chinese_arrives_at_growingio_and_wechat_as_utf8_bytes(gio: Site, gio_client: GrowingIOClient,
                                                                      wechat: Site, wechat_client: WeChatClient) -> None:
    await gio_client.create_campaign("中文活动")
    await gio_client.create_minplink(link("中文链接"))
    await wechat_client.short_link("pages/a/a", "中文标题")
    for site, path, text in ((gio, "campaigns", "中文活动"), (gio, "minplinks", "中文链接"),
                             (wechat, "/wxa/genwxashortlink", "中文标题")):
        body = site.log.to(path, "POST")[0].body
        assert text.encode("utf-8") in body and b"\\u" not in body


# ---- through the service: the raw answer is kept in the record ---------------------------------------


@pytest.fixture
async def service(gio: Site, wechat: Site, tmp_path: Path) -> AsyncIterator[Service]:
    http = httpx.AsyncClient(timeout=10, trust_env=False)
    upstream = Upstream(
        wechat=WeChatClient(http, wechat.url, "wxsandbox0000001", SecretStr("x")),
        gio=GrowingIOClient(http, gio.url, GIO_PROJECT_UID, None, SecretStr(GIO_TOKEN)),
        gio_product_id=GIO_PRODUCT_ID, _clients=[http])
    settings = Settings(_env_file=None, minpcode_data_dir=str(tmp_path), minpcode_sandbox=False)
    async with Service(settings, Storage.open(tmp_path), upstream) as svc:
        yield svc


async def test_a_failed_code_keeps_growingios_raw_answer(gio: Site, service: Service) -> None:
    gio.emu.error_shape = "status"
    gio.emu.inject(400, "x", "渠道已停用", times=3, path="minplinks")
    request = CodeRequest.parse({"type": "A", "via": "gio", "page": "pages/list/list", "campaign": "双十一推广",
                                 "channel": "二维码推广", "name": "raw-kept"})
    record = (await service.submit(request, ALICE)).record
    assert record.status is Status.FAILED and "渠道已停用" in (record.error_en or "")
    stored = service.storage.history.get(record.id)
    assert stored is not None and stored.error_raw is not None
    assert stored.error_raw.startswith("HTTP 400 ") and '"status":"fail"' in stored.error_raw
