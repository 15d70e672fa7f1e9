"""The GrowingIO emulator over real loopback HTTP: auth, validation, links, qrCode, limits."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
import zxingcpp
from PIL import Image

from bot.messages import gio_kind
from bot.sandbox import (
    GIO_ALIP_PRODUCT_ID,
    GIO_CLIENT_ID,
    GIO_PRODUCT_ID,
    GIO_PROJECT_UID,
    GIO_TOKEN,
    SANDBOX_APPID,
    qr,
)
from bot.sandbox.growingio import GrowingIOEmulator
from bot.sandbox.server import ServerThread
from bot.sandbox.wechat import WeChatEmulator
from tests.conftest import FakeClock

META = f"/api/v1/projects/{GIO_PROJECT_UID}/meta/"
HEADERS = {"X-Client-Id": GIO_CLIENT_ID, "Authorization": GIO_TOKEN}


class Gio:
    def __init__(self, emu: GrowingIOEmulator, client: httpx.Client, raw: httpx.Client, clock: FakeClock) -> None:
        self.emu, self.client, self.raw, self.clock = emu, client, raw, clock

    def link(self, **overrides: Any) -> httpx.Response:
        body = {"name": "link-001", "productId": GIO_PRODUCT_ID, "redirectUrl": "pages/list/list",
                "campaignId": "SbxCmp01", "channelId": "SbxChn01", "buildQrCode": True, **overrides}
        return self.client.post("minplinks", json={k: v for k, v in body.items() if v is not ...})


@pytest.fixture
def gio_factory() -> Iterator[Callable[..., Gio]]:
    with ExitStack() as stack:

        def make(**knobs: Any) -> Gio:
            clock = FakeClock()
            knobs.setdefault("rate_per_second", None)  # a frozen clock would trip it; tested on its own
            emu = GrowingIOEmulator(clock=clock, seed=7, **knobs)
            server = stack.enter_context(ServerThread(emu.app))
            client = stack.enter_context(httpx.Client(base_url=server.url + META, headers=HEADERS, timeout=10))
            raw = stack.enter_context(httpx.Client(base_url=server.url, timeout=10))
            return Gio(emu, client, raw, clock)

        yield make


@pytest.fixture
def gio(gio_factory: Callable[..., Gio]) -> Gio:
    return gio_factory()


def error_codes(response: httpx.Response, status: int = 400) -> list[str]:
    """What each refusal is about, read from its words: GrowingIO documents no codes for these endpoints,
    so the emulator's items all carry the one generic code it does document (bot/sandbox/_gio_rules.py)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message", "errors"} and isinstance(body["message"], str) and body["message"]
    assert {e["code"] for e in body["errors"]} <= {"bad_request", "forbidden", "rate_limited", "not_found",
                                                    "method_not_allowed", "service_unavailable", "request_timeout"}
    return [gio_kind(status, e["message"]) or e["code"] for e in body["errors"]]


def scan(content: bytes) -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(content)))
    assert len(found) == 1
    return found[0].text


# ---- read endpoints ----------------------------------------------------------------------------


def test_products_are_seeded(gio: Gio) -> None:
    products = gio.client.get("products").json()
    by_id = {p["id"]: p for p in products}
    assert by_id[GIO_PRODUCT_ID]["platform"] == "minp"
    assert by_id[GIO_PRODUCT_ID]["spn"] == SANDBOX_APPID
    assert by_id[GIO_ALIP_PRODUCT_ID]["platform"] == "alip"
    for product in products:
        assert set(product) == {"id", "name", "displayName", "activated", "spn", "urlSchema", "platform", "createdAt"}


def test_campaigns_and_channels_are_seeded(gio: Gio) -> None:
    campaigns = {c["name"]: c for c in gio.client.get("campaigns").json()}
    assert {"双十一推广", "新品上市", "spring-sale"} <= set(campaigns)
    assert campaigns["双十一推广"]["productId"] == GIO_PRODUCT_ID
    channels = gio.client.get("channels").json()
    assert {"id": "jinritoutiao", "name": "今日头条"} in channels
    assert {"二维码推广", "线下地推", "wechat-moments"} <= {c["name"] for c in channels}
    assert all(set(c) == {"id", "name"} for c in channels)


# ---- auth --------------------------------------------------------------------------------------


def test_missing_or_unknown_token_is_401(gio: Gio) -> None:
    for headers in ({"X-Client-Id": GIO_CLIENT_ID}, {**HEADERS, "Authorization": "nope"}):
        response = gio.raw.get(META + "products", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"message": "Unauthorized", "errors": []}


def test_token_prefix_is_accepted(gio: Gio) -> None:
    response = gio.raw.get(META + "products", headers={**HEADERS, "Authorization": f"Token {GIO_TOKEN}"})
    assert response.status_code == 200


def test_wrong_client_id_is_403_and_a_missing_one_only_under_the_older_rule(gio: Gio,
                                                                           gio_factory: Callable[..., Gio]) -> None:
    assert gio.raw.get(META + "products", headers={**HEADERS, "X-Client-Id": "other"}).status_code == 403
    # The current document needs only Authorization.
    assert gio.raw.get(META + "products", headers={"Authorization": GIO_TOKEN}).status_code == 200
    older = gio_factory(require_client_id=True)
    assert error_codes(older.raw.get(META + "products", headers={"Authorization": GIO_TOKEN}), 403) == ["forbidden"]


def test_unknown_project_is_404(gio: Gio) -> None:
    response = gio.raw.get("/api/v1/projects/nope/meta/products", headers=HEADERS)
    assert error_codes(response, 404) == ["not_found"]


def test_several_tokens_may_coexist(gio_factory: Callable[..., Gio]) -> None:
    gio = gio_factory(tokens={"t-one", "t-two"})
    for token in ("t-one", "t-two"):
        assert gio.raw.get(META + "channels", headers={**HEADERS, "Authorization": token}).status_code == 200
    assert gio.client.get("channels").status_code == 401


# ---- campaigns and channels --------------------------------------------------------------------


def test_create_campaign_then_list_it(gio: Gio) -> None:
    created = gio.client.post("campaigns", json={"name": "年货节/2025_a-b", "productId": GIO_PRODUCT_ID}).json()
    assert re.fullmatch(r"[A-Za-z0-9]{8}", created["id"])
    assert created == {"id": created["id"], "name": "年货节/2025_a-b", "productId": GIO_PRODUCT_ID}
    assert created in gio.client.get("campaigns").json()
    bare = gio.client.post("campaigns", json={"name": "no-product"}).json()
    assert "productId" not in bare


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "双十一推广"}, "duplicate_name"),
        ({"name": "x" * 51}, "name_too_long"),
        ({"name": "有 空格"}, "invalid_name"),
        ({"name": "a,b"}, "invalid_name"),
        ({"name": "abc\n"}, "invalid_name"),
        ({"name": "促销！"}, "invalid_name"),
        ({}, "required"),
        ({"name": ""}, "required"),
        ({"name": 5}, "bad_request"),
        ({"name": "ok", "productId": "zzzzzzzz"}, "unknown_product"),
    ],
)
def test_campaign_validation(gio: Gio, body: dict[str, Any], code: str) -> None:
    assert error_codes(gio.client.post("campaigns", json=body)) == [code]


def test_name_of_exactly_fifty_characters_is_fine(gio: Gio) -> None:
    assert gio.client.post("campaigns", json={"name": "活" * 50}).status_code == 200


def test_channel_names_are_unique_including_system_channels(gio: Gio) -> None:
    response = gio.client.post("channels", json={"name": "今日头条"})
    assert error_codes(response) == ["duplicate_name"]
    assert response.json()["errors"][0]["message"].startswith("name: ")
    created = gio.client.post("channels", json={"name": "朋友圈广告"}).json()
    assert set(created) == {"id", "name"}
    assert error_codes(gio.client.post("channels", json={"name": "朋友圈广告"})) == ["duplicate_name"]


def test_body_that_is_not_a_json_object_is_400(gio: Gio) -> None:
    assert error_codes(gio.client.post("channels", content=b"name=x")) == ["bad_request"]
    assert error_codes(gio.client.post("channels", json=["x"])) == ["bad_request"]


def test_unknown_resource_and_method(gio: Gio) -> None:
    assert gio.client.get("dashboards").status_code == 404
    assert gio.client.post("products", json={}).status_code == 405


# ---- minplinks ---------------------------------------------------------------------------------


def test_link_object_matches_the_seed_shape(gio: Gio) -> None:
    link = gio.link(utmMedium="广告媒介", comments="这是注释").json()
    assert list(link) == [
        "id", "linkId", "name", "projectId", "spn", "trackingUrl", "redirectUrl", "campaignId", "campaignName",
        "channelId", "channelName", "utmMedium", "utmContent", "utmTerm", "comments", "qrCode", "status",
        "creatorId", "creatorName", "updaterId", "updaterName", "createdAt", "updatedAt",
    ]
    assert link["id"] == link["linkId"] and re.fullmatch(r"[A-Za-z0-9]{8}", link["id"])
    assert link["projectId"] == GIO_PROJECT_UID
    assert link["spn"] == SANDBOX_APPID
    assert link["trackingUrl"] == f"pages/list/list?aid={link['id']}"
    assert (link["campaignName"], link["channelName"]) == ("双十一推广", "二维码推广")
    assert (link["utmMedium"], link["utmContent"], link["utmTerm"], link["comments"]) == ("广告媒介", None, None, "这是注释")
    assert link["status"] == "activated"
    assert link["createdAt"] == link["updatedAt"] == 1_700_000_000_000
    assert re.fullmatch(
        r"http://127\.0\.0\.1:\d+/buckets/uploads/files/\d+/wxcode/A/1700000000000/wxcode\.jpg"
        r"\?sign=[A-Za-z0-9%]+&expires=1700000300000",
        link["qrCode"],
    )
    assert gio.client.get("minplinks").json()[0]["id"] == link["id"]


def test_redirect_with_query_gets_ampersand_aid(gio: Gio) -> None:
    link = gio.link(redirectUrl="pages/detail/detail?sku=9").json()
    assert link["trackingUrl"] == f"pages/detail/detail?sku=9&aid={link['id']}"


def test_link_without_code_has_no_qrcode(gio: Gio) -> None:
    link = gio.link(buildQrCode=False).json()
    assert "qrCode" not in link


@pytest.mark.parametrize("kind", ["A", "C"])
def test_qrcode_downloads_the_code_of_the_tracking_url(gio: Gio, kind: str) -> None:
    link = gio.link(codeType=kind).json()
    assert f"/wxcode/{kind}/" in link["qrCode"]
    image = httpx.get(link["qrCode"])
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/jpeg"
    assert image.content[:3] == b"\xff\xd8\xff"
    assert scan(image.content) == qr.code_url(SANDBOX_APPID, kind, link["trackingUrl"])


def test_qrcode_url_expires_and_listing_re_signs(gio: Gio) -> None:
    url = gio.link().json()["qrCode"]
    gio.clock.advance(299)
    assert httpx.get(url).status_code == 200
    gio.clock.advance(1)
    expired = httpx.get(url)
    assert expired.status_code == 403
    assert "<Message>Request has expired</Message>" in expired.text
    fresh = gio.client.get("minplinks").json()[0]["qrCode"]
    assert fresh != url and httpx.get(fresh).status_code == 200


def test_qrcode_with_bad_signature_or_unknown_file(gio: Gio) -> None:
    url = gio.link().json()["qrCode"]
    tampered_expiry = re.sub(r"expires=(\d+)", lambda m: f"expires={int(m.group(1)) + 1000}", url)
    assert httpx.get(tampered_expiry).status_code == 403
    assert "SignatureDoesNotMatch" in httpx.get(re.sub(r"sign=[^&]+", "sign=AAAA", url)).text
    assert httpx.get(url.replace("/files/", "/files/9").split("?")[0]).status_code == 404


def test_qr_ttl_is_a_knob(gio_factory: Callable[..., Gio]) -> None:
    gio = gio_factory(qr_ttl=10)
    url = gio.link().json()["qrCode"]
    assert url.endswith("expires=1700000010000")
    gio.clock.advance(10)
    assert httpx.get(url).status_code == 403


def test_missing_required_fields_are_all_reported(gio: Gio) -> None:
    response = gio.client.post("minplinks", json={})
    assert error_codes(response) == ["required"] * 6
    fields = [e["message"].split(":")[0] for e in response.json()["errors"]]
    assert sorted(fields) == sorted(["name", "productId", "redirectUrl", "campaignId", "channelId", "buildQrCode"])


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"productId": GIO_ALIP_PRODUCT_ID}, "unknown_product"),
        ({"productId": "zzzzzzzz"}, "unknown_product"),
        ({"campaignId": "zzzzzzzz"}, "unknown_campaign"),
        ({"channelId": "zzzzzzzz"}, "unknown_channel"),
        ({"redirectUrl": "https://example.com/x"}, "invalid_redirect_url"),
        ({"redirectUrl": "/pages/list/list"}, "invalid_redirect_url"),
        ({"redirectUrl": "pages//list"}, "invalid_redirect_url"),
        ({"redirectUrl": "pages/list list"}, "invalid_redirect_url"),
        ({"redirectUrl": "pages/list/list\n"}, "invalid_redirect_url"),
        ({"redirectUrl": "p/" + "a" * 114}, "url_too_long"),
        ({"redirectUrl": "pages/x?q=" + "中" * 36}, "url_too_long"),
        ({"name": "bad name"}, "invalid_name"),
        ({"name": "n" * 51}, "name_too_long"),
        ({"buildQrCode": "yes"}, "bad_request"),
        ({"buildQrCode": ...}, "required"),
        ({"codeType": "B"}, "bad_request"),
        ({"utmTerm": 3}, "bad_request"),
    ],
)
def test_link_validation(gio: Gio, overrides: dict[str, Any], code: str) -> None:
    assert error_codes(gio.link(**overrides)) == [code]
    assert gio.client.get("minplinks").json() == []


def test_tracking_url_of_exactly_128_bytes_is_fine(gio: Gio) -> None:
    redirect = "p/" + "a" * 113  # 115 + len("?aid=") + 8 == 128
    link = gio.link(redirectUrl=redirect).json()
    assert len(link["trackingUrl"].encode()) == 128


def test_link_names_are_unique(gio: Gio) -> None:
    assert gio.link(name="dup").status_code == 200
    assert error_codes(gio.link(name="dup")) == ["duplicate_name"]


# ---- limits, faults, latency -------------------------------------------------------------------


def test_rate_limit_is_ten_per_second_with_retry_after(gio_factory: Callable[..., Gio]) -> None:
    gio = gio_factory(rate_per_second=10)
    for _ in range(10):
        assert gio.client.get("channels").status_code == 200
    limited = gio.client.get("channels")
    assert error_codes(limited, 429) == ["rate_limited"]
    assert limited.headers["Retry-After"] == "1"
    gio.clock.advance(1)
    assert gio.client.get("channels").status_code == 200


def test_injected_fault_on_one_path(gio: Gio) -> None:
    gio.emu.inject(503, "service_unavailable", "服务维护中", times=2, path="minplinks")
    assert gio.client.get("channels").status_code == 200
    for _ in range(2):
        failed = gio.client.get("minplinks")
        assert failed.json() == {"message": "服务维护中", "errors": [{"code": "service_unavailable", "message": "服务维护中"}]}
        assert failed.status_code == 503 and failed.headers["Retry-After"] == "1"
    assert gio.client.get("minplinks").status_code == 200


def test_injected_fault_on_any_path(gio: Gio) -> None:
    gio.emu.inject(500, "request_timeout", "Request timeout in 5000 milliseconds")
    assert error_codes(gio.client.get("products"), 500) == ["request_timeout"]
    assert gio.client.get("products").status_code == 200


def test_latency_and_call_counter(gio: Gio) -> None:
    gio.emu.latency = 0.3
    started = time.monotonic()
    gio.client.get("products")
    assert time.monotonic() - started >= 0.3
    assert gio.emu.calls == {META + "products": 1}
    gio.emu.reset_counts()
    assert gio.emu.calls == {}


# ---- sharing WeChat's A+C quota ----------------------------------------------------------------


def test_links_spend_the_wechat_quota_of_the_spn(gio_factory: Callable[..., Gio]) -> None:
    wechat = WeChatEmulator(ac_cap=2)
    gio = gio_factory(wechat=wechat)
    assert gio.link(name="one", codeType="A").status_code == 200
    assert gio.link(name="two", codeType="C").status_code == 200
    assert gio.link(name="three", buildQrCode=False).status_code == 200  # no code, no quota
    assert wechat.ac_used(SANDBOX_APPID) == 2
    assert wechat.calls == {"/wxa/getwxacode": 1, "/cgi-bin/wxaapp/createwxaqrcode": 1}
    refused = gio.link(name="four")
    assert error_codes(refused) == ["quota_exceeded"]
    assert "45029" in refused.json()["message"]
    assert [x["name"] for x in gio.client.get("minplinks").json()] == ["one", "two", "three"]
    # A direct WeChat call for a new code is refused too: one quota for both paths.
    with pytest.raises(Exception, match="45029"):
        wechat.issue_code(SANDBOX_APPID, "A", "pages/other/other")


def test_wechat_failures_surface_as_gio_errors(gio_factory: Callable[..., Gio]) -> None:
    wechat = WeChatEmulator()
    gio = gio_factory(wechat=wechat)
    wechat.inject(-1, path="/wxa/getwxacode")
    assert error_codes(gio.link(name="busy"), 500) == ["bad_request"]
    wechat.inject(45009, path="/cgi-bin/wxaapp/createwxaqrcode")
    assert error_codes(gio.link(name="limited", codeType="C"), 400) == ["bad_request"]  # not the lifetime cap
    assert gio.link(name="busy").status_code == 200
