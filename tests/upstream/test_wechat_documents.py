"""What the current WeChat references say and our rules once got wrong (issue 11), over real wires.

A takes a path of up to 1024 bytes (C keeps 128, GrowingIO links 128 with their suffix); 41030 says
that the page check looks at the released version whatever env says; 45009 on A is the daily limit,
carried as data (``not_before``: the next midnight in Beijing) and honoured without calling WeChat.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.config import Settings
from bot.errors import InvalidRequest, RateLimited, UpstreamRejected
from bot.messages import next_beijing_midnight
from bot.models import GIO_AID_SUFFIX_BYTES, CodeRequest, Requester
from bot.sandbox import SANDBOX_APPID, SANDBOX_HOME_PAGE, SANDBOX_SECRET, qr
from bot.service import Service
from bot.upstream import Upstream
from bot.upstream.wechat import WeChatClient
from handlers import commands
from storage import Storage
from tests.conftest import FakeClock, Site
from tests.wecom.test_callback import USER as WECOM_USER
from tests.wecom.test_callback import wecom as wecom_site  # noqa: F401  (the WeCom fixture, as wecom_site)


def wecom_user() -> str:
    return WECOM_USER

A, B, C = "/wxa/getwxacode", "/wxa/getwxacodeunlimit", "/cgi-bin/wxaapp/createwxaqrcode"
Scan = Callable[[bytes], qr.ScannedCode]
ALICE = Requester(chat="console", user_id="alice")


def a_path(size: int) -> str:
    head = "pages/detail/detail?q="
    return head + "x" * (size - len(head))


@pytest.fixture
def client(http: httpx.AsyncClient, wechat: Site, clock: FakeClock) -> WeChatClient:
    return WeChatClient(http, wechat.url, SANDBOX_APPID, SecretStr(SANDBOX_SECRET), clock=clock)


async def test_an_a_path_of_1024_bytes_is_accepted_here_and_by_wechat(wechat: Site, client: WeChatClient) -> None:
    path = a_path(600) + "中" * 140  # 1020 bytes, Chinese counted as 3
    path += "x" * (1024 - len(path.encode()))
    request = CodeRequest.parse({"type": "A", "page": path})
    result = await client.make(request)
    assert result.image and result.mime == "image/jpeg" and wechat.emu.calls[A] == 1


async def test_an_a_path_of_1025_bytes_and_a_c_path_of_129_are_refused_before_any_call(wechat: Site,
                                                                                        client: WeChatClient) -> None:
    for kind, size, limit in (("A", 1025, 1024), ("C", 129, 128)):
        with pytest.raises(InvalidRequest) as caught:
            CodeRequest.parse({"type": kind, "page": a_path(size)})
        assert str(limit) in caught.value.en and str(size) in caught.value.en
    with pytest.raises(UpstreamRejected) as refused:  # the emulator keeps C's 128 too
        await client.c_code(a_path(129))
    assert refused.value.code == 40159
    assert (await client.a_code(a_path(129))).image  # ...and takes an A path that long


def test_a_growingio_path_leaves_room_for_the_longer_gio_link_id_suffix() -> None:
    assert GIO_AID_SUFFIX_BYTES == len("?gio_link_id=") + 8 == 21
    base = {"type": "A", "via": "gio", "campaign": "c", "channel": "d"}
    assert CodeRequest.parse(base | {"page": a_path(128 - 21)})
    with pytest.raises(InvalidRequest) as caught:
        CodeRequest.parse(base | {"page": a_path(128 - 20)})
    assert "gio_link_id" in caught.value.en and "107" in caught.value.en


async def test_41030_says_the_released_version_is_checked_whatever_env_says(wechat: Site,
                                                                             client: WeChatClient) -> None:
    wechat.emu.pages = {SANDBOX_HOME_PAGE}
    with pytest.raises(UpstreamRejected) as caught:
        await client.b_code("k=v", "pages/new/new", env_version="trial")
    assert caught.value.code == 41030
    assert "released version whatever env says" in caught.value.en and "check=no" in caught.value.en
    assert "check=no" in caught.value.zh and "已发布" in caught.value.zh
    assert (await client.b_code("k=v", "pages/new/new", check_path=False, env_version="trial")).image


async def test_45009_on_a_codes_is_the_daily_limit_and_holds_until_beijing_midnight(
        wechat: Site, client: WeChatClient, clock: FakeClock) -> None:
    wechat.emu.a_per_day = 1
    await client.a_code("pages/a/a")
    with pytest.raises(RateLimited) as caught:
        await client.a_code("pages/b/b")
    error = caught.value
    midnight = next_beijing_midnight(clock())
    assert error.code == 45009 and error.not_before == midnight
    assert error.retry_after == pytest.approx(midnight - clock())
    assert "10,000" in error.en and "midnight Beijing time" in error.en and "1 万" in error.zh
    assert wechat.emu.calls[A] == 2
    # The rest of the day's A and C work is refused here, with the same data, without calling WeChat.
    for call in (client.a_code("pages/c/c"), client.c_code("pages/d/d")):
        with pytest.raises(RateLimited) as again:
            await call
        assert again.value.not_before == midnight
    assert (wechat.emu.calls[A], wechat.emu.calls[C]) == (2, 0)
    assert (await client.b_code("s=1")).image  # B has no daily limit
    clock.advance(midnight - clock() + 1)
    assert client.closed_until(CodeRequest.parse({"type": "A", "page": "p"}).type) is None
    assert (await client.a_code("pages/c/c")).image and wechat.emu.calls[A] >= 3


def test_next_beijing_midnight_is_16_00_utc() -> None:
    # 2023-11-14 22:13:20 UTC is already 06:13 on the 15th in Beijing: the next midnight is 15th 16:00 UTC.
    assert next_beijing_midnight(1_700_000_000) == 1_700_064_000
    assert next_beijing_midnight(1_700_064_000) == 1_700_064_000 + 86400


async def test_45009_on_b_codes_is_the_per_minute_limit(wechat: Site, client: WeChatClient) -> None:
    wechat.emu.b_per_minute = 1
    await client.b_code("1")
    with pytest.raises(RateLimited) as caught:
        await client.b_code("2")
    assert caught.value.not_before is None and 0 < (caught.value.retry_after or 0) <= 60
    assert "5,000" in caught.value.en


# ---- the same scene rule and opt-in in every front-end; env and check where they apply -------------


@pytest.fixture
async def service(wechat: Site, tmp_path: Path) -> AsyncIterator[Service]:
    """The service on a real WeChat wire (no GrowingIO), as a deployment with only WeChat runs it."""
    http = httpx.AsyncClient(timeout=10, trust_env=False)
    upstream = Upstream(wechat=WeChatClient(http, wechat.url, SANDBOX_APPID, SecretStr(SANDBOX_SECRET)), gio=None,
                        _clients=[http])
    settings = Settings(_env_file=None, minpcode_data_dir=str(tmp_path), minpcode_sandbox=False)
    async with Service(settings, Storage.open(tmp_path), upstream) as svc:
        yield svc


async def test_chat_refuses_a_scene_that_does_not_fit_unless_long_yes(service: Service, wechat: Site) -> None:
    refused = await commands.run(service, "new pages/a/a type=B scene=这是中文", ALICE)
    assert not refused.ok and "'这是中文'" in refused.zh and "long=yes" in refused.en
    assert wechat.emu.calls[B] == 0 and service.storage.scenes.key_for("这是中文") is None
    made = await commands.run(service, "new pages/a/a type=B scene=这是中文 long=yes", ALICE)
    assert made.ok and made.record is not None and made.record.scene and made.record.scene.startswith("k=")
    assert service.scene_params(made.record.scene) == "这是中文"
    assert json.loads(wechat.log.to(B)[-1].body)["scene"] == made.record.scene


async def test_chat_env_and_check_reach_wechat(service: Service, wechat: Site) -> None:
    wechat.emu.pages = {SANDBOX_HOME_PAGE}
    made = await commands.run(service, "new pages/new/new type=B scene=x=1 env=trial check=no", ALICE)
    assert made.ok, made.en
    sent = json.loads(wechat.log.to(B)[-1].body)
    assert (sent["env_version"], sent["check_path"]) == ("trial", False)
    a_code = await commands.run(service, "new pages/a/a env=develop", ALICE)
    assert a_code.ok and json.loads(wechat.log.to(A)[-1].body)["env_version"] == "develop"
    for text, words in (("new pages/a/a type=C check=no", "B codes only"),
                        ("new pages/a/a type=C env=trial", "A and B codes")):
        refused = await commands.run(service, text, ALICE)
        assert not refused.ok and words in refused.en
    assert wechat.emu.calls[C] == 0


def test_the_bad_scene_characters_are_listed_in_the_order_they_appear() -> None:
    with pytest.raises(InvalidRequest) as caught:
        CodeRequest.parse({"type": "B", "scene": "id=这是中文是"})
    assert "'这是中文'" in caught.value.zh and "'这是中文'" in caught.value.en


def test_cli_long_scene_env_and_no_check(tmp_path: Path) -> None:
    from tests.cli.test_cli import Cli

    cli = Cli(tmp_path)
    refused = cli.run("create", "--page", "pages/a/a", "--type", "B", "--scene", "这是中文", "--json")
    assert refused.returncode == 2 and "--long-scene" in refused.stdout + refused.stderr
    made = cli.run("create", "--page", "pages/a/a", "--type", "B", "--scene", "这是中文", "--long-scene",
                   "--env", "trial", "--no-check", "--json")
    assert made.returncode == 0, made.stderr
    record = json.loads(made.stdout)
    assert record["scene"].startswith("k=") and record["status"] == "done"
    wrong = cli.run("create", "--page", "pages/a/a", "--type", "C", "--no-check")
    assert wrong.returncode == 2 and "--no-check" in wrong.stderr


def test_wecom_text_takes_long_env_and_check(wecom_site: Any, scan: Scan) -> None:  # noqa: F811
    from tests.wecom.test_flow import wait_text

    wecom_site.sender.send_text(wecom_user(), "新建 pages/new/new type=B scene=城市=上海 long=yes env=trial check=no")
    wait_text(wecom_site, 1, "k=")
    record = wecom_site.service.recent()[0]
    assert (record.code_request().env_version, record.code_request().check_path) == ("trial", False)
    assert wecom_site.service.scene_params(record.scene or "") == "城市=上海"
    wecom_site.sender.send_text(wecom_user(), "新建 pages/a/a type=B scene=城市=上海")
    wait_text(wecom_site, 2, "long=yes")
