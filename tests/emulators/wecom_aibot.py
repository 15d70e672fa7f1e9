"""An emulator of WeCom's AI-bot (智能机器人) long-connection gateway, a real websocket server on 127.0.0.1.

It follows the official pages, written independently of ``handlers/wecom_aibot`` so the two test each other:

* the long connection, https://developer.work.weixin.qq.com/document/path/101463: every frame is JSON
  ``{cmd, headers: {req_id}, body}``; the bot subscribes with ``aibot_subscribe {bot_id, secret}`` and is
  answered ``{headers: {req_id}, errcode, errmsg}``; ``ping`` keeps it alive; WeCom pushes
  ``aibot_msg_callback`` / ``aibot_event_callback``; the bot answers a callback with ``aibot_respond_msg``
  (``aibot_respond_welcome_msg``, ``aibot_respond_update_msg`` for a card event) under the callback's
  ``req_id``, pushes with ``aibot_send_msg {chatid, msgtype, …}`` and uploads media in chunks
  (``aibot_upload_media_init`` → ``_chunk`` × N → ``_finish``); one connection per bot: a second
  subscription displaces the first with a ``disconnected_event``;
* the messages it pushes, https://developer.work.weixin.qq.com/document/path/100719 (``msgid``,
  ``aibotid``, ``chatid``, ``chattype`` single|group, ``from.userid``, ``text.content`` with the
  ``@bot`` mention in a group) and the events, https://developer.work.weixin.qq.com/document/path/101027;
* passive replies, https://developer.work.weixin.qq.com/document/path/101031: a ``stream`` is refreshed
  under one id until ``finish``; its ``content`` is at most 20480 bytes; ``msg_item`` images (JPG/PNG, at
  most 10 MB before base64, with their md5) only with ``finish`` and at most 10; a stream may be refreshed
  for 6 minutes from the person's message; a person has at most 3 messages waiting for the bot's answer.

Where the pages are silent the emulator follows :data:`ASSUMED` (each marked as ours): the numbers of the
refusals, and that a callback the bot has not answered when its connection drops is pushed again, as the
same frame, after the next subscription. The client must not depend on the numbers.

    with AiBotGateway() as gw:                 # ws://127.0.0.1:<port>, bot "aibot-test" / "aibot-secret"
        gw.wait_subscribed()
        msgid = gw.say("zhangsan", "@minpcode 帮助", chat="group-1")
        gw.wait(lambda: gw.finished(msgid))
        gw.answers(msgid)                      # the respond frames' bodies, in order
        gw.drop()                              # close the connection from the gateway's side
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

__all__ = ["ASSUMED", "AiBotGateway", "Callback", "BOT_ID", "SECRET"]

BOT_ID = "aibot-test"
SECRET = "aibot-secret"

STREAM_MAX_BYTES = 20480          # 101031: stream.content "最长不超过 20480 个字节"
MSG_ITEMS_MAX = 10                # 101031: msg_item "最多 10 个", only with finish
IMAGE_MAX_BYTES = 10 * 1024 * 1024  # 101031: a msg_item image "最大不能超过10M，支持JPG、PNG格式"
STREAM_WINDOW = 6 * 60.0          # 100719: a stream is refreshed for at most 6 minutes from the message
IN_FLIGHT_PER_PERSON = 3          # 100719: at most 3 of a person's messages wait for the bot's answer
CHUNK_MAX_BYTES = 512 * 1024      # 101463 上传分片: a chunk is at most 512 KB before base64
CHUNKS_MAX = 100                  # 101463: at most 100 chunks
MEDIA_MAX = {"image": 10 * 1024 * 1024, "voice": 2 * 1024 * 1024, "video": 10 * 1024 * 1024,
             "file": 20 * 1024 * 1024}  # 101463 注意事项: per-type limits, as for temporary media

ASSUMED = {
    "bad_credentials": (40058, "invalid bot_id or secret"),   # the page shows the shape only: our number
    "not_subscribed": (40059, "subscribe first"),
    "unknown_req_id": (40060, "req_id is no callback of this bot"),
    "answered": (40061, "stream already finished"),
    "too_late": (40062, "stream refresh window over"),
    "too_long": (40063, "content too long"),
    "bad_image": (40064, "msg_item image invalid"),
    "bad_upload": (40065, "upload invalid"),
    "bad_body": (40066, "invalid body"),
}
"""Refusals the pages show only as a non-zero ``errcode``: the numbers are our assumption."""


@dataclass
class Callback:
    """One frame WeCom pushed, and what the bot answered to it."""

    frame: dict[str, Any]
    user: str
    at: float
    answers: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False
    finished_at: float | None = None  # time.monotonic() of the finishing answer (for benchmarks)
    delivered: bool = False
    deliveries: int = 1
    pushed_at: float = field(default_factory=time.monotonic)
    connection: Any = None  # the connection it was last pushed on

    @property
    def req_id(self) -> str:
        return str(self.frame["headers"]["req_id"])

    @property
    def msgid(self) -> str:
        return str(self.frame["body"].get("msgid", ""))


class AiBotGateway:
    """The gateway. Thread-safe: tests drive it from their own thread while connections run in theirs."""

    def __init__(self, bot_id: str = BOT_ID, secret: str = SECRET, *, bot_name: str = "minpcode",
                 clock: Callable[[], float] = time.monotonic, idle_timeout: float = 90.0,
                 redeliver: bool = True) -> None:
        self.bot_id, self.secret, self.bot_name = bot_id, secret, bot_name
        self.clock = clock
        self.redeliver = redeliver  # False: what was pushed once is never pushed again (proves the bot kept it)
        # True: an answer is taken only on the connection its callback was pushed on (the page does not say
        # whether a req_id outlives its connection: both ways are tried)
        self.req_ids_per_connection = False
        # the page asks for a heartbeat; how long WeCom waits without one before closing is not said: ours
        self.idle_timeout = idle_timeout
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._conn: ServerConnection | None = None
        self._ids = itertools.count(1)
        self.callbacks: dict[str, Callback] = {}      # req_id -> the callback
        self.sent: list[dict[str, Any]] = []          # aibot_send_msg bodies accepted
        self.updates: list[dict[str, Any]] = []       # aibot_respond_update_msg bodies accepted
        self.refusals: list[tuple[str, int]] = []     # (cmd, errcode) of every refused frame
        self.media: dict[str, tuple[str, str, bytes]] = {}  # media_id -> (type, filename, bytes)
        self._uploads: dict[str, dict[str, Any]] = {}
        self.subscriptions = 0
        self.refused_subscriptions = 0
        self.pings = 0
        self.held_back: list[tuple[str, str]] = []    # (user, text) WeCom did not pass on: 3 in flight already
        self.files: dict[str, tuple[bytes, str]] = {}  # path -> (encrypted bytes, file name): a file message's url
        self.answer_pings = True                      # False: a gateway that went quiet (a half-open connection)

    # -- lifecycle ------------------------------------------------------------------------------------------

    def __enter__(self) -> AiBotGateway:
        self._server = serve(self._handle, "127.0.0.1", 0, ping_interval=None, max_size=4 * 1024 * 1024,
                             process_request=self._download)
        self._thread = threading.Thread(target=self._server.serve_forever, name="aibot-gateway", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        assert self._server is not None, "use the gateway as a context manager"
        port = self._server.socket.getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    # -- what a test does -----------------------------------------------------------------------------------

    def wait(self, done: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("the gateway waited in vain")
                self._changed.wait(min(left, 0.1))

    def wait_subscribed(self, count: int = 1, timeout: float = 15.0) -> None:
        self.wait(lambda: self.subscriptions >= count and self._conn is not None, timeout)

    @property
    def connected(self) -> bool:
        with self._lock:
            return self._conn is not None

    def say(self, user: str, text: str, *, chat: str | None = None, mention: bool = True,
            msgid: str | None = None, msgtype: str = "text") -> str | None:
        """``user`` writes ``text`` (in group ``chat``, @-mentioning the bot); the msgid, or None when WeCom
        holds it back because 3 of the person's messages are still waiting for an answer."""
        content = f"@{self.bot_name} {text}" if chat and mention else text
        body: dict[str, Any] = {"msgid": msgid or f"msg{secrets.token_hex(8)}", "aibotid": self.bot_id,
                                "chattype": "group" if chat else "single", "from": {"userid": user},
                                "response_url": f"https://qyapi.weixin.qq.com/cgi-bin/aibot/response?"
                                                f"response_code={secrets.token_hex(8)}",
                                "msgtype": msgtype}
        if msgtype == "text":
            body["text"] = {"content": content}
        elif msgtype == "voice":  # 100719: transcribed by WeCom
            body["voice"] = {"content": text}
        elif msgtype == "mixed":  # 100719: the text (with the mention) and a picture
            body["mixed"] = {"msg_item": [{"msgtype": "text", "text": {"content": content}},
                                          {"msgtype": "image", "image": {"url": "https://example.invalid/i"}}]}
        else:  # a file or an image: a download link (not served here)
            body[msgtype] = {"url": "https://example.invalid/f", "aeskey": "x"}
        if chat:
            body["chatid"] = chat
        with self._lock:
            waiting = sum(1 for c in self.callbacks.values()
                          if c.user == user and not c.finished and c.frame["cmd"] == "aibot_msg_callback")
            if waiting >= IN_FLIGHT_PER_PERSON:
                self.held_back.append((user, text))
                return None
        self._push("aibot_msg_callback", body, user)
        return str(body["msgid"])

    def send_file(self, user: str, data: bytes, filename: str) -> str | None:
        """``user`` sends a file 1:1 (100719: files only in a single chat). Like WeCom, the message carries a
        download ``url`` and its own ``aeskey``: the file is AES-256-CBC encrypted, the IV the key's first 16
        bytes, PKCS#7-padded to 32 (as the official SDK's decryptFile reads it)."""
        key = secrets.token_bytes(32)
        padding = 32 - len(data) % 32
        encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
        sealed = encryptor.update(data + bytes([padding]) * padding) + encryptor.finalize()
        path = f"/files/{secrets.token_hex(8)}"
        with self._lock:
            self.files[path] = (sealed, filename)
        body: dict[str, Any] = {"msgid": f"msg{secrets.token_hex(8)}", "aibotid": self.bot_id, "chattype": "single",
                                "from": {"userid": user}, "msgtype": "file",
                                "file": {"url": self.url.replace("ws://", "http://") + path,
                                         "aeskey": base64.b64encode(key).decode().rstrip("=")}}
        self._push("aibot_msg_callback", body, user)
        return str(body["msgid"])

    def _download(self, conn: ServerConnection, request: Request) -> Response | None:
        """A plain GET of a file message's url (no websocket upgrade): its encrypted bytes."""
        if "upgrade" in request.headers.get("Connection", "").lower():
            return None
        with self._lock:
            found = self.files.get(request.path)
        if found is None:
            return conn.respond(404, "not found\n")
        sealed, name = found
        headers = Headers([("Content-Type", "application/octet-stream"), ("Content-Length", str(len(sealed))),
                           ("Content-Disposition", f'attachment; filename="{name}"')])
        return Response(200, "OK", headers, sealed)

    def click(self, user: str, task_id: str, event_key: str, selected: dict[str, list[str]] | None = None, *,
              chat: str | None = None, card_type: str = "multiple_interaction") -> str:
        """``user`` presses a card's button (101027 template_card_event); returns the event's req_id."""
        items = [{"question_key": k, "option_ids": {"option_id": v}} for k, v in (selected or {}).items()]
        body: dict[str, Any] = {"msgid": f"evt{secrets.token_hex(8)}", "aibotid": self.bot_id,
                                "chattype": "group" if chat else "single", "from": {"userid": user},
                                "msgtype": "event", "create_time": int(time.time()),
                                "event": {"eventtype": "template_card_event",
                                          "template_card_event": {"card_type": card_type, "event_key": event_key,
                                                                  "task_id": task_id,
                                                                  "selected_items": {"selected_item": items}}}}
        if chat:
            body["chatid"] = chat
        return self._push("aibot_event_callback", body, user)

    def pushed_at(self, msgid: str) -> float:
        """time.monotonic() when ``msgid`` was first pushed (for benchmarks)."""
        return self.callback(msgid).pushed_at

    def resend(self, msgid: str) -> None:
        """Push the callback of ``msgid`` again, as the same frame (a redelivery)."""
        with self._lock:
            call = next(c for c in self.callbacks.values() if c.msgid == msgid)
            call.deliveries += 1
            conn = call.connection = self._conn
        if conn is not None:
            self._send(conn, call.frame)

    def drop(self) -> None:
        """The gateway closes the bot's connection (a network drop, a gateway restart)."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close(1012, "gateway restart")

    def answers(self, msgid: str) -> list[dict[str, Any]]:
        with self._lock:
            return [a for c in self.callbacks.values() if c.msgid == msgid for a in c.answers]

    def finished(self, msgid: str) -> bool:
        with self._lock:
            return any(c.finished for c in self.callbacks.values() if c.msgid == msgid)

    def callback(self, msgid: str) -> Callback:
        with self._lock:
            return next(c for c in self.callbacks.values() if c.msgid == msgid)

    # -- the wire -------------------------------------------------------------------------------------------

    def _push(self, cmd: str, body: dict[str, Any], user: str) -> str:
        req_id = f"{cmd}_{next(self._ids)}_{secrets.token_hex(4)}"
        frame = {"cmd": cmd, "headers": {"req_id": req_id}, "body": body}
        with self._lock:
            conn = self._conn
            self.callbacks[req_id] = Callback(frame, user, self.clock(), delivered=conn is not None, connection=conn)
        if conn is not None:
            self._send(conn, frame)
        return req_id

    def _send(self, conn: ServerConnection, frame: dict[str, Any]) -> None:
        try:
            conn.send(json.dumps(frame, ensure_ascii=False))
        except ConnectionClosed:
            pass  # the frame stays unanswered: pushed again after the next subscription

    def _handle(self, conn: ServerConnection) -> None:
        subscribed = False
        try:
            while True:
                try:
                    raw = conn.recv(timeout=self.idle_timeout)
                except TimeoutError:
                    conn.close(1000, "no heartbeat")
                    return
                try:
                    frame = json.loads(raw)
                    cmd, req_id = str(frame.get("cmd") or ""), str(frame["headers"]["req_id"])
                except (ValueError, KeyError, TypeError, AttributeError):
                    conn.close(1003, "not a frame")
                    return
                if cmd == "aibot_subscribe":
                    subscribed = self._subscribe(conn, req_id, frame.get("body") or {})
                    if not subscribed:
                        return
                    continue
                if not subscribed:
                    self._ack(conn, req_id, cmd, *ASSUMED["not_subscribed"])
                    continue
                self._command(conn, cmd, req_id, frame.get("body") or {})
        except ConnectionClosed:
            return
        finally:
            with self._changed:
                if self._conn is conn:
                    self._conn = None
                self._changed.notify_all()

    def _subscribe(self, conn: ServerConnection, req_id: str, body: dict[str, Any]) -> bool:
        if body.get("bot_id") != self.bot_id or body.get("secret") != self.secret:
            with self._changed:
                self.refused_subscriptions += 1
                self._changed.notify_all()
            self._ack(conn, req_id, "aibot_subscribe", *ASSUMED["bad_credentials"])
            conn.close(1000, "subscribe refused")
            return False
        with self._changed:
            old, self._conn = self._conn, conn
            self.subscriptions += 1
            # a callback pushed while no connection was up was never delivered: it goes now in any case
            owed = [c for c in self.callbacks.values() if not c.finished and (self.redeliver or not c.delivered)]
            for c in owed:
                c.deliveries += c.delivered
                c.delivered, c.connection = True, conn
            self._changed.notify_all()
        if old is not None and old is not conn:  # one connection per bot: the older one is told, then closed
            self._send(old, {"cmd": "aibot_event_callback", "headers": {"req_id": f"evt_{next(self._ids)}"},
                             "body": {"msgtype": "event", "aibotid": self.bot_id,
                                      "event": {"eventtype": "disconnected_event"}}})
            old.close(1000, "displaced")
        self._ack(conn, req_id, "aibot_subscribe", 0, "ok")
        for c in owed:  # ASSUMED: what was not answered before the drop is pushed again, as the same frame
            self._send(conn, c.frame)
        return True

    def _ack(self, conn: ServerConnection, req_id: str, cmd: str, errcode: int, errmsg: str,
             body: dict[str, Any] | None = None) -> None:
        if errcode:
            with self._changed:
                self.refusals.append((cmd, errcode))
                self._changed.notify_all()
        answer: dict[str, Any] = {"headers": {"req_id": req_id}, "errcode": errcode, "errmsg": errmsg}
        if body is not None:
            answer["body"] = body
        self._send(conn, answer)

    def _command(self, conn: ServerConnection, cmd: str, req_id: str, body: dict[str, Any]) -> None:
        if cmd == "ping":
            with self._changed:
                self.pings += 1
                self._changed.notify_all()
            if self.answer_pings:
                self._ack(conn, req_id, cmd, 0, "ok")
        elif cmd in ("aibot_respond_msg", "aibot_respond_welcome_msg", "aibot_respond_update_msg"):
            self._ack(conn, req_id, cmd, *self._respond(conn, cmd, req_id, body))
        elif cmd == "aibot_send_msg":
            problem = self._check_send(body)
            if problem is None:
                with self._changed:
                    self.sent.append(body)
                    self._changed.notify_all()
                self._ack(conn, req_id, cmd, 0, "ok")
            else:
                self._ack(conn, req_id, cmd, *problem)
        elif cmd.startswith("aibot_upload_media_"):
            result = self._upload(cmd, body)
            if isinstance(result, tuple):
                self._ack(conn, req_id, cmd, *result)
            else:
                self._ack(conn, req_id, cmd, 0, "ok", result)
        else:
            self._ack(conn, req_id, cmd, *ASSUMED["bad_body"])

    def _respond(self, conn: ServerConnection, cmd: str, req_id: str, body: dict[str, Any]) -> tuple[int, str]:
        with self._changed:
            call = self.callbacks.get(req_id)
            if call is None or (self.req_ids_per_connection and call.connection is not conn):
                return ASSUMED["unknown_req_id"]
            if cmd == "aibot_respond_update_msg":
                if body.get("response_type") != "update_template_card" or "template_card" not in body:
                    return ASSUMED["bad_body"]
                self.updates.append(body)
                call.answers.append(body)
                call.finished = True
                self._changed.notify_all()
                return 0, "ok"
            if call.finished:
                return ASSUMED["answered"]
            if self.clock() - call.at > STREAM_WINDOW:
                return ASSUMED["too_late"]
            problem = _check_reply(body)
            if problem is not None:
                return problem
            call.answers.append(body)
            stream = body.get("stream") or {}
            if body.get("msgtype") not in ("stream", "stream_with_template_card") or stream.get("finish"):
                call.finished, call.finished_at = True, time.monotonic()
            self._changed.notify_all()
            return 0, "ok"

    def _check_send(self, body: dict[str, Any]) -> tuple[int, str] | None:
        if not body.get("chatid"):
            return ASSUMED["bad_body"]
        kind = body.get("msgtype")
        if kind == "markdown":
            content = str((body.get("markdown") or {}).get("content") or "")
            if not content or len(content.encode()) > STREAM_MAX_BYTES:
                return ASSUMED["too_long"]
            return None
        if kind in MEDIA_MAX:
            media_id = (body.get(kind) or {}).get("media_id")
            return None if media_id in self.media else ASSUMED["bad_body"]
        if kind == "template_card":
            return None if isinstance(body.get("template_card"), dict) else ASSUMED["bad_body"]
        return ASSUMED["bad_body"]

    def _upload(self, cmd: str, body: dict[str, Any]) -> dict[str, Any] | tuple[int, str]:
        with self._lock:
            if cmd == "aibot_upload_media_init":
                kind, size, chunks = body.get("type"), body.get("total_size"), body.get("total_chunks")
                if kind not in MEDIA_MAX or not isinstance(size, int) or not isinstance(chunks, int) \
                        or not 5 < size <= MEDIA_MAX[kind] or not 1 <= chunks <= CHUNKS_MAX:
                    return ASSUMED["bad_upload"]
                upload_id = f"up{secrets.token_hex(6)}"
                self._uploads[upload_id] = {**body, "parts": {}}
                return {"upload_id": upload_id}
            upload = self._uploads.get(str(body.get("upload_id")))
            if upload is None:
                return ASSUMED["bad_upload"]
            if cmd == "aibot_upload_media_chunk":
                try:
                    part = base64.b64decode(str(body.get("base64_data")), validate=True)
                except (binascii.Error, ValueError):
                    return ASSUMED["bad_upload"]
                index = body.get("chunk_index")
                if not isinstance(index, int) or not 1 <= index <= upload["total_chunks"] \
                        or len(part) > CHUNK_MAX_BYTES:
                    return ASSUMED["bad_upload"]
                upload["parts"][index] = part
                return {}
            if cmd == "aibot_upload_media_finish":
                data = b"".join(upload["parts"].get(i, b"") for i in range(1, upload["total_chunks"] + 1))
                md5 = upload.get("md5")
                if len(upload["parts"]) != upload["total_chunks"] or len(data) != upload["total_size"] \
                        or (md5 and hashlib.md5(data).hexdigest() != md5):
                    return ASSUMED["bad_upload"]
                del self._uploads[str(body.get("upload_id"))]
                media_id = f"media{secrets.token_hex(8)}"
                self.media[media_id] = (upload["type"], str(upload.get("filename")), data)
                return {"type": upload["type"], "media_id": media_id, "created_at": str(int(time.time()))}
        return ASSUMED["bad_body"]


def _check_reply(body: dict[str, Any]) -> tuple[int, str] | None:
    kind = body.get("msgtype")
    if kind in ("stream", "stream_with_template_card"):
        stream = body.get("stream")
        if not isinstance(stream, dict) or not stream.get("id"):
            return ASSUMED["bad_body"]
        if len(str(stream.get("content") or "").encode()) > STREAM_MAX_BYTES:
            return ASSUMED["too_long"]
        items = stream.get("msg_item") or []
        if items and (not stream.get("finish") or len(items) > MSG_ITEMS_MAX):
            return ASSUMED["bad_image"]
        for item in items:
            image = item.get("image") or {} if item.get("msgtype") == "image" else None
            if image is None:
                return ASSUMED["bad_image"]
            try:
                data = base64.b64decode(str(image.get("base64")), validate=True)
            except (binascii.Error, ValueError):
                return ASSUMED["bad_image"]
            jpg_or_png = data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"))
            if len(data) > IMAGE_MAX_BYTES or not jpg_or_png or hashlib.md5(data).hexdigest() != image.get("md5"):
                return ASSUMED["bad_image"]
        return None
    if kind == "template_card":
        return None if isinstance(body.get("template_card"), dict) else ASSUMED["bad_body"]
    if kind == "text":  # 101031: a text answer only to enter_chat (a welcome)
        return ASSUMED["bad_body"]
    return ASSUMED["bad_body"]
