"""The WeCom emulator over real loopback HTTP, and its callback sender against a WeComCrypto echo app."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import threading
import time
import zlib
from contextlib import contextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.sandbox.server import ServerThread
from handlers.wecom import (
    EnterAgentEvent,
    TemplateCardEvent,
    TextMessage,
    TextReply,
    UpdateButtonReply,
    WeComCrypto,
    WeComCryptoError,
    encrypted_reply,
    parse_message,
)
from tests.emulators.wecom import (
    MB,
    CallbackReplyError,
    CallbackSender,
    FakeClock,
    WeComEmulator,
    WxBizCipher,
    parse_multipart,
)

CORP = "ww0a1b2c3d4e5f6a7b"
SECRET = "emulator-app-secret-0123456789abcdefABCDEF_x"
AGENT = 1000002
TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"


def png(size: int = 64) -> bytes:
    """A real PNG padded with an ancillary chunk to roughly ``size`` bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00\x00")
    base = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    filler = max(0, size - len(base) - 12)
    return base[:-12] + chunk(b"tEXt", b"c\x00" + b"x" * max(0, filler - 2)) + base[-12:]


class Switch:
    """One loopback server per module whose ASGI target each test swaps (uvicorn start/stop is slow)."""

    def __init__(self) -> None:
        self.target = None

    async def __call__(self, scope, receive, send):
        await self.target(scope, receive, send)


@pytest.fixture(scope="module")
def api_server():
    switch = Switch()
    with ServerThread(switch, lifespan="off") as s:
        s.switch = switch
        yield s


@pytest.fixture(scope="module")
def bot_server():
    switch = Switch()
    with ServerThread(switch, lifespan="off") as s:
        s.switch = switch
        yield s


@contextmanager
def serve(server, app):
    server.switch.target = app
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


@pytest.fixture
def clock():
    return FakeClock(1_700_000_000)


@pytest.fixture
def emu(clock):
    return WeComEmulator(CORP, SECRET, AGENT, clock=clock, users=["zhangsan", "lisi", "wangwu"],
                         foreign_secrets=["other-corp-secret"])


@pytest.fixture
def server(api_server, emu):
    api_server.switch.target = emu.app
    return api_server


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def get_token(http: httpx.Client) -> str:
    r = http.get("/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": SECRET})
    assert r.status_code == 200 and r.json()["errcode"] == 0
    return r.json()["access_token"]


def send(http: httpx.Client, token: str, body: dict) -> dict:
    r = http.post("/cgi-bin/message/send", params={"access_token": token}, json=body)
    assert r.status_code == 200
    return r.json()


def text(to: str, content: str = "hi", agentid: int = AGENT) -> dict:
    return {"touser": to, "msgtype": "text", "agentid": agentid, "text": {"content": content}}


def upload(http: httpx.Client, token: str, data: bytes, mtype: str = "image", name: str = "qr.png",
           ctype: str = "image/png") -> dict:
    r = http.post("/cgi-bin/media/upload", params={"access_token": token, "type": mtype},
                  files={"media": (name, data, ctype)})
    assert r.status_code == 200
    return r.json()


FORM_CARD = {
    "card_type": "multiple_interaction",
    "source": {"desc": "minpcode"},
    "main_title": {"title": "新建小程序码", "desc": "选择后点击提交"},
    "task_id": "mp-20250101-7f3a",
    "select_list": [
        {"question_key": "program", "title": "小程序",
         "option_list": [{"id": "wxapp1", "text": "商城"}, {"id": "wxapp2", "text": "会员"}]},
        {"question_key": "campaign", "title": "推广活动", "option_list": [{"id": "c11", "text": "双11"}]},
        {"question_key": "codetype", "title": "码类型", "selected_id": "B",
         "option_list": [{"id": "A", "text": "A 码"}, {"id": "B", "text": "B 码(scene)"},
                         {"id": "C", "text": "C 二维码"}, {"id": "S", "text": "Short Link"}]},
    ],
    "submit_button": {"text": "提交", "key": "submit"},
}


def card_msg(card: dict, to: str = "zhangsan") -> dict:
    return {"touser": to, "msgtype": "template_card", "agentid": AGENT, "template_card": card}


# ============================================================================ tokens


def test_gettoken_same_token_while_valid_then_expiry(http, emu, clock):
    r1 = http.get("/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": SECRET}).json()
    assert r1["errcode"] == 0 and r1["expires_in"] == 7200 and len(r1["access_token"]) <= 512
    clock.advance(100)
    r2 = http.get("/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": SECRET}).json()
    assert r2["access_token"] == r1["access_token"] and r2["expires_in"] == 7100
    assert send(http, r1["access_token"], text("zhangsan"))["errcode"] == 0
    clock.advance(7100)
    assert send(http, r1["access_token"], text("zhangsan"))["errcode"] == 42001
    fresh = get_token(http)
    assert fresh != r1["access_token"]
    assert send(http, fresh, text("zhangsan"))["errcode"] == 0


@pytest.mark.parametrize(("params", "code"), [
    ({"corpsecret": SECRET}, 41002),
    ({"corpid": CORP}, 41004),
    ({"corpid": "wwnotmycorp", "corpsecret": SECRET}, 40013),
    ({"corpid": CORP, "corpsecret": "wrong"}, 40001),
    ({"corpid": CORP, "corpsecret": "other-corp-secret"}, 40091),
])
def test_gettoken_errors(http, params, code):
    r = http.get("/cgi-bin/gettoken", params=params)
    assert r.status_code == 200
    body = r.json()
    assert body["errcode"] == code and "access_token" not in body
    assert "from ip: 127.0.0.1" in body["errmsg"]
    assert body["errmsg"].endswith(f"more info at https://open.work.weixin.qq.com/devtool/query?e={code}")
    assert SECRET not in body["errmsg"]


def test_token_missing_unknown_invalidated_expired(http, emu):
    token = get_token(http)
    assert http.post("/cgi-bin/message/send", json=text("zhangsan")).json()["errcode"] == 41001
    assert send(http, "made-up-token", text("zhangsan"))["errcode"] == 40014
    emu.invalidate_tokens()
    assert send(http, token, text("zhangsan"))["errcode"] == 40014
    token = get_token(http)
    emu.expire_tokens()
    assert send(http, token, text("zhangsan"))["errcode"] == 42001


def test_tokens_are_per_app(http, emu):
    emu.add_app(1000003, "second-app-secret")
    other = http.get("/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": "second-app-secret"}).json()
    assert other["access_token"] != get_token(http)
    # a token of app 1000003 cannot send as app 1000002
    assert send(http, other["access_token"], text("zhangsan"))["errcode"] == 40056
    assert send(http, other["access_token"], text("zhangsan", agentid=1000003))["errcode"] == 0


# ============================================================================ media


def test_media_upload_records_bytes_and_serves_them(http, emu):
    token = get_token(http)
    data = png(300)
    body = upload(http, token, data)
    assert body["errcode"] == 0 and body["type"] == "image" and isinstance(body["created_at"], str)
    assert emu.uploaded_media[body["media_id"]] == data
    assert emu.media[body["media_id"]].filename == "qr.png"
    got = http.get("/cgi-bin/media/get", params={"access_token": token, "media_id": body["media_id"]})
    assert got.content == data and got.headers["content-type"].startswith("image/png")


def test_media_upload_file_keeps_filename(http, emu):
    token = get_token(http)
    body = upload(http, token, b"campaign,code\nc11,B\n", "file", "codes.csv", "application/octet-stream")
    assert body["errcode"] == 0
    assert emu.media[body["media_id"]].filename == "codes.csv"


@pytest.mark.parametrize(("mtype", "data", "code"), [
    ("picture", png(), 40005),
    ("image", b"", 44001),
    ("image", b"\x89PNG", 40006),
    ("image", b"GIF89a" + b"\x00" * 100, 40004),
    ("voice", b"not amr at all", 40004),
    ("video", b"not an mp4 file", 40004),
    ("image", png(10 * MB + 1), 40009),
    ("voice", b"#!AMR\n" + b"\x00" * (2 * MB), 45001),
    ("file", b"\x00" * (20 * MB + 1), 45001),
])
def test_media_upload_limits(http, mtype, data, code):
    assert upload(http, get_token(http), data, mtype)["errcode"] == code


def test_media_upload_requires_part_named_media(http):
    token = get_token(http)
    r = http.post("/cgi-bin/media/upload", params={"access_token": token, "type": "image"},
                  files={"file": ("qr.png", png(), "image/png")})
    assert r.json()["errcode"] == 44001
    r = http.post("/cgi-bin/media/upload", params={"access_token": token, "type": "image"}, content=png())
    assert r.json()["errcode"] == 44001


def test_image_limit_configurable_to_2mb(api_server, clock):
    emu = WeComEmulator(CORP, SECRET, AGENT, clock=clock, image_max_bytes=2 * MB)
    with serve(api_server, emu.app) as http:
        token = get_token(http)
        assert upload(http, token, png(2 * MB))["errcode"] == 0
        assert upload(http, token, png(2 * MB + 1))["errcode"] == 40009


def test_media_expires_after_three_days(http, emu, clock):
    token = get_token(http)
    media_id = upload(http, token, png())["media_id"]
    image = {"touser": "zhangsan", "msgtype": "image", "agentid": AGENT, "image": {"media_id": media_id}}
    assert send(http, token, image)["errcode"] == 0
    assert emu.sent_messages[-1].media_id == media_id
    clock.advance(3 * 86400 + 1)
    token = get_token(http)
    assert send(http, token, image)["errcode"] == 40007
    assert http.get("/cgi-bin/media/get", params={"access_token": token, "media_id": media_id}).json()["errcode"] \
        == 40007


def test_parse_multipart_edge_cases():
    assert parse_multipart(b"", "application/json") is None
    assert parse_multipart(b"", "multipart/form-data") is None
    body = (b'--XyZ\r\nContent-Disposition: form-data; name="media"; filename="a b.png"; filelength=9\r\n'
            b"Content-Type: image/png\r\n\r\nab--XyZcd\r\n--XyZ--\r\n")
    [part] = parse_multipart(body, 'multipart/form-data; boundary="XyZ"')
    assert (part.name, part.filename, part.content_type, part.data) == ("media", "a b.png", "image/png", b"ab--XyZcd")


# ============================================================================ message/send


def test_send_text_with_partly_invalid_recipients(http, emu):
    r = send(http, get_token(http), text("zhangsan|Nobody|lisi", "你好 😀"))
    assert r["errcode"] == 0 and r["errmsg"] == "ok"
    assert r["invaliduser"] == "nobody" and r["invalidparty"] == "" and r["msgid"]
    assert "response_code" not in r
    msg = emu.sent_messages[-1]
    assert msg.delivered_to == ["zhangsan", "lisi"] and msg.content == "你好 😀"
    assert [m.msgid for m in emu.messages_for("lisi")] == [r["msgid"]]


def test_send_to_all_invalid_is_81013(http):
    r = send(http, get_token(http), {**text("ghost"), "toparty": "999"})
    assert r["errcode"] == 81013 and r["invaliduser"] == "ghost" and r["invalidparty"] == "999"


def test_send_to_party_only(http):
    r = send(http, get_token(http), {"toparty": "1", "msgtype": "text", "agentid": AGENT, "text": {"content": "x"}})
    assert r["errcode"] == 0


@pytest.mark.parametrize(("body", "code"), [
    ({**text("zhangsan"), "agentid": 1}, 40056),
    ({**text("zhangsan"), "agentid": "abc"}, 40056),
    ({**text("zhangsan"), "msgtype": "sticker"}, 40008),
    (text("zhangsan", ""), 44004),
    ({"touser": "zhangsan", "msgtype": "text", "agentid": AGENT}, 44004),
    ({"touser": "zhangsan", "msgtype": "markdown", "agentid": AGENT, "markdown": {"content": ""}}, 44004),
    ({"touser": "zhangsan", "msgtype": "image", "agentid": AGENT, "image": {"media_id": "nope"}}, 40007),
    ({"touser": "zhangsan", "msgtype": "textcard", "agentid": AGENT, "textcard": {"title": "t"}}, 40058),
    ({"touser": "zhangsan", "msgtype": "news", "agentid": AGENT,
      "news": {"articles": [{"title": "t", "url": "u"}] * 9}}, 45008),
])
def test_send_validation(http, body, code):
    assert send(http, get_token(http), body)["errcode"] == code


def test_send_invalid_json(http):
    r = http.post("/cgi-bin/message/send", params={"access_token": get_token(http)}, content=b"{not json")
    assert r.json()["errcode"] == 47001


def test_long_text_truncated_like_wecom(http, emu):
    r = send(http, get_token(http), text("zhangsan", "码" * 700))  # 2100 bytes
    assert r["errcode"] == 0
    msg = emu.sent_messages[-1]
    assert msg.truncated and len(msg.content.encode()) <= 2048 and msg.content == "码" * 682


def test_long_text_error_mode(api_server, clock):
    emu = WeComEmulator(CORP, SECRET, AGENT, clock=clock, oversize="error")
    with serve(api_server, emu.app) as http:
        assert send(http, get_token(http), text("zhangsan", "a" * 2049))["errcode"] == 45002
        assert send(http, get_token(http), text("zhangsan", "a" * 2048))["errcode"] == 0


def test_markdown_send(http, emu):
    body = {"touser": "zhangsan", "msgtype": "markdown", "agentid": AGENT,
            "markdown": {"content": "**新建** <font color=\"info\">ok</font>"}}
    assert send(http, get_token(http), body)["errcode"] == 0
    assert emu.sent_messages[-1].msgtype == "markdown"


def test_member_cap_drops_silently(http, emu, clock):
    token = get_token(http)
    for i in range(31):
        assert send(http, token, text("zhangsan|lisi" if i == 30 else "zhangsan", f"m{i}"))["errcode"] == 0
    assert len(emu.messages_for("zhangsan")) == 30
    assert len(emu.messages_for("lisi")) == 1
    assert emu.dropped_messages == [(emu.sent_messages[-1].msgid, "zhangsan")]
    clock.advance(61)
    send(http, token, text("zhangsan", "again"))
    assert len(emu.messages_for("zhangsan")) == 31


def checked(body: dict, interval: int | None = 600) -> dict:
    extra = {} if interval is None else {"duplicate_check_interval": interval}
    return {**body, "enable_duplicate_check": 1, **extra}


def test_duplicate_check_drops_the_same_request_within_its_interval(http, emu, clock):
    token = get_token(http)
    media_id = upload(http, token, png())["media_id"]
    image = {"touser": "zhangsan", "msgtype": "image", "agentid": AGENT, "image": {"media_id": media_id}}
    first = send(http, token, checked(image))
    again = send(http, token, checked(image))
    assert first["errcode"] == again["errcode"] == 0 and again["msgid"] == first["msgid"]
    assert len(emu.messages_for("zhangsan")) == 1 and [m for m, _ in emu.duplicates] == [first["msgid"]]
    # another request JSON is another message: another member, another upload, no check, another interval
    assert send(http, token, checked({**image, "touser": "lisi"}))["errcode"] == 0
    other = upload(http, token, png())["media_id"]
    assert send(http, token, checked({**image, "image": {"media_id": other}}))["errcode"] == 0
    assert send(http, token, image)["errcode"] == 0
    assert send(http, token, checked(image, 900))["errcode"] == 0
    assert len(emu.messages_for("zhangsan")) == 4
    clock.advance(600)  # the interval is over: delivered again
    assert send(http, token, checked(image))["msgid"] != first["msgid"]
    assert len(emu.messages_for("zhangsan")) == 5


def test_duplicate_check_interval_defaults_to_1800_s_and_is_at_most_4_hours(http, emu, clock):
    token = get_token(http)
    body = checked(text("zhangsan", "same"), None)
    assert send(http, token, body)["errcode"] == 0
    clock.advance(1799)
    send(http, token, body)
    assert len(emu.messages_for("zhangsan")) == 1
    clock.advance(1)
    send(http, token, body)
    assert len(emu.messages_for("zhangsan")) == 2
    assert send(http, token, checked(text("zhangsan"), 4 * 3600))["errcode"] == 0
    assert send(http, token, checked(text("zhangsan"), 4 * 3600 + 1))["errcode"] == 40058


def test_held_answers_are_taken_but_not_answered_until_released(http, emu, server):
    token = get_token(http)
    emu.hold_answers("message/send", when=lambda body: body["msgtype"] == "text")
    answered: list[int] = []

    def post() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            answered.append(send(c, token, text("zhangsan", "held"))["errcode"])

    sender = threading.Thread(target=post)
    sender.start()
    emu.wait_for("message/send", 1)
    time.sleep(0.2)
    assert [m.content for m in emu.messages_for("zhangsan")] == ["held"] and answered == []  # taken, no answer
    media_id = upload(http, token, png())["media_id"]
    image = {"touser": "zhangsan", "msgtype": "image", "agentid": AGENT, "image": {"media_id": media_id}}
    assert send(http, token, image)["errcode"] == 0  # not a text: answered at once
    emu.release_answers()
    sender.join(5)
    assert answered == [0]
    assert send(http, token, text("zhangsan", "after"))["errcode"] == 0


# ============================================================================ template cards


def test_template_card_send_and_update_button(http, emu):
    token = get_token(http)
    r = send(http, token, card_msg(FORM_CARD, "zhangsan|lisi"))
    assert r["errcode"] == 0 and r["response_code"]
    state = emu.cards["mp-20250101-7f3a"]
    assert state.recipients == ["zhangsan", "lisi"] and state.card["card_type"] == "multiple_interaction"

    upd = {"userids": ["zhangsan", "ghost"], "agentid": AGENT, "response_code": r["response_code"],
           "button": {"replace_name": "已提交"}}
    u = http.post("/cgi-bin/message/update_template_card", params={"access_token": token}, json=upd).json()
    assert u == {"errcode": 0, "errmsg": "ok", "invaliduser": ["ghost"]}
    assert state.replaced_name == {"zhangsan": "已提交"}
    again = http.post("/cgi-bin/message/update_template_card", params={"access_token": token}, json=upd).json()
    assert again["errcode"] == 40058 and "used" in again["errmsg"]


def test_update_template_card_replaces_card_and_expires(http, emu, clock):
    token = get_token(http)
    r = send(http, token, card_msg({**FORM_CARD, "task_id": "mp-2"}))
    done = {"card_type": "text_notice", "main_title": {"title": "已创建"},
            "card_action": {"type": 1, "url": "https://example.com/c/1"}}
    code2 = emu.issue_response_code("mp-2", "zhangsan")
    u = http.post("/cgi-bin/message/update_template_card", params={"access_token": token},
                  json={"atall": 1, "agentid": AGENT, "response_code": r["response_code"], "template_card": done}).json()
    assert u["errcode"] == 0
    assert emu.cards["mp-2"].view("zhangsan")["card_type"] == "text_notice"
    clock.advance(72 * 3600 + 1)
    token = get_token(http)
    late = http.post("/cgi-bin/message/update_template_card", params={"access_token": token},
                     json={"atall": 1, "agentid": AGENT, "response_code": code2, "button": {"replace_name": "x"}})
    assert late.json()["errcode"] == 40058 and "expired" in late.json()["errmsg"]


@pytest.mark.parametrize(("body", "code"), [
    ({"agentid": AGENT, "response_code": "nope", "button": {"replace_name": "x"}}, 40058),
    ({"agentid": 5, "response_code": "x", "button": {"replace_name": "x"}}, 40056),
])
def test_update_template_card_errors(http, body, code):
    r = http.post("/cgi-bin/message/update_template_card", params={"access_token": get_token(http)}, json=body)
    assert r.json()["errcode"] == code


def test_update_needs_button_or_card(http):
    token = get_token(http)
    r = send(http, token, card_msg(FORM_CARD))
    u = http.post("/cgi-bin/message/update_template_card", params={"access_token": token},
                  json={"atall": 1, "agentid": AGENT, "response_code": r["response_code"]})
    assert u.json()["errcode"] == 40058


def test_task_id_rules(http):
    token = get_token(http)
    assert send(http, token, card_msg(FORM_CARD))["errcode"] == 0
    assert send(http, token, card_msg(FORM_CARD))["errcode"] == 42014  # reused
    assert send(http, token, card_msg({**FORM_CARD, "task_id": ""}))["errcode"] == 42014
    assert send(http, token, card_msg({**FORM_CARD, "task_id": "has space"}))["errcode"] == 42014
    assert send(http, token, card_msg({**FORM_CARD, "task_id": "x" * 129}))["errcode"] == 42014
    no_task = {k: v for k, v in FORM_CARD.items() if k != "task_id"}
    assert send(http, token, card_msg(no_task))["errcode"] == 42014


BUTTONS = {"card_type": "button_interaction", "main_title": {"title": "确认？"}, "task_id": "b-1",
           "button_list": [{"text": "确认", "style": 1, "key": "ok"}, {"text": "取消", "style": 2, "key": "no"}]}


@pytest.mark.parametrize("card", [
    {**FORM_CARD, "task_id": "f-1", "select_list": FORM_CARD["select_list"] + [FORM_CARD["select_list"][0]]},
    {**FORM_CARD, "task_id": "f-2", "select_list": [FORM_CARD["select_list"][0]] * 2},
    {**FORM_CARD, "task_id": "f-3", "submit_button": {"text": "提交"}},
    {**FORM_CARD, "task_id": "f-4", "select_list": [{"question_key": "q", "option_list":
                                                     [{"id": str(i), "text": "t"} for i in range(11)]}]},
    {**BUTTONS, "button_list": [{"text": f"b{i}", "key": f"k{i}"} for i in range(7)]},
    {**BUTTONS, "button_list": [{"text": "a", "key": "k"}, {"text": "b", "key": "k"}]},
    {**BUTTONS, "button_list": [{"text": "a", "key": "k", "style": 9}]},
    {**BUTTONS, "button_list": [{"text": "a", "key": "k" * 1025}]},
    {**BUTTONS, "button_list": []},
    {**BUTTONS, "horizontal_content_list": [{"keyname": "k", "value": "v"}] * 7},
    {**BUTTONS, "jump_list": [{"title": "t", "type": 1, "url": "u"}] * 4},
    {"card_type": "text_notice", "main_title": {"title": "t"}},
    {"card_type": "text_notice", "card_action": {"type": 1, "url": "https://x"}},
    {"card_type": "news_notice", "main_title": {"title": "t"}, "card_action": {"type": 1, "url": "https://x"}},
    {"card_type": "vote_interaction", "task_id": "v-1", "submit_button": {"key": "s"}},
    {"card_type": "banner"},
])
def test_template_card_schema_limits(http, card):
    assert send(http, get_token(http), card_msg(card))["errcode"] == 40058


def test_notice_cards_need_no_response_code(http, emu):
    card = {"card_type": "text_notice", "main_title": {"title": "小程序码已生成"},
            "horizontal_content_list": [{"keyname": "活动", "value": "双11"}],
            "card_action": {"type": 1, "url": "https://example.com"}}
    r = send(http, get_token(http), card_msg(card))
    assert r["errcode"] == 0 and "response_code" not in r


# ============================================================================ group robot webhook


def hook(http: httpx.Client, body: dict | bytes, key: str = "robot-key") -> dict:
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    r = http.post("/cgi-bin/webhook/send", params={"key": key}, **kwargs)
    assert r.status_code == 200
    return r.json()


def image_body(data: bytes, md5: str | None = None) -> dict:
    return {"msgtype": "image", "image": {"base64": base64.b64encode(data).decode(),
                                          "md5": md5 or hashlib.md5(data).hexdigest()}}


def test_webhook_text_markdown_image(http, emu):
    assert hook(http, {"msgtype": "text", "text": {"content": "日报", "mentioned_list": ["@all"]}})["errcode"] == 0
    assert hook(http, {"msgtype": "markdown", "markdown": {"content": "码" * 1365}})["errcode"] == 0  # 4095 B
    data = png(1000)
    assert hook(http, image_body(data))["errcode"] == 0
    assert [m.msgtype for m in emu.webhook_messages] == ["text", "markdown", "image"]
    assert emu.webhook_messages[-1].image == data


@pytest.mark.parametrize(("body", "code"), [
    ({"msgtype": "markdown", "markdown": {"content": "a" * 4097}}, 40058),
    ({"msgtype": "text", "text": {"content": "a" * 2049}}, 40058),
    ({"msgtype": "text", "text": {"content": ""}}, 44004),
    ({"msgtype": "sticker", "sticker": {}}, 40008),
    (image_body(png(200), md5="0" * 32), 301019),
    (image_body(png(2 * MB + 1)), 40009),
    (image_body(b"GIF89a" + b"\x00" * 50), 40004),
    ({"msgtype": "image", "image": {"base64": "%%%", "md5": "x"}}, 40058),
    ({"msgtype": "image", "image": {"base64": "QUJD"}}, 40058),
    ({"msgtype": "news", "news": {"articles": [{"title": "t", "url": "u"}] * 9}}, 45008),
    ({"msgtype": "news", "news": {"articles": []}}, 40058),
    ({"msgtype": "file", "file": {"media_id": "nope"}}, 40007),
    ({"msgtype": "template_card", "template_card": BUTTONS}, 40058),
    (b"not json", 47001),
])
def test_webhook_errors(http, emu, body, code):
    assert hook(http, body)["errcode"] == code
    assert emu.webhook_messages == []


def test_webhook_bad_key_and_rate(http, emu, clock):
    assert hook(http, {"msgtype": "text", "text": {"content": "x"}}, key="stolen")["errcode"] == 93000
    for _ in range(20):
        assert hook(http, {"msgtype": "text", "text": {"content": "x"}})["errcode"] == 0
    assert hook(http, {"msgtype": "text", "text": {"content": "x"}})["errcode"] == 45009
    clock.advance(60.5)
    assert hook(http, {"msgtype": "text", "text": {"content": "x"}})["errcode"] == 0


def test_webhook_upload_then_send_file(http, emu):
    r = http.post("/cgi-bin/webhook/upload_media", params={"key": "robot-key", "type": "file"},
                  files={"media": ("codes.csv", b"a,b\n1,2\n", "application/octet-stream")}).json()
    assert r["errcode"] == 0 and r["type"] == "file"
    assert hook(http, {"msgtype": "file", "file": {"media_id": r["media_id"]}})["errcode"] == 0
    tiny = http.post("/cgi-bin/webhook/upload_media", params={"key": "robot-key", "type": "file"},
                     files={"media": ("x", b"abc", "application/octet-stream")}).json()
    assert tiny["errcode"] == 40006


# ============================================================================ fault injection, latency, records


def test_fail_next_then_recovers(http, emu):
    token = get_token(http)
    emu.fail_next("message/send", 60020, times=2)
    first = send(http, token, text("zhangsan"))
    assert first["errcode"] == 60020 and "not allow to access from your ip" in first["errmsg"]
    assert send(http, token, text("zhangsan"))["errcode"] == 60020
    assert send(http, token, text("zhangsan"))["errcode"] == 0
    emu.fail_next("/cgi-bin/message/send", 81013)
    assert send(http, token, text("zhangsan"))["errcode"] == 81013
    emu.fail_next("gettoken", -1, errmsg="system busy")
    assert http.get("/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": SECRET}).json()["errcode"] == -1
    assert [c.errcode for c in emu.calls_to("message/send")] == [60020, 60020, 0, 81013]
    assert len(emu.sent_messages) == 1


def test_trusted_ips(api_server, clock):
    emu = WeComEmulator(CORP, SECRET, AGENT, clock=clock, trusted_ips={"10.1.2.3"}, ip_header="X-Forwarded-For")
    with serve(api_server, emu.app) as http:
        token = get_token(http)  # gettoken is not IP-guarded
        r = send(http, token, text("zhangsan"))
        assert r["errcode"] == 60020 and "from ip: 127.0.0.1" in r["errmsg"]
        ok = http.post("/cgi-bin/message/send", params={"access_token": token}, json=text("zhangsan"),
                       headers={"X-Forwarded-For": "10.1.2.3, 127.0.0.1"})
        assert ok.json()["errcode"] == 0


def test_api_budget_per_minute(api_server, clock):
    emu = WeComEmulator(CORP, SECRET, AGENT, clock=clock, api_budget_per_minute=3)
    with serve(api_server, emu.app) as http:
        token = get_token(http)
        codes = [send(http, token, text("zhangsan"))["errcode"] for _ in range(4)]
        assert codes == [0, 0, 0, 45009]
        clock.advance(61)
        assert send(http, token, text("zhangsan"))["errcode"] == 0


def test_latency(http, emu):
    token = get_token(http)
    emu.latency = 0.3
    started = time.monotonic()
    send(http, token, text("zhangsan"))
    assert time.monotonic() - started >= 0.3
    emu.latency = 0
    emu.path_latency["/cgi-bin/message/send"] = 0.2
    started = time.monotonic()
    send(http, token, text("zhangsan"))
    assert time.monotonic() - started >= 0.2


def test_calls_recorded_and_wait_for(http, emu, server):
    token = get_token(http)

    def later():
        time.sleep(0.2)
        with httpx.Client(base_url=server.url) as c:
            send(c, token, text("zhangsan", "from thread"))

    t = threading.Thread(target=later)
    t.start()
    calls = emu.wait_for("message/send", 1, timeout=5)
    t.join()
    assert calls[0].json["text"]["content"] == "from thread"
    assert calls[0].query["access_token"] == token and calls[0].method == "POST"
    assert calls[0].response["errcode"] == 0 and calls[0].client_ip == "127.0.0.1"
    assert [c.path for c in emu.calls] == ["/cgi-bin/gettoken", "/cgi-bin/message/send"]
    with pytest.raises(TimeoutError):
        emu.wait_for("message/send", 2, timeout=0.2)


async def test_await_calls_async(server, emu):
    async with httpx.AsyncClient(base_url=server.url) as c:
        token = (await c.get("/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": SECRET})).json()["access_token"]
        await c.post("/cgi-bin/message/send", params={"access_token": token}, json=text("lisi"))
    calls = await emu.await_calls("message/send", 1, timeout=2)
    assert calls[0].errcode == 0


def test_getcallbackip(http):
    r = http.get("/cgi-bin/getcallbackip", params={"access_token": get_token(http)}).json()
    assert r["errcode"] == 0 and r["ip_list"]


# ============================================================================ callback sender vs a WeComCrypto echo app


class EchoBot:
    """A minimal bot callback endpoint built on handlers.wecom: verifies, decrypts, records, replies."""

    def __init__(self, token: str = TOKEN, aes_key: str = AES_KEY, corp_id: str = CORP, fail_first: int = 0):
        self.crypto = WeComCrypto(token, aes_key, corp_id)
        self.seen: list = []
        self.raw_queries: list[str] = []
        self.fail_first = fail_first
        self.app = Starlette(routes=[Route("/wecom/callback", self.endpoint, methods=["GET", "POST"])])

    async def endpoint(self, request: Request) -> Response:
        q = request.query_params
        self.raw_queries.append(request.url.query)
        try:
            if request.method == "GET":
                return PlainTextResponse(self.crypto.verify_url(q["msg_signature"], q["timestamp"], q["nonce"],
                                                                q["echostr"]))
            plain = self.crypto.decrypt_body(q["msg_signature"], q["timestamp"], q["nonce"], await request.body())
        except WeComCryptoError as exc:
            return PlainTextResponse(type(exc).__name__, status_code=403)
        if self.fail_first > 0:
            self.fail_first -= 1
            return Response(status_code=500)
        msg = parse_message(plain)
        self.seen.append(msg)
        if isinstance(msg, TextMessage) and msg.content == "ping":
            return Response(encrypted_reply(self.crypto, TextReply.to(msg, content="pong 🏓"),
                                            nonce=q["nonce"], timestamp=q["timestamp"]))
        if isinstance(msg, TemplateCardEvent):
            return Response(encrypted_reply(self.crypto, UpdateButtonReply.to(msg, replace_name="已提交")))
        return Response(b"")


@pytest.fixture
def bot():
    return EchoBot()


@pytest.fixture
def bot_url(bot_server, bot):
    bot_server.switch.target = bot.app
    return bot_server.url + "/wecom/callback"


def test_sender_cipher_matches_published_vector_c3():
    """The emulator's own WXBizMsgCrypt reproduces vector C3 (wechatpy's, see tests/wecom/test_crypto.py)."""
    c = WxBizCipher("123456", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a")
    reply = ("<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
             "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]>"
             "</ToUserName>\n<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>")
    enc = c.encrypt(reply, random16=b"1234567890123456")
    assert c.sign("1411525903", "461056294", enc) == "407518b7649e86ef23978113f92d27afa9296533"
    assert c.decrypt(enc) == reply


def test_url_verification(bot_url, bot):
    sender = CallbackSender(bot_url, TOKEN, AES_KEY, CORP)
    for _ in range(5):  # random echostrs: '+', '/' and '=' must arrive percent-encoded
        result = sender.verify_url()
        assert result.ok, result.response.text
        assert result.response.text == result.echo and len(result.echo) == 19
    assert all("+" not in q for q in bot.raw_queries)


def test_url_verification_fails_with_wrong_token(bot_url):
    result = CallbackSender(bot_url, "wrong-token", AES_KEY, CORP).verify_url()
    assert not result.ok and result.response.status_code == 403 and result.response.text == "InvalidSignature"


def test_wrong_corp_id_is_rejected(bot_url):
    r = CallbackSender(bot_url, TOKEN, AES_KEY, "wwSOMEONEELSE").send_text("zhangsan", "hi")
    assert r.status_code == 403 and r.text == "ReceiveIdMismatch"


def test_text_message_decrypts_and_resend_is_identical(bot_url, bot, emu, clock):
    sender = emu.callback_client(bot_url, TOKEN, AES_KEY)
    r = sender.send_text("zhangsan", "新建 小程序码 😀 <b>&amp;", msg_id=7300000000000000001, create_time=1700000000)
    assert r.status_code == 200 and r.content == b""
    assert sender.decrypt_reply(r) is None
    msg = bot.seen[-1]
    assert isinstance(msg, TextMessage)
    assert (msg.content, msg.msg_id, msg.create_time, msg.from_user_name, msg.to_user_name, msg.agent_id) == \
        ("新建 小程序码 😀 <b>&amp;", 7300000000000000001, 1700000000, "zhangsan", CORP, AGENT)
    first = sender.last_request
    r2 = sender.resend()
    assert r2.status_code == 200 and sender.sent[-1] is first
    assert bot.seen[-1].dedupe_key == msg.dedupe_key == "msg:7300000000000000001"
    assert bot.raw_queries[-1] == bot.raw_queries[-2]
    # default MsgId/CreateTime: fresh ids, time from the emulator's clock
    sender.send_text("zhangsan", "again")
    assert bot.seen[-1].msg_id != msg.msg_id and bot.seen[-1].create_time == int(clock())


def test_passive_reply_is_verified_and_decrypted(bot_url):
    sender = CallbackSender(bot_url, TOKEN, AES_KEY, CORP)
    r = sender.send_text("lisi", "ping")
    plain = sender.decrypt_reply(r)
    msg = parse_message(plain)
    assert (msg.to_user_name, msg.from_user_name, msg.content) == ("lisi", CORP, "pong 🏓")


def test_bad_passive_reply_is_caught(bot_url):
    sender = CallbackSender(bot_url, TOKEN, AES_KEY, CORP)
    r = sender.send_text("lisi", "ping")
    forged = httpx.Response(200, content=r.content.replace(b"<MsgSignature><![CDATA[",
                                                           b"<MsgSignature><![CDATA[0"))
    with pytest.raises(CallbackReplyError):
        sender.decrypt_reply(forged)
    other = CallbackSender(bot_url, TOKEN, AES_KEY, CORP)
    other.send_text("wangwu", "hello")
    with pytest.raises(CallbackReplyError, match="ToUserName"):
        other.decrypt_reply(r)


def test_enter_agent_and_click(bot_url, bot):
    sender = CallbackSender(bot_url, TOKEN, AES_KEY, CORP, clock=lambda: 1700000123)
    assert sender.send_enter_agent("wangwu").status_code == 200
    ev = bot.seen[-1]
    assert isinstance(ev, EnterAgentEvent) and ev.from_user_name == "wangwu" and ev.create_time == 1700000123
    sender.send_click("wangwu", "cmd:list")
    assert bot.seen[-1].event_key == "cmd:list"


def test_template_card_click_roundtrip(bot_url, bot, emu, http):
    """Card sent through the API → user submits it → bot gets the event with a real response code → the
    bot's passive update_button reply and a later API update both land on the emulator's card."""
    token = get_token(http)
    sent = send(http, token, card_msg(FORM_CARD, "zhangsan|lisi"))
    sender = emu.callback_client(bot_url, TOKEN, AES_KEY)
    r = sender.send_template_card_event("zhangsan", FORM_CARD["task_id"], "submit",
                                        selected={"program": "wxapp2", "codetype": ["C"]})
    ev = bot.seen[-1]
    assert isinstance(ev, TemplateCardEvent)
    assert (ev.card_type, ev.event_key, ev.task_id) == ("multiple_interaction", "submit", FORM_CARD["task_id"])
    assert ev.selected() == {"program": ["wxapp2"], "codetype": ["C"]}
    assert ev.response_code in emu.response_codes and ev.response_code != sent["response_code"]
    reply = sender.decrypt_reply(r)
    assert "update_button" in reply
    assert emu.cards[FORM_CARD["task_id"]].replaced_name == {"zhangsan": "已提交"}
    u = http.post("/cgi-bin/message/update_template_card", params={"access_token": token},
                  json={"userids": ["lisi"], "agentid": AGENT, "response_code": ev.response_code,
                        "button": {"replace_name": "已过期"}}).json()
    assert u["errcode"] == 0
    assert emu.cards[FORM_CARD["task_id"]].replaced_name == {"zhangsan": "已提交", "lisi": "已过期"}


@pytest.mark.parametrize(("key", "selected"), [
    ("nope", {}),
    ("submit", {"program": "wxapp9"}),
    ("submit", {"unknown_question": "x"}),
    ("submit", {"program": ["wxapp1", "wxapp2"]}),  # single-choice select
])
def test_card_click_rejects_what_is_not_on_the_card(http, emu, key, selected):
    send(http, get_token(http), card_msg(FORM_CARD))
    sender = emu.callback_client("http://127.0.0.1:9/unused", TOKEN, AES_KEY)
    with pytest.raises(ValueError):
        sender.template_card_event_xml("zhangsan", FORM_CARD["task_id"], key, selected=selected)


def test_update_reply_to_plain_text_is_rejected(bot_url):
    sender = CallbackSender(bot_url, TOKEN, AES_KEY, CORP)
    xml = sender.template_card_event_xml("zhangsan", "t-1", "ok")
    r = sender.send(sender.build(xml))  # built without task_id context
    with pytest.raises(CallbackReplyError, match="only a valid answer"):
        sender.decrypt_reply(r)


def test_deliver_retries_same_payload_until_200(bot_server):
    bot = EchoBot(fail_first=2)
    bot_server.switch.target = bot.app
    sender = CallbackSender(bot_server.url + "/wecom/callback", TOKEN, AES_KEY, CORP)
    delivery = sender.deliver(sender.build(sender.text_xml("zhangsan", "hi", msg_id=42)))
    assert delivery.delivered and delivery.attempts == 3
    assert [r.status_code for r in delivery.responses] == [500, 500, 200]
    assert len(set(bot.raw_queries)) == 1 and bot.seen[-1].msg_id == 42
    bot.fail_first = 10
    failed = sender.deliver(sender.build(sender.text_xml("zhangsan", "hi")))
    assert not failed.delivered and failed.attempts == 4


async def test_async_send(bot_url, bot):
    sender = CallbackSender(bot_url, TOKEN, AES_KEY, CORP)
    r = await sender.asend(sender.build(sender.text_xml("zhangsan", "ping")))
    assert parse_message(sender.decrypt_reply(r)).content == "pong 🏓"
    r2 = await sender.aresend()
    assert r2.status_code == 200 and bot.seen[-1].dedupe_key == bot.seen[-2].dedupe_key


def test_call_json_records(http, emu):
    token = get_token(http)
    send(http, token, text("zhangsan", "记录"))
    call = emu.calls_to("/cgi-bin/message/send")[-1]
    assert json.loads(call.body)["text"]["content"] == "记录"
