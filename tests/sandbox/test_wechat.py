"""The WeChat emulator over real loopback HTTP: tokens, A/B/C codes, short links, knobs."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.sandbox import SANDBOX_APP_NAME, SANDBOX_APPID, SANDBOX_SECRET, qr
from bot.sandbox._wechat_codes import CodeRules, parse_code_request
from bot.sandbox.wechat import WeChatEmulator, WeChatError
from tests.conftest import FakeClock

A, B, C = "/wxa/getwxacode", "/wxa/getwxacodeunlimit", "/cgi-bin/wxaapp/createwxaqrcode"
SHORT = "/wxa/genwxashortlink"
JSON_TYPE = "application/json; encoding=utf-8"
RID = re.compile(r" rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$")
CREDS = {"grant_type": "client_credential", "appid": SANDBOX_APPID, "secret": SANDBOX_SECRET}


class Sandbox:
    """One running emulator plus a client talking to it."""

    def __init__(self, emu: WeChatEmulator, client: httpx.Client, clock: FakeClock) -> None:
        self.emu, self.client, self.clock = emu, client, clock

    def classic(self) -> str:
        return str(self.client.get("/cgi-bin/token", params=CREDS).json()["access_token"])

    def stable(self, force: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = self.client.post("/cgi-bin/stable_token", json={**CREDS, "force_refresh": force}).json()
        return body

    def call(self, path: str, body: Any = None, token: str | None = None, content: bytes | None = None) -> httpx.Response:
        token = token if token is not None else self.emu.issue_token()
        if content is not None:
            return self.client.post(path, params={"access_token": token}, content=content)
        return self.client.post(path, params={"access_token": token}, json=body)


def errcode(response: httpx.Response) -> int:
    """The errcode of a JSON error, after checking the error envelope is the documented one."""
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_TYPE
    body = response.json()
    assert set(body) == {"errcode", "errmsg"}
    assert RID.search(body["errmsg"]), body["errmsg"]
    return int(body["errcode"])


def scan(response: httpx.Response) -> qr.ScannedCode:
    image = Image.open(io.BytesIO(response.content))
    found = zxingcpp.read_barcodes(image)
    assert len(found) == 1
    return qr.parse_code_url(found[0].text)


# ---- tokens ------------------------------------------------------------------------------------


def test_classic_token_success_has_no_errcode(sb: Sandbox) -> None:
    response = sb.client.get("/cgi-bin/token", params=CREDS)
    assert response.headers["content-type"] == JSON_TYPE
    body = response.json()
    assert set(body) == {"access_token", "expires_in"}
    assert body["expires_in"] == 7200
    assert len(body["access_token"]) >= 100


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({**CREDS, "grant_type": "password"}, 40002),
        ({"appid": SANDBOX_APPID, "secret": SANDBOX_SECRET}, 40002),
        ({"grant_type": "client_credential", "secret": SANDBOX_SECRET}, 41002),
        ({**CREDS, "appid": "wxunknown"}, 40013),
        ({"grant_type": "client_credential", "appid": SANDBOX_APPID}, 41004),
        ({**CREDS, "secret": "wrong"}, 40125),
    ],
)
def test_classic_token_errors(sb: Sandbox, params: dict[str, str], code: int) -> None:
    assert errcode(sb.client.get("/cgi-bin/token", params=params)) == code


def test_new_classic_token_supersedes_the_old_one_after_grace(sb: Sandbox) -> None:
    first = sb.classic()
    second = sb.classic()
    assert first != second
    assert sb.call(B, {"scene": "x"}, first).headers["content-type"] == "image/jpeg"
    sb.clock.advance(299)
    assert sb.call(B, {"scene": "x"}, first).headers["content-type"] == "image/jpeg"
    sb.clock.advance(2)
    assert errcode(sb.call(B, {"scene": "x"}, first)) == 40001
    assert sb.call(B, {"scene": "x"}, second).headers["content-type"] == "image/jpeg"


def test_classic_token_expires(sb: Sandbox) -> None:
    token = sb.classic()
    sb.clock.advance(7199)
    assert sb.call(B, {"scene": "x"}, token).headers["content-type"] == "image/jpeg"
    sb.clock.advance(1)
    assert errcode(sb.call(B, {"scene": "x"}, token)) == 42001


def test_token_ttl_and_grace_are_knobs(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(token_ttl=60, grace=10)
    body = sb.client.get("/cgi-bin/token", params=CREDS).json()
    assert body["expires_in"] == 60
    sb.classic()
    sb.clock.advance(11)
    assert errcode(sb.call(B, {"scene": "x"}, body["access_token"])) == 40001


@pytest.mark.parametrize(
    ("token", "code"),
    [("", 41001), ("A" * 64, 40001), ("bad token!", 40014), ("abc", 40014), ("A" * 64 + "\n", 40014)],
)
def test_business_call_token_checks(sb: Sandbox, token: str, code: int) -> None:
    params = {"access_token": token} if token else {}
    assert errcode(sb.client.post(B, params=params, json={"scene": "x"})) == code


def test_stable_token_is_idempotent_with_remaining_lifetime(sb: Sandbox) -> None:
    first = sb.stable()
    assert first["expires_in"] == 7200
    sb.clock.advance(1000)
    again = sb.stable()
    assert again == {"access_token": first["access_token"], "expires_in": 6200}


def test_stable_token_rotates_in_the_last_five_minutes(sb: Sandbox) -> None:
    old = sb.stable()["access_token"]
    sb.clock.advance(7200 - 299)
    rotated = sb.stable()
    assert rotated["access_token"] != old
    assert rotated["expires_in"] == 7200
    assert sb.stable()["access_token"] == rotated["access_token"]
    # The old token is left to run out at its own expiry, not killed.
    assert sb.call(B, {"scene": "x"}, old).headers["content-type"] == "image/jpeg"
    sb.clock.advance(299)
    assert errcode(sb.call(B, {"scene": "x"}, old)) == 42001
    assert sb.call(B, {"scene": "x"}, rotated["access_token"]).headers["content-type"] == "image/jpeg"


def test_stable_force_refresh_kills_the_old_token_and_is_spaced(sb: Sandbox) -> None:
    old = sb.stable()["access_token"]
    forced = sb.stable(force=True)
    assert forced["access_token"] != old and forced["expires_in"] == 7200
    assert errcode(sb.call(B, {"scene": "x"}, old)) == 40001
    sb.clock.advance(10)
    # Under 30 s since the last force: no refresh, the current token comes back.
    assert sb.stable(force=True) == {"access_token": forced["access_token"], "expires_in": 7190}
    sb.clock.advance(20)
    assert sb.stable(force=True)["access_token"] != forced["access_token"]


def test_stable_force_refresh_is_capped_per_day(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(force_per_day=3)
    tokens = []
    for _ in range(3):
        tokens.append(sb.stable(force=True)["access_token"])
        sb.clock.advance(31)
    assert len(set(tokens)) == 3
    assert sb.stable(force=True)["access_token"] == tokens[-1]


def test_stable_and_classic_tokens_are_isolated(sb: Sandbox) -> None:
    stable = sb.stable()["access_token"]
    classic = sb.classic()
    sb.classic()
    sb.clock.advance(301)
    assert sb.stable()["access_token"] == stable
    assert sb.call(B, {"scene": "x"}, stable).headers["content-type"] == "image/jpeg"
    latest = sb.classic()
    sb.stable(force=True)
    assert sb.call(B, {"scene": "x"}, latest).headers["content-type"] == "image/jpeg"
    assert errcode(sb.call(B, {"scene": "x"}, classic)) == 40001


def test_stable_token_errors(sb: Sandbox) -> None:
    assert errcode(sb.client.get("/cgi-bin/stable_token", params=CREDS)) == 43002
    assert errcode(sb.client.post("/cgi-bin/stable_token", content=b"grant_type=client_credential")) == 47001
    assert errcode(sb.client.post("/cgi-bin/stable_token", json={**CREDS, "secret": "nope"})) == 40125
    assert errcode(sb.client.post("/cgi-bin/stable_token", json={**CREDS, "appid": ""})) == 41002
    assert errcode(sb.client.post("/cgi-bin/stable_token", json={**CREDS, "force_refresh": "yes"})) == 47001


# ---- codes: success ----------------------------------------------------------------------------


def test_a_code_is_a_jpeg_of_the_path_with_num_used(sb: Sandbox) -> None:
    response = sb.call(A, {"path": "pages/list/list?id=7"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content[:3] == b"\xff\xd8\xff"
    assert response.headers["Num-Used"] == "1"
    assert scan(response) == qr.ScannedCode(SANDBOX_APPID, "A", "pages/list/list?id=7", None)
    assert 280 < Image.open(io.BytesIO(response.content)).width <= 430


def test_b_code_encodes_page_and_scene(sb: Sandbox) -> None:
    home = sb.call(B, {"scene": "id=42&x=y"})
    assert home.headers["content-type"] == "image/jpeg"
    assert "Num-Used" not in home.headers
    assert scan(home) == qr.ScannedCode(SANDBOX_APPID, "B", "pages/index/index", "id=42&x=y")
    paged = sb.call(B, {"scene": "a", "page": "pages/detail/detail", "check_path": False, "env_version": "trial"})
    assert scan(paged) == qr.ScannedCode(SANDBOX_APPID, "B", "pages/detail/detail", "a")


def test_c_code_encodes_path(sb: Sandbox) -> None:
    response = sb.call(C, {"path": "pages/a/a?q=1", "width": 300})
    assert response.headers["content-type"] == "image/jpeg"
    assert scan(response) == qr.ScannedCode(SANDBOX_APPID, "C", "pages/a/a?q=1", None)


def test_hyaline_gives_png_except_for_c(sb: Sandbox) -> None:
    for path, body in ((A, {"path": "p/a"}), (B, {"scene": "s"})):
        response = sb.call(path, {**body, "is_hyaline": True, "auto_color": True})
        assert response.headers["content-type"] == "image/png"
        assert response.content[:4] == b"\x89PNG"
        assert Image.open(io.BytesIO(response.content)).mode == "RGBA"
    c_code = sb.call(C, {"path": "p/a", "is_hyaline": True})
    assert c_code.headers["content-type"] == "image/jpeg"


def test_line_color_accepts_numbers_and_decimal_strings(sb: Sandbox) -> None:
    assert sb.call(A, {"path": "p/a", "line_color": {"r": 10, "g": 20, "b": 30}}).status_code == 200
    assert sb.call(A, {"path": "p/b", "line_color": {"r": "0", "g": "0", "b": "255"}}).headers[
        "content-type"] == "image/jpeg"


# ---- codes: errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [A, C])
@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, 40159),
        ({"path": ""}, 40159),
        ({"path": "p" * 1025}, 40159),  # A: 1024 bytes at most; C's 128: test_c_path_of_129_bytes
        ({"path": "页" * 342}, 40159),  # 1026 UTF-8 bytes
        ({"path": "pages/a/a?scancode_time=1"}, 85096),
        ({"path": "pages/a/a", "env_version": "prod"}, 40097),
        ({"path": "pages/a/a", "is_hyaline": 1}, 47001),
        ({"path": "pages/a/a", "check_page": True}, 47001),
        ({"path": "pages/a/a", "width": "430"}, 47001),
        ({"path": "pages/a/a", "width": True}, 47001),
        ({"path": "pages/a/a", "line_color": {"r": 256, "g": 0, "b": 0}}, 47001),
        ({"path": "pages/a/a", "line_color": "black"}, 47001),
        ({"path": 123}, 47001),
    ],
)
def test_a_and_c_errors(sb: Sandbox, path: str, body: dict[str, Any], code: int) -> None:
    assert errcode(sb.call(path, body)) == code


@pytest.mark.parametrize("body", [{"path": "p" * 129}, {"path": "页" * 43}])
def test_c_path_of_129_bytes_is_40159_while_a_takes_it(sb: Sandbox, body: dict[str, Any]) -> None:
    assert errcode(sb.call(C, body)) == 40159
    assert sb.call(A, body).headers["content-type"] == "image/jpeg"


def test_path_of_exactly_128_bytes_is_fine(sb: Sandbox) -> None:
    assert sb.call(C, {"path": "p" * 128}).headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, 40169),
        ({"scene": ""}, 40169),
        ({"scene": "s" * 33}, 40169),
        ({"scene": "a%20b"}, 40129),
        ({"scene": "a b"}, 40129),
        ({"scene": "中文"}, 40129),
        ({"scene": "abc\n"}, 40129),
        ({"scene": "x", "page": "/pages/a/a"}, 41030),
        ({"scene": "x", "page": "pages/a/a?x=1"}, 41030),
        ({"scene": "x", "page": "pages/a/a?scancode_time=1"}, 85096),
        ({"scene": "x", "env_version": "beta"}, 40097),
        ({"scene": "x", "check_path": "false"}, 47001),
        ({"scene": 42}, 47001),
    ],
)
def test_b_errors(sb: Sandbox, body: dict[str, Any], code: int) -> None:
    assert errcode(sb.call(B, body)) == code


@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b"", b"\xff\xfe"])
def test_body_that_is_not_a_json_object_is_47001(sb: Sandbox, content: bytes) -> None:
    assert errcode(sb.call(A, content=content)) == 47001


def test_released_pages_knob_gives_41030_only_with_check_path(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(pages={"pages/index/index", "pages/list/list"})
    assert sb.call(B, {"scene": "x", "page": "pages/list/list"}).status_code == 200
    assert errcode(sb.call(B, {"scene": "x", "page": "pages/draft/draft"})) == 41030
    unchecked = sb.call(B, {"scene": "x", "page": "pages/draft/draft", "check_path": False})
    assert scan(unchecked).page == "pages/draft/draft"


def test_width_out_of_range_is_40189_for_a_and_clamped_for_b_and_c(sb: Sandbox) -> None:
    assert errcode(sb.call(A, {"path": "p/a", "width": 279})) == 40189
    assert errcode(sb.call(A, {"path": "p/a", "width": 1281})) == 40189
    small = sb.call(B, {"scene": "x", "width": 100})
    assert Image.open(io.BytesIO(small.content)).width > 200
    big = sb.call(C, {"path": "p/c", "width": 5000})
    assert Image.open(io.BytesIO(big.content)).width <= 1280


def test_width_policy_is_a_knob(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(strict_width=("B",))
    assert sb.call(A, {"path": "p/a", "width": 100}).headers["content-type"] == "image/jpeg"
    assert errcode(sb.call(B, {"scene": "x", "width": 100})) == 40189


def test_ampersand_in_scene_rejection_is_a_knob(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(reject_ampersand_in_scene=True)
    assert errcode(sb.call(B, {"scene": "a=1&b=2"})) == 40129


def test_business_get_is_43002(sb: Sandbox) -> None:
    token = sb.emu.issue_token()
    for path in (A, B, C, SHORT):
        assert errcode(sb.client.get(path, params={"access_token": token})) == 43002


# ---- quota and rate limits ---------------------------------------------------------------------


def test_a_and_c_share_a_lifetime_cap_and_repeats_are_free(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(ac_cap=3)
    assert sb.call(A, {"path": "p/1"}).headers["Num-Used"] == "1"
    assert sb.call(A, {"path": "p/2"}).headers["Num-Used"] == "2"
    assert sb.call(C, {"path": "p/3"}).status_code == 200
    assert sb.emu.ac_used(SANDBOX_APPID) == 3
    # At the cap: identical parameter sets still work and cost nothing ...
    assert sb.call(A, {"path": "p/1"}).headers["Num-Used"] == "3"
    assert sb.call(C, {"path": "p/3"}).headers["content-type"] == "image/jpeg"
    # ... new ones fail, including the same path with another width, colour or kind.
    assert errcode(sb.call(A, {"path": "p/4"})) == 45029
    assert errcode(sb.call(A, {"path": "p/1", "width": 500})) == 45029
    assert errcode(sb.call(A, {"path": "p/1", "line_color": {"r": 1, "g": 0, "b": 0}})) == 45029
    assert errcode(sb.call(C, {"path": "p/1"})) == 45029
    assert sb.emu.ac_used(SANDBOX_APPID) == 3
    # B is not capped.
    assert sb.call(B, {"scene": "x"}).status_code == 200
    sb.emu.reset_quotas()
    assert sb.emu.ac_used(SANDBOX_APPID) == 0


def test_b_has_a_sliding_per_minute_window(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(b_per_minute=3)
    for _ in range(3):
        assert sb.call(B, {"scene": "x"}).status_code == 200
        sb.clock.advance(10)
    limited = sb.call(B, {"scene": "x"})
    assert errcode(limited) == 45009
    assert limited.json()["errmsg"].startswith("reach max api daily quota limit")
    sb.clock.advance(31)  # the first call is now more than 60 s old
    assert sb.call(B, {"scene": "x"}).headers["content-type"] == "image/jpeg"
    assert errcode(sb.call(B, {"scene": "x"})) == 45009


def test_a_has_a_daily_cap(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(a_per_day=2)
    assert sb.call(A, {"path": "p/1"}).status_code == 200
    assert sb.call(A, {"path": "p/1"}).status_code == 200
    assert errcode(sb.call(A, {"path": "p/2"})) == 45009
    sb.clock.advance(86400)
    assert sb.call(A, {"path": "p/2"}).headers["content-type"] == "image/jpeg"


# ---- short links -------------------------------------------------------------------------------


def test_short_link_success(sb: Sandbox) -> None:
    response = sb.call(SHORT, {"page_url": "pages/detail/detail?id=1", "page_title": "新品", "is_permanent": False})
    assert response.headers["content-type"] == JSON_TYPE
    body = response.json()
    assert body["errcode"] == 0 and body["errmsg"] == "ok"
    assert re.fullmatch(rf"#小程序://{SANDBOX_APP_NAME}/新品/[A-Za-z0-9]{{15}}", body["link"])
    assert sb.emu.shortlinks[-1]["page_url"] == "pages/detail/detail?id=1"


def test_short_link_long_title_is_truncated_not_refused(sb: Sandbox) -> None:
    title = "一二三四五六七八九十" * 3
    link = sb.call(SHORT, {"page_url": "pages/a/a", "page_title": title}).json()["link"]
    assert link.split("/")[3] == title[:20] + "..."
    untitled = sb.call(SHORT, {"page_url": "pages/a/a"}).json()["link"]
    assert re.fullmatch(rf"#小程序://{SANDBOX_APP_NAME}/[A-Za-z0-9]{{15}}", untitled)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, 40066),
        ({"page_url": ""}, 40066),
        ({"page_url": "p" * 1025}, 40066),
        ({"page_url": "pages/a/a", "page_title": "线上赌博"}, 40225),
        ({"page_url": "pages/a/a", "page_title": "Best CASINO"}, 40225),
        ({"page_url": "pages/a/a", "is_permanent": "true"}, 47001),
        ({"page_url": "pages/a/a", "is_expire": True}, 47001),
    ],
)
def test_short_link_errors(sb: Sandbox, body: dict[str, Any], code: int) -> None:
    assert errcode(sb.call(SHORT, body)) == code


def test_short_link_page_must_exist_when_pages_known(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(pages={"pages/a/a"})
    assert sb.call(SHORT, {"page_url": "pages/a/a?x=1"}).json()["errcode"] == 0
    assert errcode(sb.call(SHORT, {"page_url": "pages/b/b"})) == 40066


def test_short_link_permission_and_caps(sandbox: Callable[..., Sandbox]) -> None:
    assert errcode(sandbox(shortlink_allowed=False).call(SHORT, {"page_url": "pages/a/a"})) == 43104
    sb = sandbox(shortlink_permanent_cap=1, shortlink_per_day=3)
    assert sb.call(SHORT, {"page_url": "pages/a/a", "is_permanent": True}).json()["errcode"] == 0
    assert errcode(sb.call(SHORT, {"page_url": "pages/a/a", "is_permanent": True})) == 85400
    assert sb.call(SHORT, {"page_url": "pages/a/a"}).json()["errcode"] == 0
    assert sb.call(SHORT, {"page_url": "pages/a/a"}).json()["errcode"] == 0
    assert errcode(sb.call(SHORT, {"page_url": "pages/a/a"})) == 45009


# ---- test controls: faults, latency, counters --------------------------------------------------


def test_injected_fault_hits_the_next_business_calls(sb: Sandbox) -> None:
    token = sb.emu.issue_token()
    sb.emu.inject(-1, times=2)
    assert sb.client.get("/cgi-bin/token", params=CREDS).json()["expires_in"] == 7200  # token path untouched
    assert errcode(sb.call(A, {"path": "p/a"}, token)) == -1
    failed = sb.call(SHORT, {"page_url": "pages/a/a"}, token)
    assert errcode(failed) == -1 and failed.json()["errmsg"].startswith("system error rid: ")
    assert sb.call(A, {"path": "p/a"}, token).status_code == 200
    assert sb.emu.ac_used(SANDBOX_APPID) == 1


def test_injected_fault_for_one_path_with_custom_errmsg(sb: Sandbox) -> None:
    sb.emu.inject(45009, path=B, errmsg="reach max api daily quota limit")
    sb.emu.inject(40164, path="/cgi-bin/token", errmsg="invalid ip 10.0.0.1 ipv6 ::ffff:10.0.0.1, not in whitelist")
    assert sb.call(A, {"path": "p/a"}).status_code == 200
    assert errcode(sb.call(B, {"scene": "x"})) == 45009
    assert sb.call(B, {"scene": "x"}).status_code == 200
    response = sb.client.get("/cgi-bin/token", params=CREDS)
    assert errcode(response) == 40164
    assert "not in whitelist" in response.json()["errmsg"]


def test_latency_knob_delays_every_answer(sb: Sandbox) -> None:
    sb.emu.latency = 0.3
    started = time.monotonic()
    sb.client.get("/cgi-bin/token", params=CREDS)
    assert time.monotonic() - started >= 0.3
    sb.emu.latency = 0
    started = time.monotonic()
    sb.client.get("/cgi-bin/token", params=CREDS)
    assert time.monotonic() - started < 0.3


def test_calls_counts_requests_per_path(sb: Sandbox) -> None:
    sb.classic()
    sb.call(B, {"scene": "x"})
    sb.call(B, {"scene": ""})
    assert sb.emu.calls == {"/cgi-bin/token": 1, B: 2}
    sb.emu.reset_counts()
    assert sb.emu.calls == {}


def test_issue_code_for_trusted_callers_spends_the_same_quota() -> None:
    emu = WeChatEmulator(ac_cap=1)
    assert emu.issue_code(SANDBOX_APPID, "C", "pages/a/a?aid=x") == 1
    assert emu.issue_code(SANDBOX_APPID, "C", "pages/a/a?aid=x") == 1
    with pytest.raises(WeChatError) as caught:
        emu.issue_code(SANDBOX_APPID, "A", "pages/a/a?aid=y")
    assert caught.value.errcode == 45029
    assert emu.calls == {C: 2, A: 1}


# ---- scene rules as a property -----------------------------------------------------------------

SCENE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$&'()*+,/:;=?@-._~"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=SCENE_ALPHABET, min_size=1, max_size=32))
def test_any_documented_scene_is_accepted(scene: str) -> None:
    assert parse_code_request("B", {"scene": scene}, CodeRules()).scene == scene


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=SCENE_ALPHABET, max_size=15),
    st.characters().filter(lambda ch: ch not in SCENE_ALPHABET),
    st.text(alphabet=SCENE_ALPHABET, max_size=15),
)
def test_any_scene_with_another_character_is_40129(left: str, bad: str, right: str) -> None:
    with pytest.raises(WeChatError) as caught:
        parse_code_request("B", {"scene": left + bad + right}, CodeRules())
    assert caught.value.errcode == 40129
