"""The AI bot's long-connection protocol: frame names, the platform's limits, and the frames we build.

Every rule here is from WeCom's pages, cited where it lives; where they are silent a comment says what
we assumed, and the client does not depend on it:

* the long connection (frames, subscribe, heartbeat, replies, pushes, uploads):
  https://developer.work.weixin.qq.com/document/path/101463 (and the official SDK
  github.com/WecomTeam/aibot-node-sdk, src/types/api.ts, for the exact field names);
* receiving messages: https://developer.work.weixin.qq.com/document/path/100719;
* receiving events: https://developer.work.weixin.qq.com/document/path/101027;
* passive replies and streams: https://developer.work.weixin.qq.com/document/path/101031;
* active replies: https://developer.work.weixin.qq.com/document/path/101138.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from bot.text import clip_utf8
from handlers import grammar

DEFAULT_URL = "wss://openws.work.weixin.qq.com"  # 101463 WebSocket 连接地址

# -- commands (101463) --------------------------------------------------------------------------------------
SUBSCRIBE = "aibot_subscribe"
PING = "ping"
RESPOND = "aibot_respond_msg"
RESPOND_WELCOME = "aibot_respond_welcome_msg"
RESPOND_UPDATE = "aibot_respond_update_msg"
SEND = "aibot_send_msg"
UPLOAD_INIT, UPLOAD_CHUNK, UPLOAD_FINISH = "aibot_upload_media_init", "aibot_upload_media_chunk", \
    "aibot_upload_media_finish"
MSG_CALLBACK = "aibot_msg_callback"
EVENT_CALLBACK = "aibot_event_callback"
CALLBACKS = (MSG_CALLBACK, EVENT_CALLBACK)

# -- limits ---------------------------------------------------------------------------------------------------
HEARTBEAT = 30.0
"""Seconds between pings: the official SDK's default (101463 保持心跳 asks for a heartbeat, no interval)."""
MISSED_PINGS = 2
"""Pings without an answer before the connection is taken for dead (the official SDK's rule)."""
ACK_TIMEOUT = 5.0
"""Seconds to wait for the gateway's answer to a frame (the official SDK's; a card update must be within 5 s)."""
STREAM_MAX_BYTES = 20480
"""101031: a stream's ``content`` is at most 20480 bytes of UTF-8."""
MSG_ITEMS_MAX = 10
"""101031: at most 10 ``msg_item`` images, and only on the frame that finishes the stream."""
IMAGE_MAX_BYTES = 10 * 1024 * 1024
"""101031: a ``msg_item`` image is at most 10 MB before base64, JPG or PNG."""
IMAGE_MIMES = ("image/png", "image/jpeg")
STREAM_WINDOW = 6 * 60.0
"""100719/101031: WeCom takes a stream's refreshes for 6 minutes from the person's message; after that the
answer is pushed (``aibot_send_msg``). We stop 20 s short, for the clocks and the wire."""
STREAM_MARGIN = 20.0
IN_FLIGHT_PER_PERSON = 3
"""100719: a person has at most 3 messages waiting for the bot's answer; WeCom holds back a fourth. So each
message's stream is finished as soon as its answer is ready (never kept open after it), and the work of
different messages runs at once (front.py ``WORKERS``), never one person's behind another's."""
RESPONSE_URL_WINDOW = 3600.0
"""101138: a callback's ``response_url`` takes one POST within an hour (unused over the long connection:
its replies and pushes go on the socket)."""
CHUNK_BYTES = 512 * 1024
"""101463 上传临时素材: chunks of at most 512 KB before base64, at most 100 of them."""
CHUNKS_MAX = 100
MEDIA_MAX_BYTES = {"image": 10 * 1024 * 1024, "file": 20 * 1024 * 1024}
"""101463 上传临时素材 注意事项: the size limits per type, as for WeCom's temporary media."""
SEEN_TTL = 24 * 3600.0
"""How long a msgid is remembered against redelivery. The pages do not say whether or for how long the
gateway resends an unanswered callback after a reconnect: our assumption, generous on purpose."""




@dataclass(frozen=True)
class Inbound:
    """One callback WeCom pushed: a message (100719) or an event (101027)."""

    cmd: str
    req_id: str
    body: dict[str, Any]

    @classmethod
    def of(cls, frame: dict[str, Any]) -> Inbound:
        return cls(str(frame.get("cmd") or ""), str((frame.get("headers") or {}).get("req_id") or ""),
                   dict(frame.get("body") or {}))

    @property
    def msgid(self) -> str:
        return str(self.body.get("msgid") or "")

    @property
    def user(self) -> str:
        return str((self.body.get("from") or {}).get("userid") or "")

    @property
    def group(self) -> bool:
        return self.body.get("chattype") == "group"

    @property
    def chat_id(self) -> str | None:
        """The group's id; None in a single chat (100719: ``chatid`` is given for groups)."""
        return str(self.body["chatid"]) if self.group and self.body.get("chatid") else None

    @property
    def push_to(self) -> str:
        """Where a push (``aibot_send_msg``) for this conversation goes: the group, or the person.
        101463 主动推送消息: ``chatid`` is the group's id, or the userid for a single chat."""
        return self.chat_id or self.user

    @property
    def msgtype(self) -> str:
        return str(self.body.get("msgtype") or "")

    @property
    def text(self) -> str:
        """The text of a text message (in a group it starts with the ``@bot`` mention: the grammar drops it)."""
        if self.msgtype == "text":
            return str((self.body.get("text") or {}).get("content") or "")
        if self.msgtype == "voice":  # 100719: a voice message arrives transcribed
            return str((self.body.get("voice") or {}).get("content") or "")
        if self.msgtype == "mixed":  # 100719: text with images (a mention with a picture): its text parts
            items = (self.body.get("mixed") or {}).get("msg_item") or []
            return " ".join(str((i.get("text") or {}).get("content") or "") for i in items
                            if isinstance(i, dict) and i.get("msgtype") == "text").strip()
        return ""

    @property
    def command(self) -> str:
        """The text without the leading ``@bot`` mention(s) a group message starts with (100719: in a group the
        content includes the mention): the grammar's one rule for a leading mention."""
        return grammar.without_mention(self.text).strip() if self.group else self.text.strip()

    @property
    def event(self) -> dict[str, Any]:
        return dict(self.body.get("event") or {})

    @property
    def event_type(self) -> str:
        return str(self.event.get("eventtype") or "")


def frame(cmd: str, req_id: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"cmd": cmd, "headers": {"req_id": req_id}}
    if body is not None:
        out["body"] = body
    return out


def new_req_id(cmd: str) -> str:
    """The SDK prefixes its own request ids with the command; the gateway echoes them in its answer."""
    return f"{cmd}_{secrets.token_hex(8)}"


def new_stream_id() -> str:
    return f"s{secrets.token_hex(8)}"


def clip(content: str, limit: int = STREAM_MAX_BYTES) -> str:
    """``content`` cut to ``limit`` bytes, saying so at the end (never cut silently)."""
    if len(content.encode("utf-8")) <= limit:
        return content
    tail = "\n\n…（内容过长，已截断 / cut: too long）"
    return clip_utf8(content, limit - len(tail.encode("utf-8"))) + tail


def stream(stream_id: str, content: str, *, finish: bool, images: list[bytes] | None = None) -> dict[str, Any]:
    """A ``stream`` reply (101031). Images go only on the finishing frame."""
    body: dict[str, Any] = {"id": stream_id, "finish": finish, "content": clip(content)}
    if finish and images:
        body["msg_item"] = [{"msgtype": "image", "image": {"base64": base64.b64encode(data).decode("ascii"),
                                                           "md5": hashlib.md5(data).hexdigest()}}
                            for data in images[:MSG_ITEMS_MAX]]
    return {"msgtype": "stream", "stream": body}


def markdown(chat_id: str, content: str) -> dict[str, Any]:
    """A pushed markdown message (101463 主动推送消息)."""
    return {"chatid": chat_id, "msgtype": "markdown", "markdown": {"content": clip(content)}}


def media_message(chat_id: str, kind: str, media_id: str) -> dict[str, Any]:
    return {"chatid": chat_id, "msgtype": kind, kind: {"media_id": media_id}}


def image_fits(data: bytes, mime: str | None) -> bool:
    """Whether an image can ride in a stream's ``msg_item`` (101031: JPG or PNG, at most 10 MB)."""
    kind = mime or ("image/png" if data.startswith(b"\x89PNG") else "image/jpeg" if data.startswith(b"\xff\xd8")
                    else "")
    return kind in IMAGE_MIMES and len(data) <= IMAGE_MAX_BYTES


def mention(user: str) -> str:
    """A mention of ``user`` in markdown. The AI bot's pages do not show one; ``<@userid>`` is the group
    robot's markdown mention (our assumption that the AI bot renders it the same way)."""
    return f"<@{user}>"


__all__ = ["ACK_TIMEOUT", "CALLBACKS", "CHUNK_BYTES", "CHUNKS_MAX", "DEFAULT_URL", "EVENT_CALLBACK", "HEARTBEAT",
           "IMAGE_MAX_BYTES", "IN_FLIGHT_PER_PERSON", "Inbound", "MEDIA_MAX_BYTES", "MISSED_PINGS", "MSG_CALLBACK",
           "MSG_ITEMS_MAX", "PING", "RESPOND", "RESPOND_UPDATE", "RESPOND_WELCOME", "SEEN_TTL", "SEND",
           "STREAM_MARGIN", "STREAM_MAX_BYTES", "STREAM_WINDOW", "SUBSCRIBE", "UPLOAD_CHUNK", "UPLOAD_FINISH",
           "UPLOAD_INIT", "clip", "frame", "image_fits", "markdown", "media_message", "mention", "new_req_id",
           "new_stream_id", "stream"]
