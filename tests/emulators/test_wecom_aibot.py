"""The AI-bot gateway emulator keeps the rules of WeCom's pages (cited in tests/emulators/wecom_aibot.py),
checked with a plain websocket client rather than ours."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.emulators.wecom_aibot import ASSUMED, BOT_ID, SECRET, AiBotGateway


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gw(clock: Clock) -> Iterator[AiBotGateway]:
    with AiBotGateway(clock=clock) as gateway:
        yield gateway


def call(ws: ClientConnection, cmd: str, req_id: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"cmd": cmd, "headers": {"req_id": req_id}}
    if body is not None:
        frame["body"] = body
    ws.send(json.dumps(frame))
    while True:
        answer = json.loads(ws.recv(timeout=5))
        if answer.get("headers", {}).get("req_id") == req_id and "cmd" not in answer:
            return dict(answer)


def subscribed(gw: AiBotGateway) -> ClientConnection:
    ws = connect(gw.url, legacy=True)  # the tests close it (a with block, or the gateway's drop)
    assert call(ws, "aibot_subscribe", "aibot_subscribe_1", {"bot_id": BOT_ID, "secret": SECRET})["errcode"] == 0
    return ws


def pushed(ws: ClientConnection) -> dict[str, Any]:
    return dict(json.loads(ws.recv(timeout=5)))


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(out, "PNG")
    return out.getvalue()


def test_bad_credentials_are_refused_and_the_connection_closed(gw: AiBotGateway) -> None:
    with connect(gw.url) as ws:
        answer = call(ws, "aibot_subscribe", "aibot_subscribe_x", {"bot_id": BOT_ID, "secret": "nope"})
        assert answer["errcode"] == ASSUMED["bad_credentials"][0]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    assert gw.refused_subscriptions == 1 and gw.subscriptions == 0


def test_frames_before_subscribing_are_refused(gw: AiBotGateway) -> None:
    with connect(gw.url) as ws:
        assert call(ws, "ping", "ping_1")["errcode"] == ASSUMED["not_subscribed"][0]


def test_heartbeat_is_answered(gw: AiBotGateway) -> None:
    with subscribed(gw) as ws:
        assert call(ws, "ping", "ping_1") == {"headers": {"req_id": "ping_1"}, "errcode": 0, "errmsg": "ok"}
    assert gw.pings == 1


def test_group_message_carries_the_mention_and_a_stream_finishes_it(gw: AiBotGateway) -> None:
    with subscribed(gw) as ws:
        msgid = gw.say("zhangsan", "帮助", chat="group-9")
        frame = pushed(ws)
        body = frame["body"]
        assert frame["cmd"] == "aibot_msg_callback" and body["msgid"] == msgid
        assert body["chattype"] == "group" and body["chatid"] == "group-9" and body["from"] == {"userid": "zhangsan"}
        assert body["text"]["content"] == "@minpcode 帮助"
        req = frame["headers"]["req_id"]
        partial = {"msgtype": "stream", "stream": {"id": "s1", "finish": False, "content": "…"}}
        assert call(ws, "aibot_respond_msg", req, partial)["errcode"] == 0 and not gw.finished(msgid or "")
        data = png()
        done = {"msgtype": "stream", "stream": {"id": "s1", "finish": True, "content": "ok", "msg_item": [
            {"msgtype": "image", "image": {"base64": base64.b64encode(data).decode(), "md5": hashlib.md5(data).hexdigest()}}]}}
        assert call(ws, "aibot_respond_msg", req, done)["errcode"] == 0 and gw.finished(msgid or "")
        # finished: a further refresh is refused
        assert call(ws, "aibot_respond_msg", req, partial)["errcode"] == ASSUMED["answered"][0]


@pytest.mark.parametrize(("stream", "why"), [
    ({"id": "s", "finish": True, "content": "字" * 6827}, "too_long"),  # 20481 bytes of UTF-8
    ({"id": "s", "finish": False, "content": "x", "msg_item": [{"msgtype": "image", "image": {}}]}, "bad_image"),
    ({"id": "s", "finish": True, "content": "x", "msg_item": [
        {"msgtype": "image", "image": {"base64": base64.b64encode(b"GIF89a....").decode(),
                                       "md5": hashlib.md5(b"GIF89a....").hexdigest()}}]}, "bad_image"),
])
def test_streams_keep_the_page_s_limits(gw: AiBotGateway, stream: dict[str, Any], why: str) -> None:
    with subscribed(gw) as ws:
        gw.say("lisi", "帮助")
        req = pushed(ws)["headers"]["req_id"]
        assert call(ws, "aibot_respond_msg", req, {"msgtype": "stream", "stream": stream})["errcode"] == ASSUMED[why][0]


def test_a_stream_is_refused_after_its_six_minutes(gw: AiBotGateway, clock: Clock) -> None:
    with subscribed(gw) as ws:
        gw.say("lisi", "帮助")
        req = pushed(ws)["headers"]["req_id"]
        clock.now += 6 * 60 + 1
        body = {"msgtype": "stream", "stream": {"id": "s", "finish": True, "content": "late"}}
        assert call(ws, "aibot_respond_msg", req, body)["errcode"] == ASSUMED["too_late"][0]


def test_a_fourth_waiting_message_is_held_back(gw: AiBotGateway) -> None:
    with subscribed(gw):
        assert all(gw.say("wangwu", f"帮助 {n}") for n in range(3))
        assert gw.say("wangwu", "帮助 3") is None and gw.held_back == [("wangwu", "帮助 3")]


def test_unanswered_callbacks_are_pushed_again_after_the_next_subscription(gw: AiBotGateway) -> None:
    ws = subscribed(gw)
    msgid = gw.say("zhaoliu", "帮助")
    first = pushed(ws)
    gw.drop()
    with subscribed(gw) as again:
        assert pushed(again) == first and gw.callback(msgid or "").deliveries == 2


def test_a_second_subscription_displaces_the_first(gw: AiBotGateway) -> None:
    old = subscribed(gw)
    with subscribed(gw):
        event = pushed(old)
        assert event["cmd"] == "aibot_event_callback" and event["body"]["event"]["eventtype"] == "disconnected_event"
        with pytest.raises(ConnectionClosed):
            old.recv(timeout=5)


def test_media_is_uploaded_in_chunks_and_pushed(gw: AiBotGateway) -> None:
    data = png() * 3
    with subscribed(gw) as ws:
        init = call(ws, "aibot_upload_media_init", "up_1", {"type": "image", "filename": "a.png", "total_size": len(data),
                                                           "total_chunks": 2, "md5": hashlib.md5(data).hexdigest()})
        upload_id = init["body"]["upload_id"]
        half = len(data) // 2
        for index, part in ((1, data[:half]), (2, data[half:])):
            chunk = {"upload_id": upload_id, "chunk_index": index, "base64_data": base64.b64encode(part).decode()}
            assert call(ws, "aibot_upload_media_chunk", f"up_c{index}", chunk)["errcode"] == 0
        media_id = call(ws, "aibot_upload_media_finish", "up_f", {"upload_id": upload_id})["body"]["media_id"]
        assert gw.media[media_id][2] == data
        sent = call(ws, "aibot_send_msg", "send_1", {"chatid": "group-1", "msgtype": "image", "image": {"media_id": media_id}})
        assert sent["errcode"] == 0 and gw.sent[-1]["image"]["media_id"] == media_id
        unknown = {"chatid": "group-1", "msgtype": "image", "image": {"media_id": "nope"}}
        assert call(ws, "aibot_send_msg", "send_2", unknown)["errcode"] == ASSUMED["bad_body"][0]
