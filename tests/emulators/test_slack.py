"""The Slack Web API emulator, driven over real loopback HTTP by the real slack_sdk clients."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.emulators.slack import (
    BOT_USER_ID,
    DM_CHANNEL,
    OTHER_PUBLIC_CHANNEL,
    PRIVATE_CHANNEL,
    PUBLIC_CHANNEL,
    TEAM_ID,
    UPLOAD_METHOD,
    USER_ID,
    ZH_USER_ID,
    Channel,
    MessagingRefused,
    SlackEmulator,
    WaitTimeout,
)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) + b"\r\n--not-a-boundary\r\n" + b"IEND\xaeB`\x82"

MODAL = {
    "type": "modal",
    "callback_id": "qr_create",
    "title": {"type": "plain_text", "text": "New QR code"},
    "submit": {"type": "plain_text", "text": "Create"},
    "blocks": [
        {
            "type": "input",
            "block_id": "campaign",
            "label": {"type": "plain_text", "text": "Campaign"},
            "element": {"type": "plain_text_input", "action_id": "value"},
        }
    ],
}
HOME = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "history"}}]}


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # slack_sdk honours proxy env vars and ignores NO_PROXY (a slack_sdk fact:
    # https://docs.slack.dev/tools/python-slack-sdk/reference/proxy_env_variable_loader.html)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def emu():
    with SlackEmulator() as e:
        yield e


def client_for(emu: SlackEmulator, **kw) -> AsyncWebClient:
    kw.setdefault("token", emu.bot_token)
    return AsyncWebClient(base_url=emu.url + "/api/", **kw)


async def test_auth_test_reports_identity_and_scopes_header(emu: SlackEmulator) -> None:
    emu.scopes = "commands,chat:write,files:write"
    resp = await client_for(emu).auth_test()
    assert resp["ok"] and resp["user_id"] == BOT_USER_ID and resp["bot_id"] and resp["team_id"]
    assert resp.headers["x-oauth-scopes"] == "commands,chat:write,files:write"
    [call] = emu.calls_to("auth.test")
    assert call.headers["authorization"] == "Bearer xoxb-test-token"
    assert call.token == "xoxb-test-token" and call.ok


async def test_invalid_and_missing_token(emu: SlackEmulator) -> None:
    with pytest.raises(SlackApiError) as exc:
        await client_for(emu, token="xoxb-wrong").chat_postMessage(channel=PUBLIC_CHANNEL, text="hi")
    assert exc.value.response["error"] == "invalid_auth"
    assert exc.value.response.status_code == 200
    with pytest.raises(SlackApiError) as exc:
        await AsyncWebClient(base_url=emu.api_url).auth_test()
    assert exc.value.response["error"] == "not_authed"
    assert [c.error for c in emu.calls] == ["invalid_auth", "not_authed"]
    assert emu.messages == []


async def test_post_message_json_is_recorded_and_stored(emu: SlackEmulator) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*QR ready*"}}]
    resp = await client_for(emu).chat_postMessage(channel=PUBLIC_CHANNEL, text="QR ready", blocks=blocks)
    assert resp["channel"] == PUBLIC_CHANNEL
    ts = resp["ts"]
    assert resp["message"]["ts"] == ts and resp["message"]["bot_id"]
    [call] = emu.calls_to("chat.postMessage")
    assert call.params["blocks"] == blocks and call["text"] == "QR ready"
    assert call.headers["content-type"].startswith("application/json")
    assert emu.messages_in(PUBLIC_CHANNEL)[0]["text"] == "QR ready"
    second = await client_for(emu).chat_postMessage(channel="#general", text="again", thread_ts=ts)
    assert second["ts"] > ts and second["message"]["thread_ts"] == ts
    # to a user id: lands in the app DM
    dm = await client_for(emu).chat_postMessage(channel=USER_ID, text="psst")
    assert dm["channel"] == DM_CHANNEL


async def test_post_message_validation(emu: SlackEmulator) -> None:
    client = client_for(emu)
    with pytest.raises(SlackApiError) as exc, pytest.warns(UserWarning, match="`text` argument is missing"):
        await client.chat_postMessage(channel=PUBLIC_CHANNEL, text="")
    assert exc.value.response["error"] == "no_text"
    with pytest.raises(SlackApiError) as exc:
        await client.chat_postMessage(channel="C0NOPE", text="x")
    assert exc.value.response["error"] == "channel_not_found"
    too_many = [{"type": "divider"}] * 51
    with pytest.raises(SlackApiError) as exc:
        await client.chat_postMessage(channel=PUBLIC_CHANNEL, text="x", blocks=too_many)
    assert exc.value.response["error"] == "invalid_blocks"


def test_form_encoded_and_get_requests_with_token_param(emu: SlackEmulator) -> None:
    r = httpx.post(
        emu.api_url + "chat.postMessage",
        data={"token": emu.bot_token, "channel": PUBLIC_CHANNEL, "text": "form", "blocks": json.dumps([])},
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.json()["ok"] is True
    assert "x-oauth-scopes" in r.headers
    r = httpx.get(
        emu.api_url + "conversations.info", params={"channel": PUBLIC_CHANNEL, "token": emu.bot_token}
    )
    assert r.json()["channel"]["is_member"] is True
    r = httpx.post(emu.api_url + "no.suchMethod", headers={"Authorization": f"Bearer {emu.bot_token}"})
    assert r.json() == {"ok": False, "error": "unknown_method", "req_method": "no.suchMethod"}


async def test_files_upload_v2_end_to_end(emu: SlackEmulator) -> None:
    client = client_for(emu)
    parent = await client.chat_postMessage(channel=PUBLIC_CHANNEL, text="here comes the code")
    resp = await client.files_upload_v2(
        content=PNG,
        filename="qr.png",
        title="Spring campaign",
        channel=PUBLIC_CHANNEL,
        initial_comment="Your QR code",
        thread_ts=parent["ts"],
    )
    assert resp["file"]["id"] == resp["files"][0]["id"]
    assert [c.method for c in emu.calls] == [
        "chat.postMessage",
        "files.getUploadURLExternal",
        UPLOAD_METHOD,
        "files.completeUploadExternal",
    ]
    get_url = emu.calls_to("files.getUploadURLExternal")[0]
    assert get_url["filename"] == "qr.png" and int(get_url["length"]) == len(PNG)
    upload_call = emu.calls_to(UPLOAD_METHOD)[0]
    assert "authorization" not in upload_call.headers and upload_call.status == 200
    [up] = emu.uploads
    assert up.data == PNG and up.filename == "qr.png" and up.title == "Spring campaign"
    assert up.channel_id == PUBLIC_CHANNEL and up.initial_comment == "Your QR code"
    assert up.thread_ts == parent["ts"] and up.mimetype == "image/png"
    complete = emu.calls_to("files.completeUploadExternal")[0]
    assert json.loads(complete["files"]) == [{"id": up.file_id, "title": "Spring campaign"}]
    share = emu.messages_in(PUBLIC_CHANNEL)[-1]
    assert share["files"][0]["id"] == up.file_id and share["thread_ts"] == parent["ts"]
    emu.scopes = [s for s in emu.scopes if s != "files:read"]
    with pytest.raises(SlackApiError, match="missing_scope"):  # files.info needs files:read
        await client.files_info(file=up.file_id)
    emu.scopes = [*emu.scopes, "files:read"]
    info = (await client.files_info(file=up.file_id))["file"]
    assert info["size"] == len(PNG) and PUBLIC_CHANNEL in info["shares"]["public"]
    # the private URL serves the bytes back to the bot token
    got = httpx.get(resp["file"]["url_private"], headers={"Authorization": f"Bearer {emu.bot_token}"})
    assert got.content == PNG


def test_sync_webclient_upload_also_works(emu: SlackEmulator) -> None:
    resp = emu.web_client().files_upload_v2(content=PNG, filename="qr.png", channel=PUBLIC_CHANNEL)
    assert resp["file"]["name"] == "qr.png"
    assert emu.uploads[0].data == PNG
    assert emu.calls_to(UPLOAD_METHOD)[0].headers["content-type"] == "application/x-www-form-urlencoded"


def test_upload_url_accepts_multipart_and_checks_length(emu: SlackEmulator) -> None:
    headers = {"Authorization": f"Bearer {emu.bot_token}"}
    got = httpx.post(
        emu.api_url + "files.getUploadURLExternal",
        data={"filename": "a.png", "length": len(PNG)},
        headers=headers,
    ).json()
    r = httpx.post(got["upload_url"], files={"file": ("a.png", PNG, "image/png")})
    assert r.status_code == 200 and r.text == f"OK - {len(PNG)}"
    assert emu.files[got["file_id"]].data == PNG
    bad = httpx.post(
        emu.api_url + "files.getUploadURLExternal", data={"filename": "b.png", "length": 10}, headers=headers
    ).json()
    assert httpx.post(bad["upload_url"], content=b"123").status_code == 400
    assert httpx.post(emu.url + "/upload/v1/unknown", content=b"123").status_code == 404
    missing = httpx.post(
        emu.api_url + "files.getUploadURLExternal", data={"filename": "c.png"}, headers=headers
    )
    assert missing.json()["error"] == "missing_argument"
    # completing a file whose bytes never arrived
    r = httpx.post(
        emu.api_url + "files.completeUploadExternal",
        data={"files": json.dumps([{"id": bad["file_id"]}]), "channel_id": PUBLIC_CHANNEL},
        headers=headers,
    )
    assert r.json()["error"] == "file_not_found"


async def test_upload_url_failure_surfaces_as_request_error(emu: SlackEmulator) -> None:
    from slack_sdk.errors import SlackRequestError

    emu.fail_upload_next(status=500)
    with pytest.raises(SlackRequestError, match="status: 500"):
        await client_for(emu).files_upload_v2(content=PNG, filename="qr.png", channel=PUBLIC_CHANNEL)
    assert emu.uploads == []


async def test_not_in_channel_then_join_then_success(emu: SlackEmulator) -> None:
    client = client_for(emu)
    with pytest.raises(SlackApiError) as exc:
        await client.files_upload_v2(content=PNG, filename="qr.png", channel=OTHER_PUBLIC_CHANNEL)
    assert exc.value.response["error"] == "not_in_channel"
    with pytest.raises(SlackApiError) as exc:
        await client.chat_postMessage(channel=OTHER_PUBLIC_CHANNEL, text="hi")
    assert exc.value.response["error"] == "not_in_channel"
    joined = await client.conversations_join(channel=OTHER_PUBLIC_CHANNEL)
    assert joined["channel"]["id"] == OTHER_PUBLIC_CHANNEL and "warning" not in joined
    resp = await client.files_upload_v2(content=PNG, filename="qr.png", channel=OTHER_PUBLIC_CHANNEL)
    assert resp["file"]["id"] == emu.uploads[0].file_id and emu.uploads[0].channel_id == OTHER_PUBLIC_CHANNEL
    again = await client.conversations_join(channel=OTHER_PUBLIC_CHANNEL)
    assert again["warning"] == "already_in_channel"


async def test_chat_write_public_helps_messages_not_uploads() -> None:
    with SlackEmulator(scopes="chat:write,chat:write.public,files:write") as emu:
        client = client_for(emu)
        await client.chat_postMessage(channel=OTHER_PUBLIC_CHANNEL, text="hi")
        with pytest.raises(SlackApiError) as exc:
            await client.files_upload_v2(content=PNG, filename="qr.png", channel=OTHER_PUBLIC_CHANNEL)
        assert exc.value.response["error"] == "not_in_channel"


async def test_private_channel_join_refused(emu: SlackEmulator) -> None:
    client = client_for(emu)
    with pytest.raises(SlackApiError) as exc:
        await client.chat_postMessage(channel=PRIVATE_CHANNEL, text="hi")
    assert exc.value.response["error"] == "channel_not_found"
    with pytest.raises(SlackApiError) as exc:
        await client.conversations_join(channel=PRIVATE_CHANNEL)
    assert exc.value.response["error"] == "method_not_supported_for_channel_type"
    emu.add_channel("G0TEAM", kind="private", name="team", is_member=True)
    resp = await client.files_upload_v2(content=PNG, filename="qr.png", channel="G0TEAM")
    assert resp["ok"] and emu.uploads[0].channel_id == "G0TEAM"


async def test_ratelimited_surfaces_retry_after(emu: SlackEmulator) -> None:
    emu.ratelimit_next("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as exc:
        await client_for(emu).chat_postMessage(channel=PUBLIC_CHANNEL, text="hi")
    response = exc.value.response
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response["error"] == "ratelimited" and response.data == {"ok": False, "error": "ratelimited"}
    assert emu.messages == []


async def test_rate_limit_retry_handler_recovers(emu: SlackEmulator) -> None:
    emu.ratelimit_next("chat.postMessage", retry_after=1)
    client = client_for(emu, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    started = time.monotonic()
    resp = await client.chat_postMessage(channel=PUBLIC_CHANNEL, text="hi")
    assert resp["ok"] and time.monotonic() - started >= 1.0
    assert [c.status for c in emu.calls_to("chat.postMessage")] == [429, 200]
    assert len(emu.messages) == 1


async def test_sliding_window_rate_limit() -> None:
    now = [100.0]
    with SlackEmulator(clock=lambda: now[0]) as emu:
        emu.set_rate_limit("conversations.join", limit=2, per_seconds=60)
        client = client_for(emu)
        await client.conversations_join(channel=PUBLIC_CHANNEL)
        await client.conversations_join(channel=PUBLIC_CHANNEL)
        with pytest.raises(SlackApiError) as exc:
            await client.conversations_join(channel=PUBLIC_CHANNEL)
        assert exc.value.response.headers["Retry-After"] == "60"
        now[0] += 61
        assert (await client.conversations_join(channel=PUBLIC_CHANNEL))["ok"]


async def test_fail_next_and_missing_scope(emu: SlackEmulator) -> None:
    client = client_for(emu)
    emu.fail_next("chat.postMessage", "fatal_error", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError, match="fatal_error"):
            await client.chat_postMessage(channel=PUBLIC_CHANNEL, text="x")
    assert (await client.chat_postMessage(channel=PUBLIC_CHANNEL, text="x"))["ok"]
    with pytest.raises(ValueError):
        emu.fail_next("chat.postMesage", "typo")
    emu.scopes = ["chat:write"]
    with pytest.raises(SlackApiError) as exc:
        await client.files_upload_v2(content=PNG, filename="qr.png", channel=PUBLIC_CHANNEL)
    assert exc.value.response["error"] == "missing_scope"
    assert exc.value.response["needed"] == "files:write" and exc.value.response["provided"] == "chat:write"


async def test_views_open_update_push_publish(emu: SlackEmulator) -> None:
    client = client_for(emu)
    trigger = emu.issue_trigger_id()
    opened = await client.views_open(trigger_id=trigger, view=MODAL)
    view = opened["view"]
    assert view["id"].startswith("V") and view["root_view_id"] == view["id"]
    assert view["state"] == {"values": {}} and view["callback_id"] == "qr_create"
    [call] = emu.calls_to("views.open")
    assert call["view"] == MODAL and call["trigger_id"] == trigger

    with pytest.raises(SlackApiError) as exc:  # triggers are single-use
        await client.views_open(trigger_id=trigger, view=MODAL)
    assert exc.value.response["error"] == "exchanged_trigger_id"

    loading = {**MODAL, "title": {"type": "plain_text", "text": "Loaded"}}
    updated = await client.views_update(view_id=view["id"], view=loading, hash=view["hash"])
    assert updated["view"]["id"] == view["id"] and updated["view"]["hash"] != view["hash"]
    assert emu.views[view["id"]]["title"]["text"] == "Loaded"
    with pytest.raises(SlackApiError) as exc:
        await client.views_update(view_id=view["id"], view=loading, hash=view["hash"])
    assert exc.value.response["error"] == "hash_conflict"
    with pytest.raises(SlackApiError) as exc:
        await client.views_update(view_id="V0NOPE", view=loading)
    assert exc.value.response["error"] == "not_found"

    pushed = await client.views_push(trigger_id=emu.issue_trigger_id(view_id=view["id"]), view=MODAL)
    assert pushed["view"]["previous_view_id"] == view["id"] and pushed["view"]["root_view_id"] == view["id"]
    await client.views_push(trigger_id=emu.issue_trigger_id(view_id=view["id"]), view=MODAL)
    with pytest.raises(SlackApiError) as exc:
        await client.views_push(trigger_id=emu.issue_trigger_id(view_id=view["id"]), view=MODAL)
    assert exc.value.response["error"] == "push_limit_reached"
    assert len(emu.view_stacks[view["id"]]) == 3

    home = await client.views_publish(user_id=USER_ID, view=HOME)
    again = await client.views_publish(user_id=USER_ID, view=HOME, hash=home["view"]["hash"])
    assert again["view"]["id"] == home["view"]["id"] and emu.home_views[USER_ID]["type"] == "home"
    assert [c.method for c in emu.calls if c.ok] == [
        "views.open",
        "views.update",
        "views.push",
        "views.push",
        "views.publish",
        "views.publish",
    ]


async def test_view_validation(emu: SlackEmulator) -> None:
    client = client_for(emu)
    long_title = {**MODAL, "title": {"type": "plain_text", "text": "x" * 25}}
    with pytest.raises(SlackApiError) as exc:
        await client.views_open(trigger_id="123.456.abc", view=long_title)
    assert exc.value.response["error"] == "invalid_arguments"
    assert "json-pointer:/view/title/text" in exc.value.response["response_metadata"]["messages"][0]
    too_many = {**MODAL, "blocks": [{"type": "divider"}] * 101}
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        await client.views_open(trigger_id="123.456.abc", view=too_many)
    no_submit = {k: v for k, v in MODAL.items() if k != "submit"}
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        await client.views_open(trigger_id="123.456.abc", view=no_submit)
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        await client.views_open(trigger_id="123.456.abc", view=HOME)
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        await client.views_publish(user_id=USER_ID, view=MODAL)
    with pytest.raises(SlackApiError, match="view_too_large"):
        big = {**MODAL, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3000}}] * 90}
        await client.views_open(trigger_id="123.456.abc", view=big)
    # the failed attempts did not consume the trigger
    assert (await client.views_open(trigger_id="123.456.abc", view=MODAL))["ok"]


async def test_trigger_expiry_and_strict_mode() -> None:
    now = [0.0]
    with SlackEmulator(strict_triggers=True, clock=lambda: now[0]) as emu:
        client = client_for(emu)
        with pytest.raises(SlackApiError, match="invalid_trigger_id"):
            await client.views_open(trigger_id="made.up.id", view=MODAL)
        stale = emu.issue_trigger_id()
        now[0] += 3.5
        with pytest.raises(SlackApiError, match="expired_trigger_id"):
            await client.views_open(trigger_id=stale, view=MODAL)
        fresh = emu.issue_trigger_id()
        emu.expire_next_trigger()
        with pytest.raises(SlackApiError, match="expired_trigger_id"):
            await client.views_open(trigger_id=fresh, view=MODAL)
        assert (await client.views_open(trigger_id=fresh, view=MODAL))["ok"]
        killed = emu.issue_trigger_id()
        emu.expire_trigger(killed)
        with pytest.raises(SlackApiError, match="expired_trigger_id"):
            await client.views_open(trigger_id=killed, view=MODAL)


async def test_users_info_locale_and_conversations_info(emu: SlackEmulator) -> None:
    client = client_for(emu)
    user = (await client.users_info(user=ZH_USER_ID, include_locale=True))["user"]
    assert user["locale"] == "zh-CN" and user["tz"] == "Asia/Shanghai" and user["tz_offset"] == 28800
    assert "locale" not in (await client.users_info(user=USER_ID))["user"]
    with pytest.raises(SlackApiError, match="user_not_found"):
        await client.users_info(user="U0NOBODY")
    info = (await client.conversations_info(channel=OTHER_PUBLIC_CHANNEL))["channel"]
    assert info["is_member"] is False and info["is_private"] is False and info["name"] == "random"
    assert emu.calls_to("conversations.info")[0].http_method == "GET"
    with pytest.raises(SlackApiError, match="channel_not_found"):
        await client.conversations_info(channel=PRIVATE_CHANNEL)


async def test_ephemeral_update_delete_and_schedule(emu: SlackEmulator) -> None:
    client = client_for(emu)
    eph = await client.chat_postEphemeral(channel=PUBLIC_CHANNEL, user=USER_ID, text="only you")
    assert eph["message_ts"] and emu.ephemerals[0]["to"] == USER_ID
    emu.add_channel("C0SMALL", Channel(name="small", members={ZH_USER_ID}))
    with pytest.raises(SlackApiError, match="user_not_in_channel"):
        await client.chat_postEphemeral(channel="C0SMALL", user=USER_ID, text="x")
    posted = await client.chat_postMessage(channel=PUBLIC_CHANNEL, text="v1")
    updated = await client.chat_update(channel=PUBLIC_CHANNEL, ts=posted["ts"], text="v2")
    assert updated["text"] == "v2" and emu.messages_in(PUBLIC_CHANNEL)[0]["text"] == "v2"
    with pytest.raises(SlackApiError, match="message_not_found"):
        await client.chat_update(channel=PUBLIC_CHANNEL, ts="1.000000", text="v3")
    await client.chat_delete(channel=PUBLIC_CHANNEL, ts=posted["ts"])
    assert emu.messages_in(PUBLIC_CHANNEL) == []
    post_at = int(time.time()) + 3600
    sched = await client.chat_scheduleMessage(channel=PUBLIC_CHANNEL, post_at=post_at, text="summary")
    assert sched["scheduled_message_id"].startswith("Q") and sched["post_at"] == post_at
    with pytest.raises(SlackApiError, match="time_in_past"):
        await client.chat_scheduleMessage(channel=PUBLIC_CHANNEL, post_at=int(time.time()) - 10, text="x")
    listed = await client.chat_scheduledMessages_list(channel=PUBLIC_CHANNEL)
    assert [m["id"] for m in listed["scheduled_messages"]] == [sched["scheduled_message_id"]]


def test_wait_for_polls_and_times_out(emu: SlackEmulator) -> None:
    def later() -> None:
        time.sleep(0.2)
        emu.web_client().chat_postMessage(channel=PUBLIC_CHANNEL, text="after the ack")

    threading.Thread(target=later).start()
    [call] = emu.wait_for("chat.postMessage", timeout=5)
    assert call["text"] == "after the ack" and call.ok
    with pytest.raises(WaitTimeout, match="chat.postMessage"):
        emu.wait_for("chat.postMessage", count=2, timeout=0.1)


async def test_wait_for_async_and_latency() -> None:
    with SlackEmulator(latency=0.2) as emu:
        client = client_for(emu)
        task = asyncio.create_task(client.auth_test())
        calls = await emu.wait_for_async("auth.test", timeout=5)
        assert calls[0].ok and (await task)["ok"]
        started = time.monotonic()
        await client.auth_test()
        assert time.monotonic() - started >= 0.2
        emu.reset()
        assert emu.calls == [] and emu.uploads == []


# ---------------------------------------------------------------------------------------------- events


SIGNING_SECRET = "emulated-signing-secret"


class Receiver:
    """The app's request URL: records each delivery (headers, raw body) and answers ``status``."""

    def __init__(self) -> None:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response
        from starlette.routing import Route

        self.got: list[tuple[dict[str, str], bytes]] = []
        self.status = 200

        async def events(request: Request) -> Response:
            self.got.append(({k.lower(): v for k, v in request.headers.items()}, await request.body()))
            return Response(status_code=self.status)

        from bot.sandbox.server import ServerThread

        self.server = ServerThread(Starlette(routes=[Route("/slack/events", events, methods=["POST"])])).start()
        self.url = self.server.url + "/slack/events"

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for _, raw in self.got]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.stop()


def manifest(read_only: bool = False, events: tuple[str, ...] = ("app_home_opened", "message.im", "app_mention"),
             scopes: tuple[str, ...] = ("chat:write", "im:history", "app_mentions:read")) -> dict[str, Any]:
    return {"features": {"app_home": {"home_tab_enabled": True, "messages_tab_enabled": True,
                                      "messages_tab_read_only_enabled": read_only}},
            "oauth_config": {"scopes": {"bot": list(scopes)}},
            "settings": {"event_subscriptions": {"bot_events": list(events)}}}


def test_a_read_only_or_missing_messages_tab_takes_no_message(emu: SlackEmulator, receiver: Receiver) -> None:
    emu.deliver_events_to(receiver.url, SIGNING_SECRET)
    emu.install(manifest(read_only=True))
    with pytest.raises(MessagingRefused, match="turned off"):
        emu.user_says(USER_ID, "help")
    shut = manifest()
    shut["features"]["app_home"]["messages_tab_enabled"] = False
    emu.install(shut)
    with pytest.raises(MessagingRefused):
        emu.user_says(USER_ID, "help")
    assert emu.messages_in(DM_CHANNEL) == [] and receiver.got == [] and emu.deliveries == []


def test_a_dm_is_delivered_as_message_im_signed_in_the_documented_envelope(emu: SlackEmulator,
                                                                           receiver: Receiver) -> None:
    from handlers.slack.gate import signature_ok

    emu.install(manifest())
    emu.deliver_events_to(receiver.url, SIGNING_SECRET)
    ts = emu.user_says(USER_ID, "new pages/a?x=1&y=<2> via @minpcode https://example.com/p")
    [(headers, raw)] = receiver.got
    assert signature_ok(SIGNING_SECRET, raw, headers["x-slack-request-timestamp"], headers["x-slack-signature"],
                        time.time())
    assert "x-slack-retry-num" not in headers and headers["content-type"] == "application/json"
    body = json.loads(raw)
    assert body["type"] == "event_callback" and body["event_id"].startswith("Ev") and body["api_app_id"]
    assert body["team_id"] == TEAM_ID and isinstance(body["event_time"], int)
    assert body["authorizations"][0]["user_id"] == BOT_USER_ID and body["authorizations"][0]["is_bot"] is True
    event = body["event"]
    assert (event["type"], event["channel"], event["channel_type"], event["user"]) == (
        "message", DM_CHANNEL, "im", USER_ID)
    assert event["ts"] == event["event_ts"] == ts and "subtype" not in event and "thread_ts" not in event
    assert event["text"] == f"new pages/a?x=1&amp;y=&lt;2&gt; via <@{BOT_USER_ID}> <https://example.com/p>"
    [delivery] = emu.deliveries
    assert delivery.status == 200 and delivery.event_id == body["event_id"]

    again = emu.redeliver(body["event_id"])
    headers, raw = receiver.got[-1]
    assert (headers["x-slack-retry-num"], headers["x-slack-retry-reason"]) == ("1", "http_timeout")
    assert json.loads(raw) == body and again.retry_num == 1


def test_a_mention_is_delivered_only_where_the_bot_is_and_as_subscribed(emu: SlackEmulator,
                                                                        receiver: Receiver) -> None:
    emu.install(manifest())
    emu.deliver_events_to(receiver.url, SIGNING_SECRET)
    emu.user_says(USER_ID, "nothing for the bot", channel=PUBLIC_CHANNEL)
    assert receiver.got == []  # no message.channels subscription
    parent = emu.user_says(USER_ID, "@minpcode help", channel=PUBLIC_CHANNEL)
    emu.user_says(USER_ID, "@minpcode list", channel=PUBLIC_CHANNEL, thread_ts=parent)
    emu.user_says(USER_ID, "@minpcode help", channel=OTHER_PUBLIC_CHANNEL)  # the bot is not in it
    first, second = (b["event"] for b in receiver.bodies())
    assert (first["type"], first["channel"], first["ts"]) == ("app_mention", PUBLIC_CHANNEL, parent)
    assert "channel_type" not in first and "thread_ts" not in first
    assert second["thread_ts"] == parent and second["text"] == f"<@{BOT_USER_ID}> list"
    emu.install(manifest(scopes=("chat:write", "im:history")))  # subscribed, but without app_mentions:read
    emu.user_says(USER_ID, "@minpcode help", channel=PUBLIC_CHANNEL)
    emu.install(manifest(events=("message.im",)))
    emu.user_says(USER_ID, "@minpcode help", channel=PUBLIC_CHANNEL)
    assert len(receiver.got) == 2


def test_a_file_in_the_dm_is_a_file_share_and_the_bots_own_posts_come_back(emu: SlackEmulator,
                                                                            receiver: Receiver) -> None:
    emu.install(manifest())
    emu.deliver_events_to(receiver.url, SIGNING_SECRET)
    file = emu.add_user_file("rows.csv", b"page,type,scene\npages/a,B,x\n", USER_ID)
    emu.user_says(USER_ID, "bulk", files=[file])
    event = receiver.bodies()[0]["event"]
    assert event["subtype"] == "file_share" and event["files"][0]["id"] == file["id"]
    emu.web_client().chat_postMessage(channel=DM_CHANNEL, text="the bot answers")
    deadline = time.monotonic() + 5
    while len(receiver.got) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    echoed = receiver.bodies()[1]["event"]
    assert echoed["bot_id"] and echoed["user"] == BOT_USER_ID and echoed["channel_type"] == "im"
    emu.web_client().chat_postMessage(channel=PUBLIC_CHANNEL, text="not a DM: no message.channels")
    time.sleep(0.3)
    assert len(receiver.got) == 2


async def test_held_answers_take_effect_and_are_answered_when_released(emu: SlackEmulator) -> None:
    client = client_for(emu)
    emu.hold_answers("files.completeUploadExternal")
    upload = asyncio.create_task(client.files_upload_v2(content=PNG, filename="qr.png", channel=PUBLIC_CHANNEL))
    await emu.wait_for_async("files.completeUploadExternal", timeout=5)
    await asyncio.sleep(0.2)
    assert [u.filename for u in emu.uploads] == ["qr.png"] and not upload.done()  # shared, not yet answered
    assert (await client.chat_postMessage(channel=PUBLIC_CHANNEL, text="other methods answer"))["ok"]
    emu.release_answers()
    assert (await asyncio.wait_for(upload, 5))["ok"]
    with pytest.raises(ValueError):
        emu.hold_answers("chat.postMesage")
