"""WeChatClient against the WeChat emulator on a real loopback port: access tokens
(https://developers.weixin.qq.com/miniprogram/dev/server/API/mp-access-token), the A/B/C codes and Short Link
(https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/?lang=en).

Tokens (stable_token normal mode, single flight, refresh once), A/B/C with every parameter, Short
Link, every errcode mapped to a typed bilingual error, -1 and timeouts retried with bounded
backoff, 45009 never retried. Every image is scanned with zxing-cpp.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image
from pydantic import SecretStr

from bot import messages
from bot.errors import (
    ConfigError,
    RateLimited,
    TokenInvalid,
    UpstreamBusy,
    UpstreamError,
    UpstreamQuotaExhausted,
    UpstreamRejected,
)
from bot.models import CodeRequest, LineColor, Provider
from bot.sandbox import SANDBOX_APP_NAME, SANDBOX_APPID, SANDBOX_HOME_PAGE, SANDBOX_SECRET, qr
from bot.upstream.tokens import EXPIRY_MARGIN, StableTokenSource
from bot.upstream.wechat import PATHS, WeChatClient
from tests.conftest import FakeClock, Site, new_http

A, B, C = "/wxa/getwxacode", "/wxa/getwxacodeunlimit", "/cgi-bin/wxaapp/createwxaqrcode"
SHORT = "/wxa/genwxashortlink"
TOKEN = "/cgi-bin/stable_token"
CJK = re.compile(r"[\u4e00-\u9fff]")
Scan = Callable[[bytes], qr.ScannedCode]


def body_of(site: Site, path: str, index: int = -1) -> dict[str, Any]:
    return dict(json.loads(site.log.to(path)[index].body))


def assert_bilingual(error: UpstreamError) -> None:
    assert error.zh and CJK.search(error.zh), error.zh
    assert error.en and not CJK.search(error.en), error.en
    assert str(error) == f"{error.zh}\n{error.en}"


# ---- A / B / C with every parameter -------------------------------------------------------------


async def test_a_code_with_every_parameter(wechat: Site, wechat_client: WeChatClient, scan: Scan) -> None:
    path = "pages/detail/detail?id=42&from=poster"
    result = await wechat_client.a_code(path, width=600, auto_color=False, line_color=LineColor(r=255, g=10, b=0),
                                        is_hyaline=True, env_version="trial")
    assert result.provider is Provider.WECHAT and result.mime == "image/png" and result.num_used == 1
    code = scan(result.image or b"")
    assert (code.appid, code.kind, code.page, code.scene) == (SANDBOX_APPID, "A", path, None)
    assert 540 <= Image.open(io.BytesIO(result.image or b"")).width <= 600
    assert body_of(wechat, A) == {"path": path, "width": 600, "auto_color": False, "is_hyaline": True,
                                  "env_version": "trial", "line_color": {"r": 255, "g": 10, "b": 0}}
    [call] = wechat.log.to(A)
    assert call.method == "POST" and call.headers["content-type"] == "application/json"
    assert re.fullmatch(r"access_token=[^&]{32,}", call.query)


async def test_a_code_line_color_is_left_out_with_auto_color(wechat: Site, wechat_client: WeChatClient,
                                                              scan: Scan) -> None:
    result = await wechat_client.a_code("pages/a/a", auto_color=True, line_color=LineColor(r=1, g=2, b=3))
    assert result.mime == "image/jpeg" and scan(result.image or b"").page == "pages/a/a"
    assert "line_color" not in body_of(wechat, A)


async def test_b_code_with_every_parameter(wechat: Site, wechat_client: WeChatClient, scan: Scan) -> None:
    wechat.emu.pages = {SANDBOX_HOME_PAGE}  # the page is not released: only check_path=false lets it through
    result = await wechat_client.b_code("id=42&u=7", "pages/new/new", check_path=False, width=280, auto_color=False,
                                        line_color=LineColor(r=0, g=128, b=255), is_hyaline=False,
                                        env_version="develop")
    code = scan(result.image or b"")
    assert (code.kind, code.page, code.scene) == ("B", "pages/new/new", "id=42&u=7")
    assert result.mime == "image/jpeg" and result.num_used is None
    assert body_of(wechat, B) == {"scene": "id=42&u=7", "page": "pages/new/new", "check_path": False, "width": 280,
                                  "auto_color": False, "is_hyaline": False, "env_version": "develop",
                                  "line_color": {"r": 0, "g": 128, "b": 255}}


async def test_b_code_without_page_opens_the_home_page(wechat: Site, wechat_client: WeChatClient, scan: Scan) -> None:
    result = await wechat_client.b_code("x", is_hyaline=True)
    assert result.mime == "image/png"
    assert scan(result.image or b"") == qr.ScannedCode(SANDBOX_APPID, "B", SANDBOX_HOME_PAGE, "x")
    assert "page" not in body_of(wechat, B)


async def test_c_code_with_every_parameter(wechat: Site, wechat_client: WeChatClient, scan: Scan) -> None:
    result = await wechat_client.c_code("pages/a/a?x=1", width=1280)
    assert result.mime == "image/jpeg" and scan(result.image or b"").kind == "C"
    assert body_of(wechat, C) == {"path": "pages/a/a?x=1", "width": 1280}
    assert wechat.emu.ac_used() == 1


async def test_make_dispatches_every_type_from_a_request(wechat: Site, wechat_client: WeChatClient, scan: Scan) -> None:
    requests = {
        "A": {"type": "A", "page": "pages/a/a?k=v", "width": 500, "transparent": True, "env_version": "trial"},
        "B": {"type": "B", "page": "pages/b/b", "scene": "k=v", "check_path": False,
              "line_color": {"r": 9, "g": 9, "b": 9}},
        "C": {"type": "C", "page": "pages/c/c?k=v", "width": 300},
    }
    for kind, data in requests.items():
        request = CodeRequest.parse(data)
        result = await wechat_client.make(request)
        code = scan(result.image or b"")
        assert code.kind == kind and code.page == request.page and code.scene == request.scene
    assert body_of(wechat, A)["is_hyaline"] is True and body_of(wechat, A)["env_version"] == "trial"
    assert body_of(wechat, B)["line_color"] == {"r": 9, "g": 9, "b": 9}
    link = await wechat_client.make(CodeRequest.parse({"type": "shortlink", "page": "pages/a/a?x=1", "title": "活动"}))
    assert link.link and link.link.startswith(f"#小程序://{SANDBOX_APP_NAME}/活动/") and link.image is None
    assert wechat.log.count(TOKEN) == 1


# ---- Short Link ---------------------------------------------------------------------------------


async def test_short_link_with_every_parameter(wechat: Site, wechat_client: WeChatClient) -> None:
    result = await wechat_client.short_link("pages/goods/goods?id=9", "一二三四五六七八九十一二三四五六七八九十多出来", True)
    assert result.link and re.fullmatch(
        rf"#小程序://{SANDBOX_APP_NAME}/一二三四五六七八九十一二三四五六七八九十\.\.\./[A-Za-z0-9]{{15}}", result.link)
    assert body_of(wechat, SHORT) == {"page_url": "pages/goods/goods?id=9", "is_permanent": True,
                                      "page_title": "一二三四五六七八九十一二三四五六七八九十多出来"}
    assert wechat.emu.shortlinks[-1]["is_permanent"] is True
    plain = await wechat_client.short_link("pages/index/index")
    assert plain.link and plain.link.startswith(f"#小程序://{SANDBOX_APP_NAME}/") and plain.link.count("/") == 3
    assert body_of(wechat, SHORT) == {"page_url": "pages/index/index", "is_permanent": False}


# ---- tokens: stable_token normal mode, single flight, refresh once ---------------------------------


async def test_200_concurrent_callers_on_a_cold_cache_make_one_token_request(
    wechat: Site, wechat_client: WeChatClient,
) -> None:
    results = await asyncio.gather(*(wechat_client.short_link(f"pages/p/p?i={i}") for i in range(200)))
    assert all(r.link for r in results)
    assert wechat.log.count(TOKEN) == 1 and wechat.emu.calls[TOKEN] == 1
    assert wechat.emu.calls[SHORT] == 200 and wechat_client.tokens.fetches == 1
    assert body_of(wechat, TOKEN) == {"grant_type": "client_credential", "appid": SANDBOX_APPID,
                                      "secret": SANDBOX_SECRET, "force_refresh": False}
    assert "/cgi-bin/token" not in wechat.emu.calls  # never the classic, token-killing endpoint
    tokens = {r.query for r in wechat.log.to(SHORT)}
    assert len(tokens) == 1


async def test_a_failing_token_fetch_is_shared_too(wechat: Site, http: Any) -> None:
    client = WeChatClient(http, wechat.url, SANDBOX_APPID, SecretStr("wrong-secret"))
    results = await asyncio.gather(*(client.b_code(f"{i}") for i in range(200)), return_exceptions=True)
    assert all(isinstance(r, ConfigError) and r.code == 40125 for r in results)
    assert wechat.emu.calls[TOKEN] == 1 and wechat.emu.calls[B] == 0


async def test_one_cancelled_caller_does_not_cancel_the_shared_fetch(wechat: Site, wechat_client: WeChatClient) -> None:
    wechat.emu.latency = 0.2
    first = asyncio.ensure_future(wechat_client.tokens.get())
    second = asyncio.ensure_future(wechat_client.tokens.get())
    await asyncio.sleep(0.05)
    first.cancel()
    token = await second
    assert token and wechat.emu.calls[TOKEN] == 1
    assert await wechat_client.tokens.get() == token


async def test_token_is_refreshed_before_it_expires(wechat: Site, http: Any, clock: FakeClock) -> None:
    client = WeChatClient(http, wechat.url, SANDBOX_APPID, SecretStr(SANDBOX_SECRET))
    client.tokens = StableTokenSource(http, wechat.url, SANDBOX_APPID, SecretStr(SANDBOX_SECRET), clock=clock)
    first = await client.tokens.get()
    clock.advance(7200 - EXPIRY_MARGIN - 1)
    assert await client.tokens.get() == first and wechat.emu.calls[TOKEN] == 1
    clock.advance(1)
    second = await client.tokens.get()
    assert second != first and wechat.emu.calls[TOKEN] == 2  # the emulator rotated it in its last 5 minutes
    await client.short_link("pages/a/a")
    assert wechat.emu.calls[SHORT] == 1


@pytest.mark.parametrize("how", ["expired", "revoked"])
async def test_a_token_refused_upstream_is_refreshed_once_and_the_call_retried(
    wechat: Site, wechat_client: WeChatClient, clock: FakeClock, how: str, scan: Scan,
) -> None:
    token = await wechat_client.tokens.get()
    if how == "expired":
        clock.advance(7201)  # WeChat's clock only: the client still believes in its token → 42001
    else:
        wechat.emu.tokens.revoke(token)  # → 40001
    result = await wechat_client.b_code("k=v")
    assert scan(result.image or b"").scene == "k=v"
    assert wechat.emu.calls[B] == 2 and wechat.emu.calls[TOKEN] == 2
    assert await wechat_client.tokens.get() != token


async def test_many_callers_refused_at_once_share_one_refresh(wechat: Site, wechat_client: WeChatClient) -> None:
    wechat.emu.tokens.revoke(await wechat_client.tokens.get())
    results = await asyncio.gather(*(wechat_client.short_link(f"pages/p/p?i={i}") for i in range(50)))
    assert all(r.link for r in results)
    assert wechat.emu.calls[TOKEN] == 2  # compare-and-swap invalidation: one refresh, not fifty


@pytest.mark.parametrize("errcode", [40001, 40014, 42001, 41001])
async def test_a_token_error_on_every_call_is_refreshed_once_never_looped(
    wechat: Site, wechat_client: WeChatClient, errcode: int,
) -> None:
    wechat.emu.inject(errcode, times=1000)
    with pytest.raises(TokenInvalid) as caught:
        await wechat_client.a_code("pages/a/a")
    assert caught.value.code == errcode
    assert_bilingual(caught.value)
    assert wechat.emu.calls[A] == 2 and wechat.emu.calls[TOKEN] == 2
    with pytest.raises(TokenInvalid):
        await wechat_client.short_link("pages/a/a")
    assert wechat.emu.calls[SHORT] == 2 and wechat.emu.calls[TOKEN] == 4


@pytest.mark.parametrize(("appid", "secret", "errcode"), [
    (SANDBOX_APPID, "wrong-secret", 40125),
    ("wxnotanapp000001", SANDBOX_SECRET, 40013),
    ("", SANDBOX_SECRET, 41002),
    (SANDBOX_APPID, "", 41004),
])
async def test_bad_credentials_are_config_errors_without_retry(
    wechat: Site, http: Any, appid: str, secret: str, errcode: int,
) -> None:
    client = WeChatClient(http, wechat.url, appid, SecretStr(secret))
    with pytest.raises(ConfigError) as caught:
        await client.c_code("pages/a/a")
    assert caught.value.code == errcode and caught.value.provider == "wechat"
    assert_bilingual(caught.value)
    assert wechat.emu.calls[TOKEN] == 1 and wechat.emu.calls[C] == 0


async def test_token_endpoint_busy_is_retried_and_rate_limit_is_not(wechat: Site, wechat_client: WeChatClient,
                                                                    http: Any) -> None:
    wechat.emu.inject(-1, times=2, path=TOKEN)
    assert await wechat_client.tokens.get()
    assert wechat.emu.calls[TOKEN] == 3
    fresh = StableTokenSource(http, wechat.url, SANDBOX_APPID, SecretStr(SANDBOX_SECRET))
    wechat.emu.inject(45011, times=5, path=TOKEN)
    with pytest.raises(RateLimited):
        await fresh.get()
    assert wechat.emu.calls[TOKEN] == 4


# ---- every errcode → a typed, bilingual error ---------------------------------------------------

REFRESHED = {code for code, (cls, _, _) in messages.WECHAT.items() if cls is TokenInvalid}
PLAIN = sorted(code for code in messages.WECHAT if code not in REFRESHED and code != -1)


@pytest.mark.parametrize("errcode", PLAIN)
async def test_every_errcode_in_the_table_is_typed_bilingual_and_not_retried(
    wechat: Site, wechat_client: WeChatClient, errcode: int,
) -> None:
    cls, zh, en = messages.WECHAT[errcode]
    if errcode == 45009:  # on A it is the daily limit, with its own words (test_real_wechat.py)
        zh, en = messages.DAILY_RATE
    wechat.emu.inject(errcode, times=3, path=A)
    with pytest.raises(UpstreamError) as caught:
        await wechat_client.a_code("pages/a/a")
    error = caught.value
    assert type(error) is cls and error.code == errcode and (error.zh, error.en) == (zh, en)
    assert " rid: " in error.raw  # WeChat's own errmsg is kept for the logs
    assert_bilingual(error)
    assert wechat.emu.calls[A] == 1


async def test_an_unknown_errcode_keeps_wechats_words(wechat_client: WeChatClient, wechat: Site) -> None:
    wechat.emu.inject(61234, errmsg="something new")
    with pytest.raises(UpstreamRejected) as caught:
        await wechat_client.c_code("pages/a/a")
    assert caught.value.code == 61234 and "something new" in caught.value.en and "61234" in caught.value.zh


async def test_busy_minus_one_is_retried_with_backoff_then_succeeds(
    wechat: Site, wechat_client: WeChatClient, scan: Scan,
) -> None:
    wechat.emu.inject(-1, times=2, path=B)
    result = await wechat_client.b_code("x=1")
    assert scan(result.image or b"").scene == "x=1" and wechat.emu.calls[B] == 3
    gaps = [b.started - a.started for a, b in zip(wechat.log.to(B), wechat.log.to(B)[1:], strict=False)]
    assert 0.1 <= gaps[0] and 0.2 <= gaps[1] < 1.0  # jittered, growing, bounded


async def test_busy_forever_gives_up_after_three_calls(wechat: Site, wechat_client: WeChatClient) -> None:
    wechat.emu.inject(-1, times=100)
    started = time.monotonic()
    with pytest.raises(UpstreamBusy) as caught:
        await wechat_client.short_link("pages/a/a")
    assert caught.value.code == -1 and caught.value.retryable
    assert wechat.emu.calls[SHORT] == 3 and time.monotonic() - started < 1.5
    assert_bilingual(caught.value)


async def test_timeouts_are_retried_with_bounded_backoff(wechat: Site, scan: Scan) -> None:
    async with new_http(timeout=0.4) as http:
        client = WeChatClient(http, wechat.url, SANDBOX_APPID, SecretStr(SANDBOX_SECRET))
        await client.tokens.get()
        wechat.emu.latency = 1.0
        started = time.monotonic()
        with pytest.raises(UpstreamBusy) as caught:
            await client.c_code("pages/a/a")
        assert caught.value.code == "network" and "timeout" in caught.value.en
        assert wechat.emu.calls[C] == 3 and time.monotonic() - started < 3.0

        # One slow answer, then WeChat is quick again: the retry brings the code.
        wechat.emu.reset_counts()
        task = asyncio.ensure_future(client.c_code("pages/b/b"))
        while wechat.emu.calls[C] == 0:
            await asyncio.sleep(0.005)
        wechat.emu.latency = 0
        result = await task
        assert scan(result.image or b"").page == "pages/b/b" and wechat.emu.calls[C] == 2


async def test_45009_is_never_retried(wechat: Site, wechat_client: WeChatClient) -> None:
    for call, path in ((wechat_client.a_code("pages/a/a"), A), (wechat_client.b_code("s"), B),
                       (wechat_client.short_link("pages/a/a"), SHORT)):
        wechat.emu.inject(45009, times=5, path=path)
        with pytest.raises(RateLimited) as caught:
            await call
        assert caught.value.code == 45009 and wechat.emu.calls[path] == 1
    assert "Short Link" in caught.value.en and "短链" in caught.value.zh
    assert wechat.emu.calls[TOKEN] == 1


# ---- the emulator's own rules, not injected: the error each real situation gives -------------------


async def test_45029_when_the_a_and_c_lifetime_cap_is_reached(wechat: Site, wechat_client: WeChatClient,
                                                               scan: Scan) -> None:
    wechat.emu.ac_cap = 1
    first = await wechat_client.a_code("pages/a/a")
    with pytest.raises(UpstreamQuotaExhausted) as caught:
        await wechat_client.c_code("pages/b/b")
    assert caught.value.code == 45029 and "B" in caught.value.en and "100,000" in caught.value.en
    again = await wechat_client.a_code("pages/a/a")  # the same parameters cost nothing again
    assert scan(again.image or b"") == scan(first.image or b"") and again.num_used == 1
    assert wechat.emu.calls[C] == 1


async def test_41030_for_a_page_the_released_app_lacks(wechat: Site, wechat_client: WeChatClient) -> None:
    wechat.emu.pages = {SANDBOX_HOME_PAGE}
    with pytest.raises(UpstreamRejected) as caught:
        await wechat_client.b_code("k=v", "pages/missing/missing")
    assert caught.value.code == 41030 and "trial/develop" in caught.value.en
    assert (await wechat_client.b_code("k=v", "pages/missing/missing", check_path=False)).image
    assert wechat.emu.calls[B] == 2


@pytest.mark.parametrize(("scene", "errcode"), [("", 40169), ("x" * 33, 40169), ("id=中文", 40129), ("a%20b", 40129)])
async def test_40169_and_40129_for_bad_scenes(wechat: Site, wechat_client: WeChatClient, scene: str,
                                              errcode: int) -> None:
    with pytest.raises(UpstreamRejected) as caught:
        await wechat_client.b_code(scene)
    assert caught.value.code == errcode and "scene" in caught.value.en
    assert wechat.emu.calls[B] == 1


@pytest.mark.parametrize(("kwargs", "errcode"), [
    ({"path": "p" * 1025}, 40159),
    ({"path": "pages/a/a?scancode_time=1"}, 85096),
    ({"path": "pages/a/a", "width": 100}, 40189),
    ({"path": "pages/a/a", "env_version": "beta"}, 40097),
])
async def test_a_code_rule_errors(wechat: Site, wechat_client: WeChatClient, kwargs: dict[str, Any],
                                  errcode: int) -> None:
    with pytest.raises(UpstreamRejected) as caught:
        await wechat_client.a_code(**kwargs)
    assert caught.value.code == errcode
    assert_bilingual(caught.value)


async def test_45009_from_the_daily_and_per_minute_caps(wechat: Site, wechat_client: WeChatClient) -> None:
    wechat.emu.a_per_day = 1
    wechat.emu.b_per_minute = 2
    await wechat_client.a_code("pages/a/a")
    with pytest.raises(RateLimited):
        await wechat_client.a_code("pages/other/other")
    await wechat_client.b_code("1")
    await wechat_client.b_code("2")
    with pytest.raises(RateLimited) as caught:
        await wechat_client.b_code("3")
    assert "next minute" in caught.value.en
    assert (wechat.emu.calls[A], wechat.emu.calls[B]) == (2, 3)


@pytest.mark.parametrize(("setup", "call", "errcode", "cls"), [
    ({"pages": {SANDBOX_HOME_PAGE}}, ("pages/gone/gone", None, False), 40066, UpstreamRejected),
    ({}, ("pages/a/a", "casino night", False), 40225, UpstreamRejected),
    ({"shortlink_permanent_cap": 0}, ("pages/a/a", None, True), 85400, UpstreamQuotaExhausted),
    ({"shortlink_per_day": 0}, ("pages/a/a", None, False), 45009, RateLimited),
    ({"shortlink_allowed": False}, ("pages/a/a", None, False), 43104, ConfigError),
])
async def test_short_link_errors(wechat: Site, wechat_client: WeChatClient, setup: dict[str, Any],
                                 call: tuple[str, str | None, bool], errcode: int, cls: type[UpstreamError]) -> None:
    for knob, value in setup.items():
        setattr(wechat.emu, knob, value)
    with pytest.raises(cls) as caught:
        await wechat_client.short_link(*call)
    assert type(caught.value) is cls and caught.value.code == errcode
    assert_bilingual(caught.value)
    assert wechat.emu.calls[SHORT] == 1


def test_every_code_path_is_the_documented_one() -> None:
    assert {kind.value: path for kind, path in PATHS.items()} == {
        "A": A, "B": B, "C": C, "shortlink": SHORT, "urllink": "/wxa/generate_urllink", "scheme": "/wxa/generatescheme"}
