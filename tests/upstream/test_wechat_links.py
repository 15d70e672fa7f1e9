"""WeChatClient's URL Link, URL Scheme and plain-text scheme against the WeChat emulator on a real loopback port,
and every errcode of theirs in our words (bot/messages.py): the pages are
https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/url-link/api_generateurllink.html,
https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/url-scheme/api_generatescheme and
https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/url-scheme.html (the plain-text scheme)."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import pytest

from bot import messages
from bot.errors import ConfigError, RateLimited, UpstreamError, UpstreamRejected
from bot.models import CodeRequest, CodeType, Provider
from bot.sandbox import SANDBOX_APPID
from bot.upstream.wechat import WeChatClient
from tests.conftest import Site
from tests.upstream.test_wechat import assert_bilingual, body_of

URLLINK, SCHEME, SHORT = "/wxa/generate_urllink", "/wxa/generatescheme", "/wxa/genwxashortlink"


def close_to(moment: datetime | None, expected: float) -> bool:
    return moment is not None and abs(moment.timestamp() - expected) < 5


async def test_url_link_sends_the_page_apart_from_its_query(wechat: Site, wechat_client: WeChatClient) -> None:
    result = await wechat_client.url_link("pages/goods/goods", "id=9&from=sms", env_version="trial", days=7)
    assert result.provider is Provider.WECHAT and result.link and re.fullmatch(r"https://wxaurl\.cn/\w+", result.link)
    assert body_of(wechat, URLLINK) == {"path": "pages/goods/goods", "query": "id=9&from=sms", "env_version": "trial",
                                        "expire_type": 1, "expire_interval": 7}
    assert close_to(result.expires_at, time.time() + 7 * 86400)
    assert wechat.emu.links[-1]["link"] == result.link


async def test_url_scheme_and_the_home_page(wechat: Site, wechat_client: WeChatClient) -> None:
    result = await wechat_client.url_scheme("", days=30)
    assert result.link and result.link.startswith("weixin://dl/business/?t=")
    # "path 为空时会跳转小程序主页": left out, as is a release env_version.
    assert body_of(wechat, SCHEME) == {"jump_wxa": {}, "expire_type": 1, "expire_interval": 30}
    assert close_to(result.expires_at, time.time() + 30 * 86400)


async def test_the_plain_text_scheme_calls_nothing(wechat: Site, wechat_client: WeChatClient) -> None:
    request = CodeRequest.parse({"type": "scheme", "plain": True, "page": "/pages/a/a?id=1&n=%E5%BC%A0",
                                 "env_version": "develop"})
    result = await wechat_client.make(request)
    # The query is URL-encoded as a whole, as WeChat asks ("需要url_encode").
    assert result.link == (f"weixin://dl/business/?appid={SANDBOX_APPID}&path=pages/a/a"
                           "&query=id%3D1%26n%3D%25E5%25BC%25A0&env_version=develop")
    assert result.expires_at is None and not wechat.emu.calls


@pytest.mark.parametrize("kind", ["urllink", "scheme"])
async def test_make_routes_the_link_types(wechat: Site, wechat_client: WeChatClient, kind: str) -> None:
    result = await wechat_client.make(CodeRequest.parse({"type": kind, "page": "pages/a/a?x=1", "expire_days": 3}))
    assert result.link and close_to(result.expires_at, time.time() + 3 * 86400)
    made = wechat.emu.links[-1]
    assert (made["kind"], made["path"], made["query"]) == (kind, "pages/a/a", "x=1")


async def test_a_temporary_short_link_says_when_it_ends(wechat: Site, wechat_client: WeChatClient) -> None:
    temporary = await wechat_client.short_link("pages/a/a")
    assert close_to(temporary.expires_at, time.time() + 30 * 86400)
    permanent = await wechat_client.short_link("pages/a/a", is_permanent=True)
    assert permanent.link and permanent.expires_at is None


# ---- every errcode of the two pages, from the emulator's own rules ---------------------------------------


@pytest.mark.parametrize(("setup", "call", "errcode", "cls", "words"), [
    ({"pages": {"pages/a/a"}}, {"path": "pages/b/b"}, 40165, UpstreamRejected, "released"),
    ({}, {"path": "pages/a/a", "query": "n=张"}, 40212, UpstreamRejected, "query"),
    ({}, {"path": "pages/a/a", "days": 31}, 85401, UpstreamRejected, "30 days"),
    ({}, {"path": "pages/a/a", "env_version": "beta"}, 85402, UpstreamRejected, "env_version"),
    ({"released": False}, {"path": "pages/a/a"}, 85079, UpstreamRejected, "released version"),
    ({"links_allowed": False}, {"path": "pages/a/a"}, 40002, ConfigError, "non-personal"),
])
@pytest.mark.parametrize("kind", ["urllink", "scheme"])
async def test_link_errcodes_in_our_words(wechat: Site, wechat_client: WeChatClient, kind: str, setup: dict[str, Any],
                                          call: dict[str, Any], errcode: int, cls: type[UpstreamError],
                                          words: str) -> None:
    for knob, value in setup.items():
        setattr(wechat.emu, knob, value)
    make = wechat_client.url_link if kind == "urllink" else wechat_client.url_scheme
    with pytest.raises(cls) as caught:
        await make(**call)
    assert type(caught.value) is cls and caught.value.code == errcode and words in caught.value.en
    assert_bilingual(caught.value)
    assert wechat.emu.calls[URLLINK if kind == "urllink" else SCHEME] == 1


async def test_40013_is_a_ban_here_not_a_wrong_appid(wechat: Site, wechat_client: WeChatClient) -> None:
    wechat.emu.inject(40013, path=URLLINK)
    with pytest.raises(ConfigError) as caught:
        await wechat_client.url_link("pages/a/a")
    assert "banned" in caught.value.en and "WECHAT_APPID" not in caught.value.en


async def test_44990_a_hundred_a_second(wechat: Site, wechat_client: WeChatClient) -> None:
    wechat.emu.links_per_second = 1
    await wechat_client.url_link("pages/a/a")
    with pytest.raises(RateLimited) as caught:
        await wechat_client.url_scheme("pages/a/a")
    assert caught.value.code == 44990 and caught.value.retry_after == 1.0 and "100" in caught.value.en
    assert caught.value.not_before is None  # a second, not the day: the next call goes to WeChat again
    assert wechat_client.closed_until(CodeType.URLLINK) is None
    assert_bilingual(caught.value)


async def test_44993_closes_both_link_kinds_until_beijing_midnight(wechat: Site, wechat_client: WeChatClient) -> None:
    wechat.emu.links_per_day = 1
    await wechat_client.url_scheme("pages/a/a")
    with pytest.raises(RateLimited) as caught:
        await wechat_client.url_link("pages/a/a")
    error = caught.value
    assert error.code == 44993 and "500,000" in error.en and "50 万" in error.zh and "plain-text" in error.en
    assert error.not_before == messages.next_beijing_midnight(time.time())
    calls = dict(wechat.emu.calls)
    # The other kind is refused here too, with the same words, without asking WeChat.
    with pytest.raises(RateLimited) as again:
        await wechat_client.url_scheme("pages/b/b")
    assert again.value.code == 44993 and dict(wechat.emu.calls) == calls
    # A codes and Short Links are not held back by it.
    assert wechat_client.closed_until(CodeType.A) is None and (await wechat_client.short_link("pages/a/a")).link


# ---- wording that says what WeChat says ---------------------------------------------------------------


def test_40097_is_any_invalid_argument() -> None:
    error = messages.wechat_error(40097, "invalid args", api="A")
    assert "invalid args" in error.en and "env_version, for one" in error.en


def test_40169_also_means_the_body_was_not_json() -> None:
    error = messages.wechat_error(40169, "invalid length for scene, or the data is not json string", api="B")
    assert "not JSON" in error.en and "JSON" in error.zh


@pytest.mark.parametrize("api", ["shortlink", "A"])
def test_43104_is_not_open_to_this_mini_program(api: str) -> None:
    error = messages.wechat_error(43104, "this appid does not have permission", api=api)
    assert isinstance(error, ConfigError) and "personal" in error.en and "个人主体" in error.zh
    assert "e-commerce" not in error.en
