"""``/wecom/callback`` end to end: the real server (``create_app``) on a loopback port, WeCom's server emulated
on another (``tests/emulators/wecom.py``), callbacks sent encrypted over real HTTP by ``CallbackSender``.

Scenarios: URL check, a text command that makes a code (image, then text), WeCom's retries, every kind of
bad request, and the access-token / trusted-IP errors of WeCom's API.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from bot.config import Settings
from bot.sandbox.server import ServerThread
from bot.server import create_app, open_service
from bot.service import Service
from handlers.wecom.callback import MAX_BODY
from tests.emulators.wecom import CallbackSender, SentMessage, WeComEmulator
from tests.served import free_port

TOKEN = "minpcodeCallbackToken2024"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
USER = "zhangsan"


@dataclass
class WeComSite:
    """Our server and WeCom's emulated server, wired together."""

    emu: WeComEmulator
    url: str  # our /wecom/callback
    sender: CallbackSender
    service: Service
    api: str  # the emulated WeCom API

    def sent(self, count: int, timeout: float = 15.0) -> list[SentMessage]:
        """Wait until ``count`` messages were accepted by ``message/send``; return them in order."""
        self.emu.wait_for("/cgi-bin/message/send", count, timeout)
        deadline = time.monotonic() + timeout
        while len(self.emu.sent_messages) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.emu.sent_messages)

    def texts(self) -> list[str]:
        return [m.content or "" for m in self.emu.sent_messages if m.msgtype == "text"]

    def settle(self, seconds: float = 0.3) -> None:
        """Give background work a moment, for asserting that nothing (more) happens."""
        time.sleep(seconds)


def wecom_settings(emu: WeComEmulator, api: str, data_dir: Path, **extra: Any) -> Settings:
    """A sandbox install whose WeCom app is ``emu`` at ``api`` (``extra``: e.g. ``minpcode_public_url``)."""
    return Settings(
        _env_file=None, minpcode_data_dir=data_dir, minpcode_sandbox=True,  # type: ignore[call-arg]
        wecom_corp_id=emu.corp_id, wecom_agent_id=str(emu.agent_id), wecom_secret=SecretStr(emu.secret),
        wecom_token=SecretStr(TOKEN), wecom_aes_key=SecretStr(AES_KEY), wecom_api_url=api, **extra,
    )


def make_site(serve: Callable[[Any], str], tmp_path: Path, **emu_options: Any) -> WeComSite:
    emu = WeComEmulator(**emu_options)
    api = serve(emu.app)
    settings = wecom_settings(emu, api, tmp_path)
    service = open_service(settings)
    url = serve(create_app(settings, service)) + "/wecom/callback"
    sender = emu.callback_client(url, TOKEN, AES_KEY, clock=time.time)
    return WeComSite(emu, url, sender, service, api)


@contextlib.contextmanager
def public_site(serve: Callable[[Any], str], tmp_path: Path) -> Iterator[tuple[WeComSite, Starlette]]:
    """A WeCom site whose server listens at the MINPCODE_PUBLIC_URL it was given (links people follow
    lead to it), with the app (its front-ends are in ``app.state.front_ends``)."""
    emu = WeComEmulator()
    api = serve(emu.app)
    port = free_port()
    settings = wecom_settings(emu, api, tmp_path, minpcode_public_url=f"http://127.0.0.1:{port}")
    service = open_service(settings)
    app = create_app(settings, service)
    with ServerThread(app, port=port) as server:
        url = server.url + "/wecom/callback"
        yield WeComSite(emu, url, emu.callback_client(url, TOKEN, AES_KEY, clock=time.time), service, api), app


@pytest.fixture
def wecom(serve: Callable[[Any], str], tmp_path: Path) -> Iterator[WeComSite]:
    yield make_site(serve, tmp_path)


SECRETS = (TOKEN, AES_KEY)


def assert_no_secrets(caplog: pytest.LogCaptureFixture, site: WeComSite) -> None:
    text = "\n".join(r.getMessage() for r in caplog.records)
    tokens = [c.query.get("access_token", "") for c in site.emu.calls if c.query.get("access_token")]
    for secret in (*SECRETS, site.emu.secret, *tokens):
        assert secret not in text


# -- URL verification ---------------------------------------------------------------------------------------


def test_url_verification_answers_the_bare_echo_within_a_second(wecom: WeComSite) -> None:
    for _ in range(3):
        result = wecom.sender.verify_url()
        assert result.ok, (result.response.status_code, result.response.content)
        assert result.response.content == result.echo.encode()  # no quotes, newline or BOM
        assert result.elapsed < 1.0


def test_url_verification_survives_an_unencoded_plus(wecom: WeComSite) -> None:
    for _ in range(50):  # find an echostr with '+' in it and send it raw, as a careless proxy would
        request = wecom.sender.build_verify()
        if "+" in request.params["echostr"]:
            break
    else:
        pytest.skip("no '+' in 50 random echostrs")
    query = "&".join(f"{k}={v}" for k, v in request.params.items())  # deliberately not percent-encoded
    response = httpx.get(f"{wecom.url}?{query}")
    assert response.status_code == 200 and response.text == request.plaintext


# -- a text command makes a code ------------------------------------------------------------------------------


def test_text_command_sends_the_image_then_the_details(wecom: WeComSite, scan: Callable[[bytes], Any]) -> None:
    started = time.monotonic()
    response = wecom.sender.send_text(USER, "新建 pages/index/index type=B scene=id=42")
    assert response.status_code == 200 and response.content == b""
    assert time.monotonic() - started < 1.0  # acknowledged before the work

    image, text = wecom.sent(2)
    assert image.msgtype == "image" and text.msgtype == "text"
    assert image.delivered_to == [USER] and text.delivered_to == [USER]
    # WeCom drops a repeat of the image (its media_id is this answer's); text goes unchecked, since two
    # requests may well be answered with the same words
    assert image.body["enable_duplicate_check"] == 1 and "enable_duplicate_check" not in text.body
    uploaded = wecom.emu.uploaded_media[image.media_id or ""]
    code = scan(uploaded)
    assert (code.kind, code.page, code.scene) == ("B", "pages/index/index", "id=42")

    record = wecom.service.recent()[0]
    content = text.content or ""
    assert record.id in content and "pages/index/index" in content and "id=42" in content
    assert content.index("编号") < content.index("ID:")  # Chinese first, English under it
    assert record.requested_by == f"wecom:{USER}" and record.chat == "wecom"


def test_help_and_bad_input_answer_in_chinese_then_english(wecom: WeComSite) -> None:
    wecom.sender.send_text(USER, "帮助")
    wecom.sent(1)
    wecom.sender.send_text(USER, "新建 //pages/x type=B scene=a")
    wecom.sent(2)
    help_text, error = wecom.texts()
    assert "新建" in help_text and "new" in help_text
    assert error.index("页面路径不能以 / 开头") < error.index("must not start with '/'")
    assert wecom.emu.uploaded_media == {}
    assert wecom.service.storage.history.count() == 0


# -- retries ---------------------------------------------------------------------------------------------------


def test_a_resent_msgid_makes_no_second_code(wecom: WeComSite) -> None:
    first = wecom.sender.send_text(USER, "新建 pages/index/index type=B scene=retry=1")
    retries = [wecom.sender.resend() for _ in range(3)]  # WeCom's three retries, byte for byte
    assert [r.status_code for r in (first, *retries)] == [200] * 4
    wecom.sent(2)
    wecom.settle()
    assert len(wecom.emu.uploaded_media) == 1 and len(wecom.emu.sent_messages) == 2
    assert wecom.service.storage.history.count() == 1
    # the same text with a new MsgId is a new message: answered again, but the core reuses the code
    wecom.sender.send_text(USER, "新建 pages/index/index type=B scene=retry=1")
    wecom.sent(4)
    assert wecom.service.storage.history.count() == 1


def test_concurrent_members_each_get_their_own_code(wecom: WeComSite, scan: Callable[[bytes], Any]) -> None:
    import concurrent.futures

    users = [f"user{i}" for i in range(12)]
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(lambda u: wecom.sender.send_text(u, f"新建 pages/index/index type=B scene=u={u}"),
                              users))
    assert all(r.status_code == 200 for r in codes)
    wecom.sent(24, timeout=30)
    for user in users:
        mine = wecom.emu.messages_for(user)
        assert [m.msgtype for m in mine] == ["image", "text"]
        assert scan(wecom.emu.uploaded_media[mine[0].media_id or ""]).scene == f"u={user}"


# -- bad requests ---------------------------------------------------------------------------------------------


def test_bad_requests_get_the_right_status_and_do_nothing(wecom: WeComSite, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sender = wecom.sender

    def post(request: Any, **changes: Any) -> int:
        params = {**request.params, **changes.pop("params", {})}
        body = changes.pop("body", request.body)
        return httpx.post(wecom.url, params=params, content=body, headers=changes.pop("headers", {})).status_code

    good = sender.build(sender.text_xml(USER, "新建 pages/index/index type=B scene=bad=1"))
    assert post(good, params={"msg_signature": "0" * 40}) == 403  # bad signature
    assert post(good, params={"nonce": "1"}) == 403  # signature over other values
    assert post(good, params={"msg_signature": ""}) == 400  # missing parameter
    stale = wecom.emu.callback_client(wecom.url, TOKEN, AES_KEY)  # the emulator's clock is in 2023
    assert post(stale.build(stale.text_xml(USER, "帮助"))) == 403
    other_corp = CallbackSender(wecom.url, TOKEN, AES_KEY, "wwsomeothercorp0001")
    assert post(other_corp.build(other_corp.text_xml(USER, "帮助"))) == 403  # wrong receive id
    assert post(good, body=b"<xml><Encrypt><![CDATA[abc") == 400  # broken XML
    assert post(good, body=b"<!DOCTYPE x [<!ENTITY a 'b'>]><xml><Encrypt>&a;</Encrypt></xml>") == 400
    assert post(good, body=b"<xml><Other/></xml>") == 400  # no Encrypt
    signed_junk = sender.build("not xml at all")
    assert post(signed_junk) == 400  # decrypts, but the message is not XML
    big = b"<xml><Encrypt>" + b"A" * MAX_BODY + b"</Encrypt></xml>"
    assert post(good, body=big) == 413  # declared too large

    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BODY // 4096 + 2):
            yield b"A" * 4096

    streamed = httpx.post(wecom.url, params=good.params, content=chunks())  # chunked, no Content-Length
    assert streamed.status_code == 413
    assert httpx.get(wecom.url, params={**sender.build_verify().params, "msg_signature": "0" * 40}).status_code == 403
    assert httpx.get(wecom.url, params={"timestamp": "1"}).status_code == 400

    wecom.settle()
    assert wecom.emu.calls == []  # no token fetched, nothing sent
    assert wecom.service.storage.history.count() == 0
    rejected = [r for r in caplog.records if r.name == "minpcode.wecom.callback" and "rejected" in r.getMessage()]
    assert len(rejected) == 13
    assert_no_secrets(caplog, wecom)
    # and the good one still works
    assert post(good) == 200
    assert [m.msgtype for m in wecom.sent(2)] == ["image", "text"]


def test_other_apps_messages_are_acknowledged_and_ignored(wecom: WeComSite) -> None:
    other = wecom.emu.callback_client(wecom.url, TOKEN, AES_KEY, agent_id=1000099, clock=time.time)
    assert other.send_text(USER, "帮助").status_code == 200
    wecom.settle()
    assert wecom.emu.sent_messages == []


# -- WeCom API errors -----------------------------------------------------------------------------------------


def test_token_refreshed_once_on_40014_and_42001(wecom: WeComSite) -> None:
    wecom.sender.send_text(USER, "帮助")
    wecom.sent(1)
    wecom.emu.invalidate_tokens()  # 40014
    wecom.sender.send_text(USER, "帮助")
    wecom.sent(2)
    wecom.emu.expire_tokens()  # 42001
    wecom.sender.send_text(USER, "帮助")
    wecom.sent(3)
    assert len(wecom.emu.calls_to("gettoken")) == 3
    refused = [c.errcode for c in wecom.emu.calls_to("message/send") if c.errcode]
    assert refused == [40014, 42001]


def test_concurrent_callers_share_one_token_fetch(wecom: WeComSite) -> None:
    for i in range(8):
        wecom.sender.send_text(f"u{i}", "帮助")
    wecom.sent(8)
    assert len(wecom.emu.calls_to("gettoken")) == 1


def test_untrusted_ip_60020_is_logged_with_the_fix_and_no_secret(wecom: WeComSite,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wecom.emu.trusted_ips = {"203.0.113.7"}  # not us
    wecom.sender.send_text(USER, "新建 pages/index/index type=B scene=ip=1")
    wecom.emu.wait_for("/cgi-bin/message/send", 1)
    wecom.settle(0.5)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and "60020" in r.getMessage()]
    assert errors and "企业可信IP" in errors[0] and "127.0.0.1" in errors[0]
    assert wecom.emu.sent_messages == []
    assert_no_secrets(caplog, wecom)
    httpx_lines = [r.getMessage() for r in caplog.records if r.name == "httpx" and wecom.api in r.getMessage()]
    assert httpx_lines and all("access_token=***" in line or "corpsecret=***" in line for line in httpx_lines)
    # once the admin adds the IP, the next message works
    wecom.emu.trusted_ips = None
    wecom.sender.send_text(USER, "帮助")
    assert wecom.sent(1)[0].msgtype == "text"


def test_recipient_outside_visible_range_81013_is_logged_with_the_fix(serve: Callable[[Any], str], tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    site = make_site(serve, tmp_path, users=["lisi"])
    site.sender.send_text(USER, "帮助")
    site.emu.wait_for("/cgi-bin/message/send", 1)
    site.settle()
    errors = [r.getMessage() for r in caplog.records if "81013" in r.getMessage()]
    assert errors and "可见范围" in errors[0] and USER in errors[0]
    assert site.emu.sent_messages == []


# -- wiring ----------------------------------------------------------------------------------------------------


async def test_front_end_is_off_with_one_clear_line_when_settings_are_missing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from handlers.wecom.callback import wecom_front_end

    caplog.set_level(logging.INFO, logger="minpcode.wecom.callback")
    base: dict[str, Any] = dict(_env_file=None, minpcode_data_dir=tmp_path, minpcode_sandbox=True)
    full = dict(wecom_corp_id="wwcorp", wecom_agent_id="1000002", wecom_secret=SecretStr("s3cret-value"),
                wecom_token=SecretStr(TOKEN), wecom_aes_key=SecretStr(AES_KEY))
    cases = [
        ({}, "WeCom is off: set WECOM_CORP_ID"),
        ({**full, "wecom_secret": None}, "WeCom is off: WECOM_SECRET not set"),
        ({**full, "wecom_agent_id": "app"}, "WECOM_AGENT_ID must be the app's numeric AgentId"),
        ({**full, "wecom_aes_key": SecretStr("too-short")}, "WECOM_AES_KEY must be the 43-character"),
    ]
    for extra, line in cases:
        caplog.clear()
        service = open_service(Settings(**base, **extra))
        assert wecom_front_end(service) is None
        lines = [r.getMessage() for r in caplog.records if r.name == "minpcode.wecom.callback"]
        assert len(lines) == 1 and lines[0].startswith("WeCom is off") and line in lines[0]
        assert "s3cret-value" not in caplog.text and AES_KEY not in caplog.text
        await service.close()
    service = open_service(Settings(**base, **full))
    mounted = wecom_front_end(service)
    assert mounted is not None and [r.path for r in mounted.routes()] == ["/wecom/callback"]  # type: ignore[attr-defined]
    await mounted.stop()
    await service.close()
