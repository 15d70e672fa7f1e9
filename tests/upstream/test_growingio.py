"""GrowingIOClient against the GrowingIO emulator on a real loopback port (the API:
https://help.growingio.com/v3/developer-manual/api-reference/query-productid/definition/minp-api;
the name rules: https://growingio.gitbook.io/old_docs/api/ads-tracking-api).

Products, campaigns, channels and minplinks with their auth headers; the whole create flow with
the code image downloaded in the same call and scanned; error answers mapped to typed errors; the
10/s limit measured where it counts (at the emulator); a timed-out create never made twice.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.errors import (
    ConfigError,
    FieldError,
    NotFound,
    RateLimited,
    UpstreamBusy,
    UpstreamQuotaExhausted,
    UpstreamRejected,
)
from bot.models import CodeRequest, Provider
from bot.sandbox import (
    GIO_ALIP_PRODUCT_ID,
    GIO_CLIENT_ID,
    GIO_PRODUCT_ID,
    GIO_PROJECT_UID,
    GIO_TOKEN,
    SANDBOX_APPID,
    qr,
)
from bot.upstream import Upstream
from bot.upstream import growingio as gio_module
from bot.upstream.growingio import GrowingIOClient, MinpLinkCreate
from bot.upstream.ratelimit import RateLimiter
from bot.upstream.wechat import WeChatClient
from tests.conftest import Site, new_http

META = f"/api/v1/projects/{GIO_PROJECT_UID}/meta/"
CJK = re.compile(r"[\u4e00-\u9fff]")
Scan = Callable[[bytes], qr.ScannedCode]


def gio_request(**extra: Any) -> CodeRequest:
    data = {"type": "A", "via": "gio", "page": "pages/list/list", "campaign": "双十一推广", "channel": "二维码推广",
            "name": "poster-001"}
    data.update(extra)
    return CodeRequest.parse(data)


def link(name: str = "poster-001", **extra: Any) -> MinpLinkCreate:
    data = {"name": name, "productId": GIO_PRODUCT_ID, "redirectUrl": "pages/list/list", "campaignId": "SbxCmp01",
            "channelId": "SbxChn01", "buildQrCode": True, "codeType": "A"}
    data.update(extra)
    return MinpLinkCreate(**data)


def client_for(http: httpx.AsyncClient, site: Site, *, token: str = GIO_TOKEN, client_id: str = GIO_CLIENT_ID,
               project: str = GIO_PROJECT_UID) -> GrowingIOClient:
    return GrowingIOClient(http, site.url, project, client_id, SecretStr(token))


# ---- the Open API, one endpoint at a time, with its headers --------------------------------------


async def test_products_campaigns_channels_carry_the_auth_headers(gio: Site, gio_client: GrowingIOClient) -> None:
    products = {p.id: p for p in await gio_client.products()}
    assert products[GIO_PRODUCT_ID].spn == SANDBOX_APPID and products[GIO_PRODUCT_ID].platform == "minp"
    assert products[GIO_ALIP_PRODUCT_ID].platform == "alip"
    assert {c.name for c in await gio_client.campaigns()} >= {"双十一推广", "新品上市", "spring-sale"}
    channels = {c.id: c.name for c in await gio_client.channels()}
    assert channels["jinritoutiao"] == "今日头条" and channels["SbxChn01"] == "二维码推广"
    assert [r.path for r in gio.log.requests] == [META + "products", META + "campaigns", META + "channels"]
    for request in gio.log.requests:
        assert request.method == "GET"
        assert request.headers["x-client-id"] == GIO_CLIENT_ID
        assert request.headers["authorization"] == GIO_TOKEN  # the raw token, no scheme prefix


async def test_lists_are_cached_briefly_and_fresh_on_demand(gio: Site, gio_client: GrowingIOClient) -> None:
    await gio_client.campaigns()
    await gio_client.campaigns()
    assert gio.log.count("campaigns") == 1
    await gio_client.campaigns(fresh=True)
    await gio_client.channels(fresh=True)
    assert gio.log.count("campaigns") == 2 and gio.log.count("channels") == 1


async def test_create_campaign_and_channel(gio: Site, gio_client: GrowingIOClient) -> None:
    await gio_client.campaigns()
    campaign = await gio_client.create_campaign("春季-上新/2025", GIO_PRODUCT_ID)
    assert re.fullmatch(r"[A-Za-z0-9]{8}", campaign.id) and campaign.productId == GIO_PRODUCT_ID
    assert campaign.id in {c.id for c in await gio_client.campaigns()}  # the cached list was dropped
    channel = await gio_client.create_channel("楼宇_电梯")
    assert channel.name == "楼宇_电梯" and channel.id in {c.id for c in await gio_client.channels()}
    [post_campaign] = gio.log.to("campaigns", "POST")
    assert json.loads(post_campaign.body) == {"name": "春季-上新/2025", "productId": GIO_PRODUCT_ID}
    assert post_campaign.headers["content-type"] == "application/json"
    assert json.loads(gio.log.to("channels", "POST")[0].body) == {"name": "楼宇_电梯"}


async def test_create_minplink_downloads_the_image_in_the_same_call(
    gio: Site, gio_client: GrowingIOClient, scan: Scan,
) -> None:
    created, image = await gio_client.create_minplink(link(utmMedium="poster", comments="一楼大厅"))
    assert image is not None and image.startswith(b"\xff\xd8\xff")
    assert created.trackingUrl == f"pages/list/list?aid={created.id}" and created.linkId == created.id
    assert created.campaignName == "双十一推广" and created.channelName == "二维码推广"
    code = scan(image)
    assert (code.appid, code.kind, code.page) == (SANDBOX_APPID, "A", created.trackingUrl)
    post, download = gio.log.requests
    assert post.method == "POST" and json.loads(post.body) == {
        "name": "poster-001", "productId": GIO_PRODUCT_ID, "redirectUrl": "pages/list/list",
        "campaignId": "SbxCmp01", "channelId": "SbxChn01", "buildQrCode": True, "codeType": "A",
        "utmMedium": "poster", "comments": "一楼大厅"}
    assert download.method == "GET" and download.path.endswith("/wxcode.jpg") and "sign=" in download.query
    assert created.qrCode and created.qrCode.startswith(gio.url)
    assert [x.name for x in await gio_client.minplinks()] == ["poster-001"]


async def test_link_without_code_downloads_nothing(gio: Site, gio_client: GrowingIOClient) -> None:
    created, image = await gio_client.create_minplink(link(buildQrCode=False))
    assert image is None and created.qrCode is None and gio.log.count("wxcode.jpg") == 0


# ---- the whole flow, as the core asks for it -------------------------------------------------------


async def test_make_a_code_end_to_end(gio: Site, wechat: Site, gio_client: GrowingIOClient, scan: Scan) -> None:
    result = await gio_client.make(gio_request(medium="海报", term="试用"), GIO_PRODUCT_ID)
    assert result.provider is Provider.GIO and result.mime == "image/jpeg" and result.image
    assert result.tracking_url == f"pages/list/list?aid={result.link_id}"
    assert (result.campaign_id, result.campaign_name) == ("SbxCmp01", "双十一推广")
    assert (result.channel_id, result.channel_name) == ("SbxChn01", "二维码推广")
    assert scan(result.image) == qr.ScannedCode(SANDBOX_APPID, "A", result.tracking_url, None)
    assert wechat.emu.ac_used() == 1  # GrowingIO spent the mini program's A+C quota
    body = json.loads(gio.log.to("minplinks", "POST")[0].body)
    assert (body["utmMedium"], body["utmTerm"], body["codeType"]) == ("海报", "试用", "A")
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in gio.log.requests] == [
        ("GET", "campaigns"), ("GET", "channels"), ("POST", "minplinks"), ("GET", "wxcode.jpg")]


async def test_make_a_c_code_creating_campaign_and_channel(gio: Site, gio_client: GrowingIOClient, scan: Scan) -> None:
    request = gio_request(type="C", campaign="新活动-2025", channel="社群", create_missing=True, name=None,
                          page="pages/item/item?id=7")
    result = await gio_client.make(request, GIO_PRODUCT_ID)
    assert scan(result.image or b"") == qr.ScannedCode(SANDBOX_APPID, "C", result.tracking_url or "", None)
    assert result.tracking_url == f"pages/item/item?id=7&aid={result.link_id}"
    assert result.campaign_name == "新活动-2025" and result.channel_name == "社群"
    assert json.loads(gio.log.to("campaigns", "POST")[0].body) == {"name": "新活动-2025", "productId": GIO_PRODUCT_ID}
    assert json.loads(gio.log.to("minplinks", "POST")[0].body)["name"] == request.suggested_name()


async def test_campaign_and_channel_resolve_by_id_name_or_case(gio_client: GrowingIOClient) -> None:
    assert (await gio_client.resolve_campaign("SbxCmp02", create=False, product_id=None)).name == "新品上市"
    assert (await gio_client.resolve_campaign("SPRING-SALE", create=False, product_id=None)).id == "SbxCmp03"
    assert (await gio_client.resolve_channel("weibo", create=False)).name == "微博"


async def test_unknown_campaign_names_the_closest(gio: Site, gio_client: GrowingIOClient) -> None:
    with pytest.raises(NotFound) as caught:
        await gio_client.make(gio_request(campaign="双十二推广"), GIO_PRODUCT_ID)
    assert caught.value.field == "campaign" and "双十一推广" in caught.value.zh and "create=yes" in caught.value.en
    assert gio.log.count("minplinks") == 0


# ---- errors: duplicate names, bad characters, unknown ids, auth ------------------------------------


@pytest.mark.parametrize(("create", "name", "code"), [
    # a campaign or channel that exists by that name is adopted instead (tests/upstream/test_growingio_documents.py)
    ("channel", "bad name!", "invalid_name"),
    ("campaign", "x" * 51, "name_too_long"),
    ("link", "poster-001", "duplicate_name"),
    ("link", "海报 001", "invalid_name"),
])
async def test_name_errors_are_typed_and_bilingual(gio_client: GrowingIOClient, create: str, name: str,
                                                   code: str) -> None:
    await gio_client.create_minplink(link("poster-001", buildQrCode=False))
    call = {"campaign": lambda: gio_client.create_campaign(name),
            "channel": lambda: gio_client.create_channel(name),
            # a namesake with another page: an identical re-create is adopted instead (see below)
            "link": lambda: gio_client.create_minplink(link(name, redirectUrl="pages/other/other"))}[create]
    with pytest.raises(UpstreamRejected) as caught:
        await call()
    error = caught.value
    assert error.provider == "gio" and error.code == code
    assert CJK.search(error.zh) and error.en and "400" in error.raw


@pytest.mark.parametrize(("field", "value", "code", "cls"), [
    ("campaignId", "NoSuchC1", "unknown_campaign", UpstreamRejected),
    ("channelId", "NoSuchC2", "unknown_channel", UpstreamRejected),
    ("productId", "NoSuchP1", "unknown_product", ConfigError),
    ("productId", GIO_ALIP_PRODUCT_ID, "unknown_product", ConfigError),
    ("redirectUrl", "https://example.com/x", "invalid_redirect_url", UpstreamRejected),
    ("redirectUrl", "pages/a/a?q=" + "x" * 110, "url_too_long", UpstreamRejected),
])
async def test_unknown_ids_and_bad_urls(gio: Site, gio_client: GrowingIOClient, field: str, value: str, code: str,
                                        cls: type[Exception]) -> None:
    with pytest.raises(cls) as caught:
        await gio_client.create_minplink(link(**{field: value}))
    assert type(caught.value) is cls and getattr(caught.value, "code", None) == code
    assert gio.emu.links == [] and gio.log.count("minplinks", "POST") == 1


@pytest.mark.parametrize(("kwargs", "status", "words"), [
    ({"token": "not-the-token"}, 401, "GIO_TOKEN"),
    ({"token": ""}, 401, "GIO_TOKEN"),
    ({"client_id": "someone-else"}, 403, "GIO_CLIENT_ID"),
    ({"project": "otherprj"}, 404, "GIO_PROJECT_UID"),
])
async def test_auth_failures_are_config_errors(gio: Site, http: httpx.AsyncClient, kwargs: dict[str, str],
                                               status: int, words: str) -> None:
    client = client_for(http, gio, **kwargs)
    for call in (client.products, client.channels, lambda: client.create_channel("x")):
        with pytest.raises(ConfigError) as caught:
            await call()
        assert caught.value.code == status and words in caught.value.en and words in caught.value.zh
    assert gio.emu.channels[-1]["name"] != "x"


async def test_a_5xx_is_busy(gio: Site, gio_client: GrowingIOClient) -> None:
    gio.emu.inject(500, "request_timeout", "Request timeout in 5000 milliseconds", path="products")
    with pytest.raises(UpstreamBusy) as caught:
        await gio_client.products()
    assert caught.value.code == 500 and caught.value.retryable


async def test_the_a_and_c_cap_behind_growingio_is_quota_exhausted(
    gio: Site, wechat: Site, gio_client: GrowingIOClient,
) -> None:
    wechat.emu.ac_cap = 0
    with pytest.raises(UpstreamQuotaExhausted) as caught:
        await gio_client.make(gio_request(), GIO_PRODUCT_ID)
    assert caught.value.code == "quota_exceeded" and "B" in caught.value.en
    assert gio.emu.links == []


async def test_429_waits_retry_after_once_then_gives_up(gio: Site, gio_client: GrowingIOClient) -> None:
    gio.emu.inject(429, "rate_limited", "请求过于频繁", path="channels")
    started = time.monotonic()
    assert await gio_client.channels()
    assert gio.log.count("channels") == 2 and 1.0 <= time.monotonic() - started < 2.0
    gio.emu.inject(429, "rate_limited", "请求过于频繁", times=5, path="campaigns")
    with pytest.raises(RateLimited) as caught:
        await gio_client.campaigns()
    assert caught.value.retry_after == 1.0 and caught.value.code == 429 and "10" in caught.value.en
    assert gio.log.count("campaigns") == 2


# ---- the 10/s limit, measured at the emulator --------------------------------------------------------


async def test_a_burst_of_30_stays_under_10_per_second_at_the_emulator(gio: Site, gio_client: GrowingIOClient) -> None:
    results = await asyncio.gather(*(gio_client.campaigns(fresh=True) for _ in range(30)))
    assert all(results)
    seen = sorted(r.started for r in gio.log.to("campaigns"))
    assert len(seen) == 30 and all(r.status == 200 for r in gio.log.requests)  # not one 429, not one retry
    for first, eleventh in zip(seen, seen[10:], strict=False):
        assert eleventh - first >= 1.0, "more than 10 requests reached GrowingIO within one second"
    assert seen[-1] - seen[0] >= 2.0


async def test_rate_limiter_keeps_a_sliding_window() -> None:
    now = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(10, clock=lambda: now[0], sleep=sleep)
    stamps = []
    for _ in range(35):
        async with limiter:
            stamps.append(now[0])
        now[0] += 0.01
    assert stamps[:10] == pytest.approx([i * 0.01 for i in range(10)])
    for first, eleventh in zip(stamps, stamps[10:], strict=False):
        assert eleventh - first >= 1.0
    assert stamps[-1] < 3.2 and all(0 < w <= 1.001 for w in waits)
    with pytest.raises(ValueError):
        RateLimiter(0)


async def test_rate_limiter_counts_a_request_from_when_it_ends() -> None:
    """A slot is held while a request is in flight, so slow requests cannot crowd the server's window."""
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds
        await asyncio.sleep(0)

    limiter = RateLimiter(2, clock=lambda: now[0], sleep=sleep)
    started: list[float] = []
    release = asyncio.Event()

    async def slow_request() -> None:
        async with limiter:
            started.append(now[0])
            await release.wait()

    first = [asyncio.ensure_future(slow_request()) for _ in range(2)]
    third = asyncio.ensure_future(slow_request())
    await asyncio.sleep(0.01)
    assert len(started) == 2 and not third.done()  # both slots are in flight: the third waits
    now[0] = 5.0
    release.set()
    await asyncio.gather(*first, third)
    assert started[2] >= 6.0  # one second after the first request *ended*, not after it began


# ---- a timed-out create is never made twice ---------------------------------------------------------


@pytest.fixture
def quick_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gio_module, "LOOKUP_DELAYS", (0.0, 0.4, 0.4, 0.4))


async def wait_for_post(site: Site) -> None:
    path = META + "minplinks"
    while site.emu.calls[path] == 0:
        await asyncio.sleep(0.002)


async def test_a_create_that_times_out_is_found_by_name_not_made_again(
    gio: Site, scan: Scan, quick_lookups: None,
) -> None:
    async with new_http(timeout=0.5) as http:
        client = client_for(http, gio)
        gio.emu.latency = 1.0  # longer than the client waits
        task = asyncio.ensure_future(client.create_minplink(link()))
        await wait_for_post(gio)
        gio.emu.latency = 0  # GrowingIO is slow only for that one create
        created, image = await task
    assert [x["id"] for x in gio.emu.links] == [created.id]
    assert gio.log.count("minplinks", "POST") == 1 and gio.log.count("minplinks", "GET") >= 1
    assert scan(image or b"").page == created.trackingUrl


async def test_resume_finds_the_link_an_earlier_attempt_left_behind(
    gio: Site, wechat: Site, scan: Scan, quick_lookups: None,
) -> None:
    async with new_http(timeout=0.3) as http:
        client = client_for(http, gio)
        await client.campaigns()
        await client.channels()
        gio.emu.latency = 1.0  # every answer now comes too late, lookups included
        with pytest.raises(UpstreamBusy):
            await client.make(gio_request(), GIO_PRODUCT_ID)
        deadline = time.monotonic() + 5
        while not gio.emu.links and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert len(gio.emu.links) == 1  # GrowingIO did create it, after the client gave up
        gio.emu.latency = 0
        posts = gio.log.count("minplinks", "POST")
        result = await client.make(gio_request(), GIO_PRODUCT_ID, resume=True)
    assert gio.log.count("minplinks", "POST") == posts == 1 and len(gio.emu.links) == 1
    assert result.link_id == gio.emu.links[0]["id"]
    assert scan(result.image or b"").page == result.tracking_url
    assert wechat.emu.ac_used() == 1


async def test_resume_creates_when_nothing_was_left_behind(gio: Site, gio_client: GrowingIOClient, scan: Scan) -> None:
    result = await gio_client.make(gio_request(name="fresh-one"), GIO_PRODUCT_ID, resume=True)
    assert gio.log.count("minplinks", "GET") == 1 and gio.log.count("minplinks", "POST") == 1
    assert scan(result.image or b"").page == result.tracking_url


async def test_an_expired_image_link_is_fetched_fresh_on_resume(gio: Site, gio_client: GrowingIOClient,
                                                                 scan: Scan) -> None:
    gio.emu.qr_ttl = 0  # the signed qrCode URL is dead on arrival
    with pytest.raises(UpstreamBusy) as caught:
        await gio_client.make(gio_request(), GIO_PRODUCT_ID)
    assert "expired" in caught.value.en and caught.value.code == 403
    gio.emu.qr_ttl = 300
    result = await gio_client.make(gio_request(), GIO_PRODUCT_ID, resume=True)
    assert len(gio.emu.links) == 1 and gio.log.count("minplinks", "POST") == 1
    assert scan(result.image or b"").page == result.tracking_url


# ---- the Upstream facade -------------------------------------------------------------------------------


async def test_upstream_picks_the_provider_and_the_product(
    gio: Site, wechat: Site, gio_client: GrowingIOClient, wechat_client: WeChatClient, scan: Scan,
) -> None:
    upstream = Upstream(wechat=wechat_client, gio=gio_client)
    assert [p.id for p in await upstream.mini_programs()] == [GIO_PRODUCT_ID]
    assert await upstream.product_id(SANDBOX_APPID) == GIO_PRODUCT_ID == await upstream.product_id(None)
    via_gio = await upstream.make(gio_request(app=SANDBOX_APPID))
    assert via_gio.provider is Provider.GIO and scan(via_gio.image or b"").page == via_gio.tracking_url
    direct = await upstream.make(CodeRequest.parse({"type": "B", "scene": "k=v"}))
    assert direct.provider is Provider.WECHAT and scan(direct.image or b"").scene == "k=v"
    with pytest.raises(NotFound):
        await upstream.product_id("wxsomeoneelse001")
    with pytest.raises(FieldError):
        await Upstream(wechat=None, gio=gio_client).make(CodeRequest.parse({"type": "B", "scene": "x"}))
    with pytest.raises(FieldError):
        await Upstream(wechat=wechat_client, gio=None).make(gio_request())
