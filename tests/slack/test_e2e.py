"""End to end: the real server on a port, signed Slack requests over HTTP, Slack's Web API emulated.

Each test starts ``create_app`` (sandbox upstream, a temporary data dir) with ``SLACK_API_URL`` pointing
at :class:`~tests.emulators.slack.SlackEmulator`, sends requests signed the v0 way and checks what the
bot did in the emulator: the uploaded bytes scan as the code asked for, views and messages pass
slack_sdk's Block Kit models (checked for every test at teardown).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import zxingcpp
from PIL import Image
from slack_sdk.models.blocks import Block, Option
from slack_sdk.models.views import View

from bot.config import Settings
from bot.models import Status
from bot.sandbox import SANDBOX_APPID
from bot.sandbox.qr import ScannedCode, parse_code_url
from bot.sandbox.server import ServerThread
from bot.server import create_app, open_service
from bot.service import Service
from bot.text import local_time
from tests.emulators.slack import (
    APP_ID,
    DM_CHANNEL,
    OTHER_PUBLIC_CHANNEL,
    PRIVATE_CHANNEL,
    PUBLIC_CHANNEL,
    TEAM_ID,
    USER_ID,
    ZH_USER_ID,
    SlackEmulator,
    Upload,
)

SECRET = "test-signing-secret"
ADMIN_ID = "U0ADMIN"
ENV_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy",
            "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL", "SLACK_CLIENT_ID",
            "SLACK_CLIENT_SECRET", "SLACK_SUMMARY_CHANNEL", "WECHAT_APPID", "WECHAT_SECRET", "GIO_PROJECT_UID",
            "GIO_CLIENT_ID", "GIO_TOKEN", "MINPCODE_ADMINS", "MINPCODE_PUBLIC_URL", "WECOM_WEBHOOK_URL")


# ---------------------------------------------------------------------------------------------- helpers


def sign(body: str, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + digest}


def scan(data: bytes) -> ScannedCode:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))
    assert len(found) == 1, f"expected one code, found {len(found)}"
    return parse_code_url(found[0].text)


def entry(field_name: str, value: Any) -> dict[str, Any]:
    if field_name in ("type", "app"):
        return {"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": str(value)},
                                                             "value": value}}
    if field_name in ("campaign", "channel"):
        return {"type": "external_select", "selected_option": None if value is None else {
            "text": {"type": "plain_text", "text": str(value)}, "value": value}}
    if field_name == "transparent":
        return {"type": "checkboxes", "selected_options": [{"value": "yes"}] if value else []}
    if field_name == "width":
        return {"type": "number_input", "value": str(value)}
    return {"type": "plain_text_input", "value": value}


def state(**values: Any) -> dict[str, Any]:
    return {"values": {name: {name: entry(name, value)} for name, value in values.items()}}


@dataclass
class Harness:
    emu: SlackEmulator
    url: str
    service: Service
    settings: Settings
    http: httpx.Client
    acks: list[httpx.Response] = field(default_factory=list)

    # -- sending ------------------------------------------------------------------------------------
    def post(self, body: str, content_type: str, *, headers: dict[str, str] | None = None,
             secret: str = SECRET, timestamp: int | None = None) -> httpx.Response:
        sent = {"content-type": content_type, **sign(body, secret, timestamp), **(headers or {})}
        response = self.http.post(self.url + "/slack/events", content=body.encode(), headers=sent)
        self.acks.append(response)
        return response

    def command(self, text: str, *, user: str = USER_ID, channel: str = PUBLIC_CHANNEL,
                trigger_id: str | None = None, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        body = urllib.parse.urlencode({
            "token": "legacy", "team_id": TEAM_ID, "team_domain": "test-team", "channel_id": channel,
            "channel_name": "general", "user_id": user, "user_name": user.lower(), "command": "/minpcode",
            "text": text, "api_app_id": APP_ID, "is_enterprise_install": "false",
            "trigger_id": trigger_id or self.emu.issue_trigger_id(user_id=user), **kw,
        })
        return self.post(body, "application/x-www-form-urlencoded", headers=headers)

    def interact(self, payload: dict[str, Any], **kw: Any) -> httpx.Response:
        body = "payload=" + urllib.parse.quote(json.dumps(payload, ensure_ascii=False))
        return self.post(body, "application/x-www-form-urlencoded", **kw)

    def event(self, event: dict[str, Any], event_id: str = "Ev0001", **kw: Any) -> httpx.Response:
        body = json.dumps({"token": "legacy", "team_id": TEAM_ID, "api_app_id": APP_ID, "event": event,
                           "type": "event_callback", "event_id": event_id, "event_time": int(time.time())})
        return self.post(body, "application/json", **kw)

    def user(self, user: str = USER_ID) -> dict[str, Any]:
        return {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID}

    def action(self, view: dict[str, Any], action_id: str, value: Any = None, *, user: str = USER_ID,
               values: dict[str, Any] | None = None, kind: str = "button") -> httpx.Response:
        view = {**view, "state": values if values is not None else view.get("state", {"values": {}})}
        action: dict[str, Any] = {"action_id": action_id, "block_id": action_id, "type": kind,
                                  "action_ts": str(time.time())}
        if kind == "static_select":
            action["selected_option"] = {"value": value}
        else:
            action["value"] = value
        return self.interact({
            "type": "block_actions", "user": self.user(user), "team": {"id": TEAM_ID}, "api_app_id": APP_ID,
            "trigger_id": self.emu.issue_trigger_id(user_id=user, view_id=view.get("id")),
            "container": {"type": "view", "view_id": view.get("id")}, "view": view, "actions": [action],
        })

    def suggest(self, view: dict[str, Any], action_id: str, typed: str, user: str = USER_ID) -> httpx.Response:
        return self.interact({"type": "block_suggestion", "user": self.user(user), "team": {"id": TEAM_ID},
                              "api_app_id": APP_ID, "action_id": action_id, "block_id": action_id,
                              "value": typed, "view": view})

    def submit(self, view: dict[str, Any], values: dict[str, Any], user: str = USER_ID) -> httpx.Response:
        return self.interact({"type": "view_submission", "user": self.user(user), "team": {"id": TEAM_ID},
                              "api_app_id": APP_ID, "trigger_id": self.emu.issue_trigger_id(user_id=user),
                              "view": {**view, "state": values}})

    # -- looking ----------------------------------------------------------------------------------------
    def open_form(self, user: str = USER_ID, channel: str = PUBLIC_CHANNEL) -> dict[str, Any]:
        before = len(self.emu.calls_to("views.open"))
        assert self.command("", user=user, channel=channel).status_code == 200
        call = self.emu.wait_for("views.open", before + 1, ok=True)[-1]
        view = call.response["view"]
        return self.emu.views[view["id"]]

    def uploads_for(self, marker: str, count: int = 1, timeout: float = 10.0) -> list[Upload]:
        deadline = time.monotonic() + timeout
        while True:
            found = [u for u in self.emu.uploads if marker in (u.initial_comment or "")]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no upload mentioning {marker!r}; calls: {[c.method for c in self.emu.calls]}")
            time.sleep(0.02)

    def ephemeral(self, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for message in list(self.emu.ephemerals):
                if predicate(message):
                    return message
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching ephemeral; have {[m.get('text') for m in self.emu.ephemerals]}")
            time.sleep(0.02)


def validate_view(view: dict[str, Any]) -> None:
    View(**view).validate_json()
    for block in Block.parse_all(view["blocks"]):
        assert block is not None
        block.validate_json()


def validate_blocks(blocks: Any) -> None:
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    parsed = Block.parse_all(blocks)
    assert all(b is not None for b in parsed)
    for block in parsed:
        block.validate_json()


def validate_everything(h: Harness) -> int:
    """Every view and message the bot sent (to the emulator or in an ack) passes slack_sdk's models."""
    checked = 0
    for call in h.emu.calls:
        if call.method in ("views.open", "views.update", "views.push", "views.publish"):
            view = call.params["view"]
            validate_view(json.loads(view) if isinstance(view, str) else view)
            checked += 1
        elif call.method in ("chat.postMessage", "chat.postEphemeral") and call.params.get("blocks"):
            validate_blocks(call.params["blocks"])
            checked += 1
    for response in h.acks:
        if response.headers.get("content-type", "").startswith("application/json") and response.content:
            body = response.json()
            if "view" in body:
                validate_view(body["view"])
                checked += 1
            for option in body.get("options", []):
                Option(**option).validate_json()
                checked += 1
            if body.get("blocks"):
                validate_blocks(body["blocks"])
    return checked


@pytest.fixture
def make_harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    stack: list[tuple[SlackEmulator, ServerThread, httpx.Client]] = []
    harnesses: list[Harness] = []

    def build(**overrides: Any) -> Harness:
        emu = SlackEmulator(**overrides.pop("emulator", {})).start()
        prepare = overrides.pop("prepare", None)
        emu.add_user(ADMIN_ID, name="root", locale="en-GB")
        values: dict[str, Any] = dict(
            _env_file=None, minpcode_data_dir=tmp_path / f"data{len(stack)}", minpcode_sandbox=True,
            slack_bot_token=emu.bot_token, slack_signing_secret=SECRET, slack_api_url=emu.api_url,
            minpcode_admins=[f"slack:{ADMIN_ID}"], minpcode_public_url="http://127.0.0.1:3000",
        )
        values.update(overrides)
        settings = Settings(**values)
        service = open_service(settings)
        if prepare is not None:
            prepare(service)
        server = ServerThread(create_app(settings, service)).start()
        client = httpx.Client(timeout=10, trust_env=False)
        stack.append((emu, server, client))
        harness = Harness(emu, server.url, service, settings, client)
        harnesses.append(harness)
        return harness

    yield build
    for harness in harnesses:
        validate_everything(harness)
    for emu, server, client in stack:
        client.close()
        server.stop()
        emu.stop()


@pytest.fixture
def h(make_harness: Any) -> Harness:
    return make_harness()


# ---------------------------------------------------------------------------------------------- text commands


def test_new_code_is_acked_at_once_then_posted_in_the_channel(h: Harness) -> None:
    response = h.command("new pages/shop/index type=B scene=shop42")
    assert response.status_code == 200
    assert response.json()["response_type"] == "ephemeral"
    assert "Working" in response.json()["text"] or "正在生成" in response.json()["text"]
    [upload] = h.uploads_for("shop42")
    assert upload.channel_id == PUBLIC_CHANNEL
    code = scan(upload.data or b"")
    assert (code.appid, code.kind, code.page, code.scene) == (SANDBOX_APPID, "B", "pages/shop/index", "shop42")
    comment = upload.initial_comment or ""
    [record] = h.service.recent(limit=5)
    assert record.id in comment and f"<@{USER_ID}>" in comment and "Page" in comment  # English user
    assert h.emu.last_call("users.info")["include_locale"] in (True, "true", "1")


def test_tracking_link_comment_in_chinese_for_a_zh_user(h: Harness) -> None:
    assert h.command("new pages/index/index?from=poster campaign=双十一推广 channel=微博", user=ZH_USER_ID).status_code == 200
    [upload] = h.uploads_for("双十一推广")
    code = scan(upload.data or b"")
    assert code.kind == "A" and code.page.startswith("pages/index/index?from=poster&aid=")
    record = h.service.recent(limit=1)[0]
    comment = upload.initial_comment or ""
    assert "推广渠道: 微博" in comment and "监测链接" in comment and record.tracking_url in comment
    assert "Tracking URL" not in comment


def test_text_commands_answer_ephemerally_in_the_users_language(h: Harness) -> None:
    h.command("new pages/a type=B scene=one", user=ZH_USER_ID)
    h.uploads_for("one")
    code_id = h.service.recent(limit=1)[0].id
    for text in ("help", "list", f"show {code_id}", "quota", f"rename {code_id} 新名字", "列表"):
        h.command(text, user=ZH_USER_ID)
    h.ephemeral(lambda m: "新名字" in m["text"] and "已改名" in m["text"])
    shown = h.ephemeral(lambda m: code_id in m["text"] and m.get("blocks"))
    assert shown["to"] == ZH_USER_ID and "下载" in json.dumps(shown["blocks"], ensure_ascii=False)
    h.emu.wait_for("chat.postEphemeral", 6)
    for message in h.emu.ephemerals:
        assert "Please" not in message["text"]  # Chinese only for a zh-CN user
    h.command(f"delete {code_id}", user=USER_ID)  # not the creator, not an admin
    refused = h.ephemeral(lambda m: m["to"] == USER_ID)
    assert "Only its creator" in refused["text"] and "只有" not in refused["text"]
    assert h.service.get(code_id).status is Status.DONE


def test_text_with_the_word_payload_is_not_lost(h: Harness) -> None:
    response = h.command("new pages/payload/index type=B scene=payload1")
    assert response.status_code == 200
    [upload] = h.uploads_for("payload1")
    assert scan(upload.data or b"").page == "pages/payload/index"


def test_failures_say_what_to_do_in_the_users_language(h: Harness) -> None:
    h.command("new pages/index/index campaign=没有这个活动 channel=微博", user=ZH_USER_ID)
    message = h.ephemeral(lambda m: m["to"] == ZH_USER_ID and "没有这个活动" in m["text"])
    assert "create=yes" in message["text"]  # what to do
    assert "campaign" not in message["text"]  # Chinese only
    h.command("new pages/x type=B scene=中文", user=USER_ID)
    message = h.ephemeral(lambda m: m["to"] == USER_ID and "scene" in m["text"])
    assert "Please fix" in message["text"] and "请修改" not in message["text"]
    assert not h.emu.uploads


def test_slack_upload_failure_tells_the_user_where_the_code_is(h: Harness) -> None:
    h.emu.fail_next("files.completeUploadExternal", "internal_error")
    h.command("new pages/index/index type=B scene=fail1")
    message = h.ephemeral(lambda m: "could not be posted" in m["text"])
    record = h.service.recent(limit=1)[0]
    assert record.id in message["text"] and f"/codes/{record.id}.png" in message["text"]


def test_rate_limited_upload_is_retried(h: Harness) -> None:
    h.emu.ratelimit_next("files.getUploadURLExternal", retry_after=0)
    h.command("new pages/index/index type=B scene=rl1")
    h.uploads_for("rl1")
    assert [c.status for c in h.emu.calls_to("files.getUploadURLExternal")] == [429, 200]


# ---------------------------------------------------------------------------------------------- where it is posted


def test_public_channel_the_bot_is_not_in_is_joined(h: Harness) -> None:
    h.command("new pages/index/index type=B scene=join1", channel=OTHER_PUBLIC_CHANNEL)
    [upload] = h.uploads_for("join1")
    assert upload.channel_id == OTHER_PUBLIC_CHANNEL
    assert h.emu.calls_to("conversations.join", ok=True)


def test_private_channel_and_other_dms_get_the_code_by_dm_with_the_reason(h: Harness) -> None:
    h.command("new pages/index/index type=B scene=priv1", channel=PRIVATE_CHANNEL)
    [upload] = h.uploads_for("priv1")
    assert upload.channel_id == DM_CHANNEL and "/invite" in (upload.initial_comment or "")
    h.emu.add_channel("D0OTHERS", kind="im", user=ZH_USER_ID, is_member=False)
    h.command("new pages/index/index type=B scene=priv2", channel="D0OTHERS")
    [upload] = h.uploads_for("priv2")
    assert upload.channel_id == DM_CHANNEL
    h.command("new pages/index/index type=B scene=dm3", channel=DM_CHANNEL)
    [upload] = h.uploads_for("dm3")
    assert upload.channel_id == DM_CHANNEL and "/invite" not in (upload.initial_comment or "")


def test_short_link_is_posted_as_a_message(h: Harness) -> None:
    h.command("new pages/index/index type=shortlink")
    message = next(m for m in h.emu.wait_for("chat.postMessage") if m.ok)
    assert "#小程序://" in message["text"]


# ---------------------------------------------------------------------------------------------- signatures, retries


def test_forged_stale_and_unsigned_requests_get_401(h: Harness) -> None:
    body = urllib.parse.urlencode({"command": "/minpcode", "text": "new pages/x type=B scene=evil", "user_id": USER_ID,
                                   "team_id": TEAM_ID, "channel_id": PUBLIC_CHANNEL, "trigger_id": "1.2.3"})
    assert h.post(body, "application/x-www-form-urlencoded", secret="wrong").status_code == 401
    stale = int(time.time()) - 6 * 60
    assert h.post(body, "application/x-www-form-urlencoded", timestamp=stale).status_code == 401
    unsigned = h.http.post(h.url + "/slack/events", content=body,
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert unsigned.status_code == 401
    retry_forged = h.post(body, "application/x-www-form-urlencoded", secret="wrong", headers={"X-Slack-Retry-Num": "1"})
    assert retry_forged.status_code == 401
    time.sleep(0.3)
    assert [c.method for c in h.emu.calls if c.method != "auth.test"] == []
    assert h.service.recent(limit=5) == []


def test_retries_never_make_a_second_code(h: Harness) -> None:
    trigger = h.emu.issue_trigger_id(user_id=USER_ID)
    assert h.command("new pages/index/index type=B scene=once", trigger_id=trigger).status_code == 200
    retry = h.command("new pages/index/index type=B scene=once", trigger_id=trigger,
                      headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert retry.status_code == 200 and retry.content == b""
    again = h.command("new pages/index/index type=B scene=once")  # no retry header: the recent key drops it
    assert again.status_code == 200 and "already" in again.json()["text"]
    h.uploads_for("once")
    time.sleep(0.5)
    assert len(h.uploads_for("once")) == 1
    assert len(h.service.recent(limit=10)) == 1
    h.event({"type": "app_home_opened", "user": USER_ID, "channel": DM_CHANNEL, "tab": "home"}, "EvR")
    h.emu.wait_for("views.publish")
    h.event({"type": "app_home_opened", "user": USER_ID, "channel": DM_CHANNEL, "tab": "home"}, "EvR",
            headers={"X-Slack-Retry-Num": "1"})
    h.event({"type": "app_home_opened", "user": USER_ID, "channel": DM_CHANNEL, "tab": "home"}, "EvR")
    time.sleep(0.3)
    assert len(h.emu.calls_to("views.publish")) == 1


def test_many_commands_at_once_are_all_acked_and_answered(h: Harness) -> None:
    texts = [f"new pages/index/index type=B scene=burst{i}" for i in range(40)]
    with ThreadPoolExecutor(20) as pool:
        started = time.perf_counter()
        statuses = list(pool.map(lambda t: h.command(t).status_code, texts))
        elapsed = time.perf_counter() - started
    assert statuses == [200] * len(texts)
    assert elapsed < 5
    h.emu.wait_for("files.completeUploadExternal", len(texts), timeout=30, ok=True)
    assert sorted(scan(u.data or b"").scene for u in h.emu.uploads) == sorted(f"burst{i}" for i in range(40))


# ---------------------------------------------------------------------------------------------- the form


def test_bare_command_opens_the_form_and_fields_follow_the_type(h: Harness) -> None:
    assert h.command("").content == b""
    view = h.emu.views[h.emu.wait_for("views.open", ok=True)[0].response["view"]["id"]]
    blocks = {b.get("block_id") for b in view["blocks"]}
    assert {"type", "page", "campaign", "channel", "medium", "content", "term", "name", "comments"} <= blocks
    assert "scene" not in blocks and "title" not in blocks
    assert "页面路径 / Page path" in json.dumps(view, ensure_ascii=False)
    h.action(view, "type", "wechat:B", kind="static_select", values=state(type="wechat:B", page="pages/a"))
    updated = h.emu.wait_for("views.update", ok=True)[-1].response["view"]
    blocks = {b.get("block_id") for b in updated["blocks"]}
    assert {"scene", "width", "transparent"} <= blocks and "campaign" not in blocks and "title" not in blocks
    view = h.emu.views[view["id"]]
    h.action(view, "type", "wechat:shortlink", kind="static_select", values=state(type="wechat:shortlink"))
    updated = h.emu.wait_for("views.update", 2, ok=True)[-1].response["view"]
    blocks = {b.get("block_id") for b in updated["blocks"]}
    assert "title" in blocks and "scene" not in blocks and "width" not in blocks


def test_expired_trigger_tells_the_user_to_try_again(h: Harness) -> None:
    h.emu.expire_next_trigger()
    h.command("")
    message = h.ephemeral(lambda m: "expired_trigger_id" in m["text"])
    assert "/minpcode" in message["text"]


def test_mini_program_is_asked_for_when_there_are_several(make_harness: Any) -> None:
    def second_app(service: Service) -> None:
        service.upstream.emulators[1].products.append({
            "id": "SbxMinp2", "name": "第二个小程序", "displayName": "second", "activated": True,
            "spn": "wxsandbox0000002", "urlSchema": "5bx0000000000003", "platform": "minp", "createdAt": 1})

    h = make_harness(prepare=second_app)
    h.emu.wait_for("auth.test")
    time.sleep(0.2)  # the lists are warmed at start
    view = h.open_form()
    [app] = [b for b in view["blocks"] if b.get("block_id") == "app"]
    assert [o["value"] for o in app["element"]["options"]] == [SANDBOX_APPID, "wxsandbox0000002"]
    h.submit(view, state(type="gio:A", app=SANDBOX_APPID, page="pages/index/index", campaign="n:新品上市",
                         channel="n:微博"))
    [upload] = h.uploads_for("新品上市")
    assert scan(upload.data or b"").appid == SANDBOX_APPID
    # the sandbox WeChat knows only the first app: the failure reaches the person, with the reason
    h.submit(h.open_form(), state(type="gio:A", app="wxsandbox0000002", page="pages/index/index",
                                  campaign="n:双十一推广", channel="n:微博"))
    failed = h.ephemeral(lambda m: "Could not make the code" in m["text"])
    assert "40013" in failed["text"] and "双十一推广" in failed["text"]


def test_name_is_suggested_from_campaign_channel_and_page(h: Harness) -> None:
    view = h.open_form()
    h.action(view, "channel", "n:微博", kind="external_select",
             values=state(type="gio:A", page="pages/shop/index", campaign="n:新品上市", channel="n:微博"))
    updated = h.emu.wait_for("views.update", ok=True)[-1].response["view"]
    name = next(b for b in updated["blocks"] if b.get("block_id") == "name")
    assert "新品上市-微博-pages_shop_index" in name["element"]["placeholder"]["text"]


def test_campaign_options_come_from_growingio_filtered_fast(h: Harness) -> None:
    view = h.open_form()
    started = time.perf_counter()
    response = h.suggest(view, "campaign", "双")
    assert time.perf_counter() - started < 1.0
    options = response.json()["options"]
    values = [o["value"] for o in options]
    assert "n:双十一推广" in values and "n:新品上市" not in values
    assert values[0] == "c:双"  # "create '双'" first
    everything = [o["value"] for o in h.suggest(view, "channel", "").json()["options"]]
    assert {"n:微博", "n:今日头条", "n:线下地推"} <= set(everything) and not any(v.startswith("c:") for v in everything)
    exact = [o["value"] for o in h.suggest(view, "channel", "微博").json()["options"]]
    assert exact == ["n:微博"]


def test_field_errors_show_beside_their_fields(h: Harness) -> None:
    view = h.open_form()
    response = h.submit(view, state(type="gio:A", page="pages/has space", campaign=None, channel="n:微博"))
    body = response.json()
    assert body["response_action"] == "errors"
    assert set(body["errors"]) == {"page", "campaign"}
    response = h.submit(view, state(type="wechat:B", page="//pages/a", scene="中文"))
    assert set(response.json()["errors"]) == {"page", "scene"}
    response = h.submit(view, state(type="gio:C", page="pages/a", campaign="c:bad name!", channel="n:微博"))
    assert set(response.json()["errors"]) == {"campaign"}
    response = h.submit(view, state(type="wechat:A", page="pages/a", width=99))
    assert set(response.json()["errors"]) == {"width"}
    zh_view = h.open_form(user=ZH_USER_ID)
    h.emu.wait_for("users.info")
    time.sleep(0.1)
    response = h.submit(zh_view, state(type="wechat:B", page="pages/a", scene=""), user=ZH_USER_ID)
    assert "B 码需要" in response.json()["errors"]["scene"] and "needs" not in response.json()["errors"]["scene"]
    assert not h.emu.uploads and h.service.recent(limit=5) == []


def test_form_submission_posts_the_tracking_code(h: Harness) -> None:
    view = h.open_form()
    response = h.submit(view, state(type="gio:C", page="pages/item?id=7", campaign="n:spring-sale",
                                    channel="c:门店海报", medium="poster", comments="A4 flyer"))
    assert response.status_code == 200 and response.content == b""
    [upload] = h.uploads_for("spring-sale")
    code = scan(upload.data or b"")
    assert code.kind == "C" and code.page.startswith("pages/item?id=7&aid=")
    record = h.service.recent(limit=1)[0]
    assert (record.campaign, record.channel, record.medium, record.comments) == ("spring-sale", "门店海报", "poster",
                                                                                "A4 flyer")
    gio = h.service.upstream.emulators[1]
    assert "门店海报" in {c["name"] for c in gio.channels}  # created on submit
    assert h.ephemeral(lambda m: "Working" in m["text"])
    assert upload.channel_id == PUBLIC_CHANNEL


def test_identical_code_is_offered_for_reuse(h: Harness) -> None:
    h.command("new pages/index/index type=B scene=same1", user=ZH_USER_ID)
    h.uploads_for("same1")
    view = h.open_form()
    response = h.submit(view, state(type="wechat:B", page="pages/index/index", scene="same1", name="mine"))
    body = response.json()
    assert body["response_action"] == "push"
    text = json.dumps(body["view"], ensure_ascii=False)
    assert "zhang" in text or "张伟" in text
    pushed = {**body["view"], "id": "V9REUSE", "hash": "1.x", "state": {"values": {}}}
    cleared = h.submit(pushed, {"values": {}})
    assert cleared.json() == {"response_action": "clear"}
    uploads = h.uploads_for("same1", 2)
    assert "reusing" in (uploads[-1].initial_comment or "")
    assert len(h.service.recent(limit=10)) == 1


def test_form_opened_from_home_delivers_by_dm(h: Harness) -> None:
    h.event({"type": "app_home_opened", "user": USER_ID, "channel": DM_CHANNEL, "tab": "home"})
    home = h.emu.wait_for("views.publish", ok=True)[-1].response["view"]
    h.action(home, "home_new", "new")
    view = h.emu.views[h.emu.wait_for("views.open", ok=True)[-1].response["view"]["id"]]
    h.submit(view, state(type="wechat:A", page="pages/index/index", width=300, transparent=True))
    [upload] = h.uploads_for("pages_index_index")
    assert upload.channel_id == DM_CHANNEL and upload.filename.endswith(".png")
    assert scan(upload.data or b"").kind == "A"
    published = h.emu.wait_for("views.publish", 2, ok=True)[-1].params["view"]
    assert h.service.recent(limit=1)[0].id in json.dumps(published)


# ---------------------------------------------------------------------------------------------- App Home


def _home(h: Harness, user: str = USER_ID, count: int = 1) -> dict[str, Any]:
    return h.emu.wait_for("views.publish", count, ok=True)[-1].response["view"]


def _home_where(h: Harness, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
    """The latest published Home view once it satisfies ``predicate`` (a text check on its JSON)."""
    deadline = time.monotonic() + timeout
    while True:
        calls = h.emu.calls_to("views.publish", ok=True)
        if calls and predicate(json.dumps(calls[-1].response["view"], ensure_ascii=False)):
            return calls[-1].response["view"]
        assert time.monotonic() < deadline, "the Home tab never showed what was expected"
        time.sleep(0.02)


def test_home_lists_codes_and_manages_them(h: Harness) -> None:
    for i in range(10):
        h.command(f"new pages/index/index type=B scene=home{i}")
    h.command("new pages/index/index type=B scene=zhs", user=ZH_USER_ID)
    h.emu.wait_for("files.completeUploadExternal", 11, timeout=20)
    h.event({"type": "app_home_opened", "user": USER_ID, "channel": DM_CHANNEL, "tab": "home"}, "Ev1")
    home = _home(h)
    text = json.dumps(home, ensure_ascii=False)
    assert "zhs" not in text and "/codes/" in text  # own codes only, links not thumbnails
    assert '"home_page_next"' in text and '"home_page_prev"' not in text
    newest = h.service.recent(limit=1, query="home")[0]
    assert newest.id in text
    h.action(home, "home_page_next", "8")
    page2 = _home_where(h, lambda t: '"home_page_prev"' in t)
    on_page2 = [r.id for r in h.service.recent(limit=2, offset=8, query="home")]
    assert all(code_id in json.dumps(page2) for code_id in on_page2) and newest.id not in json.dumps(page2)
    target = h.service.get(on_page2[0])
    h.action(page2, "home_rename", target.id)
    rename = h.emu.views[h.emu.wait_for("views.open", ok=True)[-1].response["view"]["id"]]
    bad = h.submit(rename, state(name="no spaces allowed"))
    assert bad.json()["response_action"] == "errors" and "name" in bad.json()["errors"]
    good = h.submit(rename, state(name="海报-2024"))
    assert good.status_code == 200 and good.content == b""
    _home_where(h, lambda t: "海报-2024" in t)
    assert h.service.get(target.id).name == "海报-2024"
    h.action(page2, "home_delete", target.id)
    after = _home_where(h, lambda t: "Deleted" in t)
    assert h.service.get(target.id).status is Status.DELETED and target.id not in json.dumps(after)
    h.action(page2, "home_download", target.id)  # a link button click is acked too
    assert h.acks[-1].status_code == 200


def test_admin_home_shows_everyones_codes(h: Harness) -> None:
    h.command("new pages/index/index type=B scene=zh1", user=ZH_USER_ID)
    h.uploads_for("zh1")
    h.event({"type": "app_home_opened", "user": ADMIN_ID, "channel": "D0ADMIN", "tab": "home"}, "Ev2")
    home = json.dumps(_home(h), ensure_ascii=False)
    assert "zh1" in home and "admin" in home
    h.event({"type": "app_home_opened", "user": USER_ID, "channel": DM_CHANNEL, "tab": "messages"}, "Ev3")
    time.sleep(0.2)
    assert len(h.emu.calls_to("views.publish")) == 1


def test_home_thumbnails_when_the_public_url_is_https(make_harness: Any) -> None:
    h = make_harness(minpcode_public_url="https://codes.example.com")
    h.command("new pages/index/index type=B scene=thumb")
    h.uploads_for("thumb")
    h.event({"type": "app_home_opened", "user": USER_ID, "channel": DM_CHANNEL, "tab": "home"}, "Ev4")
    home = _home(h)
    images = [b["accessory"]["image_url"] for b in home["blocks"] if b.get("accessory", {}).get("type") == "image"]
    assert images == [f"https://codes.example.com/codes/{h.service.recent(limit=1)[0].id}.png"]


def test_home_and_the_reuse_offer_show_times_in_the_configured_zone(make_harness: Any) -> None:
    # MINPCODE_TIMEZONE is the one zone every renderer uses: Shanghai is UTC+8, so the day may change too.
    h = make_harness(minpcode_timezone="Asia/Shanghai")
    h.command("new pages/index/index type=B scene=zoned")
    h.uploads_for("zoned")
    made = h.service.recent(limit=1)[0]
    shanghai = local_time(made.created_at, ZoneInfo("Asia/Shanghai"))
    assert shanghai.endswith(" Asia/Shanghai")
    h.event({"type": "app_home_opened", "user": USER_ID, "channel": DM_CHANNEL, "tab": "home"}, "EvZ")
    home = json.dumps(_home(h), ensure_ascii=False)
    assert shanghai in home and " UTC" not in home
    view = h.open_form()
    offer = h.submit(view, state(type="wechat:B", page="pages/index/index", scene="zoned", name="again")).json()
    assert offer["response_action"] == "push"
    text = json.dumps(offer["view"], ensure_ascii=False)
    assert shanghai in text and " UTC" not in text


# ---------------------------------------------------------------------------------------------- settings


def test_missing_slack_settings_are_one_clear_line_and_the_rest_serves(
        make_harness: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="minpcode.slack")
    h = make_harness(slack_bot_token=None)
    response = h.http.post(h.url + "/slack/events", content=b"x")
    assert response.status_code == 503 and "SLACK_BOT_TOKEN" in response.json()["detail"]
    assert h.http.get(h.url + "/healthz").status_code == 200
    assert any("Slack: off" in r.getMessage() and "SLACK_BOT_TOKEN" in r.getMessage() for r in caplog.records)
    h2 = make_harness(slack_signing_secret=None)
    assert "SLACK_SIGNING_SECRET" in h2.http.post(h2.url + "/slack/events", content=b"x").json()["detail"]


def test_wrong_token_is_reported_at_start(make_harness: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="minpcode.slack")
    h = make_harness(slack_bot_token="xoxb-wrong")
    h.emu.wait_for("auth.test")
    deadline = time.monotonic() + 5
    while not any("was refused" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
        time.sleep(0.02)
    assert "invalid_auth" in next(r.getMessage() for r in caplog.records if "was refused" in r.getMessage())
    assert h.http.get(h.url + "/healthz").status_code == 200


def test_missing_scopes_are_named_at_start(make_harness: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="minpcode.slack")
    make_harness(emulator={"scopes": "commands,chat:write,files:write"})
    deadline = time.monotonic() + 5
    while not any("lacks the scopes" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    line = next(r.getMessage() for r in caplog.records if "lacks the scopes" in r.getMessage())
    assert "channels:join" in line and "users:read" in line and "im:write" in line
