"""The AI bot (智能机器人) as a front-end: @-mentions in groups and 1:1 messages over the long connection.

Each callback the gateway pushes (:mod:`.gateway`) is saved in the durable outbox (bot/outbox.py) with its
``msgid`` in the seen memory, in one transaction, before anything is sent back, and handled from there:

* **nothing taken is lost**: the long connection acknowledges a callback only by its answer (101463: the
  reply goes under the callback's ``req_id``), so a message is on disk before its first answer; what a
  crash interrupted is answered at the next start (:meth:`AiBotFrontEnd.start`);
* **none answered twice**: a callback pushed again after a reconnect (or after a restart) has a ``msgid``
  already seen and is left alone;
* **the same conversation as the self-built app**: a text (the ``@bot`` mention dropped) or a card's event goes
  through handlers/wecom/conversation.py whole: the grammar and dispatcher Slack uses too
  (handlers/commands.py, one call of the service), ``新建`` alone opening the card form, the form's drafts; as
  the same person, ``wecom:<userid>`` (bot/models.py ``Requester``): permissions, history and audit agree
  whichever WeCom front-end they wrote to. What it says is gathered (:class:`AiBotSink`) and sent as one answer.

The answer is a stream (101031) finished at once: its text (in a group mentioning the asker) with the
code image as a ``msg_item``. Work that takes longer than :data:`WORKING_AFTER` says it is working first (an
unfinished stream); past the stream's 6-minute window (:data:`~.protocol.STREAM_WINDOW`) the answer is
pushed to the chat instead (``aibot_send_msg``: markdown, then the image uploaded over the socket).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr
from starlette.routing import BaseRoute

from bot.errors import UpstreamError
from bot.metrics import METRICS
from bot.outbox import Outbox
from bot.service import Service
from bot.text import Text
from handlers import commands, grammar
from handlers.attachments import attachment
from handlers.wecom.batches import WeComBatches
from handlers.wecom.client import Target
from handlers.wecom.conversation import Conversation
from handlers.wecom.xml import FileMessage, InboundMessage, SelectedItem, TemplateCardEvent, TextMessage

from . import announce
from . import protocol as p
from .gateway import Gateway, GatewayRefused, GatewayUnreachable

__all__ = ["FRONT", "WORKERS", "WORKING_AFTER", "AiBotFrontEnd", "wecom_aibot_front_end"]

log = logging.getLogger("minpcode.wecom.aibot")

FRONT = "wecom_aibot"  # the outbox's name for what this front-end owes
WORKERS = 32
"""Callbacks handled at once; more wait their turn, saved (bounds a burst's CPU and memory)."""
WORKING_AFTER = 2.0
"""Seconds of work after which the person is told it is working (an unfinished stream)."""

_HELP = grammar.names("help")
ONLY_TEXT = Text(zh="我只看得懂文字命令。发送「帮助」查看命令。",
                 en="I only understand text commands. Send help for the list.")
WORKING = Text(zh="正在处理…", en="Working on it…")


@dataclass
class Taken:
    """A callback as saved: the frame and when it was taken (the stream's window runs from then)."""

    call: p.Inbound
    taken_at: float
    resumed: bool = False  # taken by a process before a restart: its req_id belongs to an old connection


@dataclass
class Turn:
    """What the conversation said while handling one callback, sent back as one answer (:meth:`AiBotFrontEnd.flush`)."""

    taken: Taken
    texts: list[str] = field(default_factory=list)
    replies: list[commands.Reply] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)
    sent: bool = False


_TURN: ContextVar[Turn | None] = ContextVar("minpcode_aibot_turn", default=None)


def _turn() -> Turn | None:
    """The callback being answered, if its answer has not gone yet. None: the speaker is work behind the answer
    (a batch's progress and zip), whose words are pushed at once."""
    turn = _TURN.get()
    return turn if turn is not None and not turn.sent else None


def _where(target: Target) -> str:
    """Where a push to ``target`` goes (101463 主动推送消息: the group's chatid, or the member's userid)."""
    return target.chat_id or target.user


class AiBotSink:
    """The self-built app's conversation speaks through this (handlers/wecom/deliver.py ``Sink``): what it says
    is gathered in the current :class:`Turn`; a card's close is the event's passive answer, at once (the
    official SDK: a card update within 5 s of the event)."""

    def __init__(self, front: AiBotFrontEnd) -> None:
        self.front = front
        self.public_url = front.public_url

    async def text(self, target: Target, text: str) -> None:
        if (turn := _turn()) is not None:
            turn.texts.append(text)
        else:
            await self.front.push(_where(target), self._mentioned(target, text), [])

    async def say(self, target: Target, zh: str, en: str) -> None:
        await self.text(target, Text(zh=zh, en=en).render("zh"))

    async def reply(self, target: Target, reply: commands.Reply) -> None:
        if (turn := _turn()) is not None:
            turn.replies.append(reply)
            return
        body, image = self.front.render(reply)
        await self.front.push(_where(target), self._mentioned(target, body), [image] if image else [])

    async def card(self, user: str, card: dict[str, Any]) -> None:
        if (turn := _turn()) is not None:
            turn.cards.append(card)
        else:
            await self.front.send(p.SEND, {"chatid": user, "msgtype": "template_card", "template_card": card})

    async def media(self, target: Target, data: bytes, filename: str, mime: str, media_type: str) -> None:
        """A file (a batch's zip) pushed: uploaded over the socket, then sent (101463 文件消息)."""
        media_id = await self.front.upload(data, filename, media_type)
        await self.front.gateway.call(p.SEND, p.media_message(_where(target), media_type, media_id))

    async def fetch(self, ref: str, limit: int) -> tuple[bytes, str]:
        """A file a member sent: ``ref`` is its message's ``file`` ({url, aeskey}, 100719), downloaded and
        decrypted (the official SDK's decryptFile: AES-256-CBC, the IV the key's first 16 bytes, PKCS#7 to 32)."""
        return await fetch_file(self.front.http, json.loads(ref), limit)

    @staticmethod
    def _mentioned(target: Target, text: str) -> str:
        return f"{p.mention(target.user)}\n{text}" if target.chat_id else text

    async def close_card(self, event: TemplateCardEvent, label: str) -> None:
        # 101031 模版卡片更新消息: the card is replaced for the member who pressed it; a text_notice card
        # carrying the label is our choice of replacement (the page lets any card type replace it)
        card = {"card_type": "text_notice", "main_title": {"title": label}, "task_id": event.task_id}
        try:
            await self.front.gateway.call(p.RESPOND_UPDATE, {"response_type": "update_template_card",
                                                             "userids": [event.from_user_name], "template_card": card},
                                          event.response_code)
        except GatewayUnreachable as exc:
            raise UpstreamError("wecom_aibot", None, exc.zh, exc.en) from exc


def as_message(call: p.Inbound) -> InboundMessage | None:
    """The callback as the self-built app's conversation reads a message: text (a voice message arrives
    transcribed, 100719) or a card's event (101027); None for what it does not handle. The event's req_id is
    its "response code": the card is closed by answering it."""
    chat = {"ChatId": call.chat_id} if call.chat_id else {}
    if call.cmd == p.MSG_CALLBACK and call.command:
        return TextMessage.model_validate({"FromUserName": call.user, "MsgType": "text", "Content": call.command,
                                           "fields": chat})
    if call.cmd == p.MSG_CALLBACK and call.msgtype == "file" and not call.group:  # 100719: files come 1:1
        ref = json.dumps(call.body.get("file") or {})
        return FileMessage.model_validate({"FromUserName": call.user, "MsgType": "file", "MediaId": ref})
    if call.cmd == p.EVENT_CALLBACK and call.event_type == "template_card_event":
        event = dict(call.event.get("template_card_event") or {})
        items = ((event.get("selected_items") or {}).get("selected_item")) or []
        selected = tuple(SelectedItem(QuestionKey=str(i.get("question_key") or ""),
                                      OptionIds=tuple(str(o) for o in (i.get("option_ids") or {}).get("option_id") or []))
                         for i in items if isinstance(i, dict))
        return TemplateCardEvent.model_validate({
            "FromUserName": call.user, "MsgType": "event", "Event": "template_card_event",
            "EventKey": str(event.get("event_key") or ""), "TaskId": str(event.get("task_id") or ""),
            "CardType": str(event.get("card_type") or ""), "ResponseCode": call.req_id, "SelectedItems": selected,
            "fields": chat})
    return None


class AiBotFrontEnd:
    """What ``minpcode serve`` mounts for the AI bot (bot/ports.py ``FrontEnd``): no routes, one connection."""

    name = "wecom_aibot"

    def __init__(self, service: Service, url: str, bot_id: str, secret: SecretStr, *,
                 gateway: Gateway | None = None, concurrency: int = WORKERS,
                 working_after: float = WORKING_AFTER) -> None:
        self.service = service
        self.outbox: Outbox = service.outbox
        self.gateway = gateway or Gateway(url, bot_id, secret, self.on_callback)
        self.gateway.on_callback = self.on_callback
        self.working_after = working_after
        self.window = p.STREAM_WINDOW - p.STREAM_MARGIN  # seconds from taking a message to its last stream frame
        self.public_url = service.settings.people_url
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0), follow_redirects=True)  # files
        sink = AiBotSink(self)
        # batches from a file or pasted rows, ours alone: each remembers it came through the AI bot (its
        # origin's front), so it is reported here, also after a restart, and the app's stay the app's
        batches = WeComBatches(sink, service.batches, front=FRONT)
        # the self-built app's conversation, whole: commands, the card form and its drafts (one per member,
        # kept through the service), the same words
        self.conversation = Conversation(service, sink, batches=batches)
        self.accepted = 0
        self.duplicates = 0
        self._gate = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    def routes(self) -> list[BaseRoute]:
        return []

    def _state(self) -> tuple[str, float]:
        return self.gateway.state, self.gateway.since

    async def start(self) -> None:
        owed = self.outbox.pending(FRONT)
        for row, _, payload in owed:
            self._spawn(row, Taken(p.Inbound.of(payload["frame"]), float(payload["taken_at"]), resumed=True))
        if owed:
            log.info("WeCom AI bot: answering %d message(s) taken before a restart", len(owed))
        log.info("WeCom AI bot: connecting to %s as bot %s", self.gateway.url, self.gateway.bot_id)
        self.gateway.start()
        METRICS.feed_gateway(self.name, self._state)
        announce.attach(self)  # scheduled summaries post through this one connection

    async def stop(self) -> None:
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=10.0)
            for task in pending:  # still owed in the outbox: answered at the next start
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.gateway.stop()
        await self.http.aclose()
        METRICS.unfeed_gateway(self.name, self._state)
        announce.detach(self)

    # -- taking a callback ----------------------------------------------------------------------------------

    def on_callback(self, frame: dict[str, Any]) -> None:
        """Save the callback (and its msgid) before anything answers it; then handle it from the outbox."""
        call = p.Inbound.of(frame)
        if not call.msgid:  # 100719/101027 give every message and event a msgid: without one, nothing to key
            log.warning("WeCom AI bot: a %s without msgid was ignored", call.cmd)
            return
        taken_at = time.time()
        row = self.outbox.accept(FRONT, "callback", {"frame": frame, "taken_at": taken_at},
                                 seen=f"wecom-aibot:{call.msgid}", ttl=p.SEEN_TTL)
        if row is None:
            self.duplicates += 1
            log.info("WeCom AI bot: %s pushed again: already taken, not answered twice", call.msgid)
            return
        self.accepted += 1
        self._spawn(row, Taken(call, taken_at))

    def _spawn(self, row: int, taken: Taken) -> None:
        task = asyncio.create_task(self._run(row, taken), name=f"wecom-aibot-{taken.call.msgid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, row: int, taken: Taken) -> None:
        try:
            async with self._gate:
                await self.outbox.deliver(row, lambda: self.handle(taken))
        except Exception:
            log.exception("WeCom AI bot: answering %s failed", taken.call.msgid)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    # -- answering -----------------------------------------------------------------------------------------

    async def handle(self, taken: Taken) -> None:
        """One callback through the self-built app's conversation (handlers/wecom/conversation.py: commands,
        the card form, drafts), its output gathered in a :class:`Turn` and sent back here once it is done."""
        call = taken.call
        if call.cmd == p.EVENT_CALLBACK and call.event_type == "enter_chat":
            await self.on_event(taken)
            return
        message = as_message(call)
        if message is None:
            if call.cmd == p.MSG_CALLBACK and call.user:
                await self.answer(taken, commands.Reply(ok=False, zh=ONLY_TEXT.zh, en=ONLY_TEXT.en))
            else:
                log.info("WeCom AI bot: event %s not handled here", call.event_type or "?")
            return
        turn = Turn(taken)
        token = _TURN.set(turn)
        try:
            work = asyncio.ensure_future(self.conversation.handle(message))  # the task sees this turn
            done, _ = await asyncio.wait({work}, timeout=self.working_after)
            if not done and call.cmd == p.MSG_CALLBACK and self._in_window(taken):
                try:  # the person sees it is working; the answer finishes the same stream
                    await self.gateway.call(p.RESPOND, p.stream(self._stream_id(taken), WORKING.render("zh"),
                                                                finish=False), call.req_id)
                except (GatewayRefused, GatewayUnreachable) as exc:
                    log.info("WeCom AI bot: the working notice for %s was not sent (%s)", call.msgid,
                             type(exc).__name__)
            await work
        finally:
            _TURN.reset(token)
        said = grammar.words(call.command)
        if call.chat_id and said and said[0] in _HELP:  # the id an operator puts in WECOM_BOT_SUMMARY_CHAT
            turn.replies.append(commands.Reply(zh=f"本群的 chatid（用于 WECOM_BOT_SUMMARY_CHAT）：{call.chat_id}",
                                               en=f"This group's chatid (for WECOM_BOT_SUMMARY_CHAT): {call.chat_id}"))
        await self.flush(turn)

    async def send(self, cmd: str, body: dict[str, Any]) -> None:
        await self._send_safely(cmd, body)

    async def flush(self, turn: Turn) -> None:
        """What the turn gathered, as one answer: a finished stream (with a card: stream and card together)
        to a message while its window is open; otherwise (a card's event, or too late) pushed to the chat."""
        turn.sent = True  # from here on the conversation's words are pushed (a batch running behind)
        taken, call = turn.taken, turn.taken.call
        text = "\n\n".join(turn.texts)
        images: list[bytes] = []
        for reply in turn.replies:
            body, image = self.render(reply)
            text = f"{text}\n\n{body}" if text else body
            images += [image] if image is not None else []
        if call.group and text:
            text = f"{p.mention(call.user)}\n{text}"
        card = turn.cards[0] if turn.cards else None
        if call.cmd == p.MSG_CALLBACK and self._in_window(taken):
            if card is not None and not text:
                answer = {"msgtype": "template_card", "template_card": card}
            elif card is not None:
                answer = {**p.stream(self._stream_id(taken), text, finish=True, images=images),
                          "msgtype": "stream_with_template_card", "template_card": card}
            else:
                answer = p.stream(self._stream_id(taken), text, finish=True, images=images)
            if await self._respond(taken, answer):
                for extra in turn.cards[1:]:
                    await self._send_safely(p.SEND, {"chatid": call.push_to, "msgtype": "template_card",
                                                     "template_card": extra})
                return
        if text or images:
            await self.push(call.push_to, text, images)
        for extra in turn.cards:
            await self._send_safely(p.SEND, {"chatid": call.push_to, "msgtype": "template_card", "template_card": extra})

    async def _respond(self, taken: Taken, answer: dict[str, Any]) -> bool:
        """Answer the callback under its req_id; False when that must become a push instead: a message taken
        before a restart whose req_id the gateway no longer takes. The page does not say how long a req_id
        stays good across connections (our assumption: it may not), so such a refusal is pushed rather than
        lost; should the refusal mean the gateway had the answer already (killed between its taking it and our
        marking it done), the person sees it twice: at least once, never lost."""
        try:
            await self.gateway.call(p.RESPOND, answer, taken.call.req_id)
            return True
        except GatewayRefused as exc:
            if taken.resumed:
                log.info("WeCom AI bot: the answer to %s (taken before a restart) is pushed: errcode %s",
                         taken.call.msgid, exc.errcode)
                return False
            log.warning("WeCom AI bot: %s refused (errcode %s, %s)", p.RESPOND, exc.errcode, exc.errmsg)
            return True

    def render(self, reply: commands.Reply) -> tuple[str, bytes | None]:
        """A reply's text and the image that rides with it (JPG/PNG within 10 MB; else its link, when there is one)."""
        body = reply.text("zh")
        attached = attachment(reply, self.public_url)
        if attached is None or not attached.data:
            return body, None
        if p.image_fits(attached.data, attached.mime):
            return body, attached.data
        if attached.url:
            body += "\n\n" + Text(zh=f"图片：{attached.url}", en=f"Image: {attached.url}").render("zh")
        return body, None

    async def on_event(self, taken: Taken) -> None:
        call = taken.call
        if call.event_type == "enter_chat":  # 101027: the first visit of the day may be answered with a welcome
            welcome = ("你好！直接发送命令，例如「新建 pages/index/index type=B scene=id=42」。\nHello! Type a command, "
                       "such as new pages/index/index type=B scene=id=42.\n\n" + grammar.help_text("zh", chat="wecom"))
            await self._send_safely(p.RESPOND_WELCOME, {"msgtype": "text", "text": {"content": p.clip(welcome)}},
                                    call.req_id)
            return
        log.info("WeCom AI bot: event %s not handled here", call.event_type or "?")

    def _in_window(self, taken: Taken) -> bool:
        return time.time() - taken.taken_at < self.window

    @staticmethod
    def _stream_id(taken: Taken) -> str:
        # one stream per message, the same after a restart: a refresh of the "working" stream, not a second one
        return f"s-{taken.call.msgid}"[:64]

    async def answer(self, taken: Taken, reply: commands.Reply) -> None:
        """One reply, alone, in the conversation it came from."""
        turn = Turn(taken)
        turn.replies.append(reply)
        await self.flush(turn)

    async def push(self, chat_id: str, body: str, images: list[bytes]) -> None:
        """A proactive message (101463 主动推送消息): markdown, then each image uploaded over the socket."""
        await self._send_safely(p.SEND, p.markdown(chat_id, body))
        for data in images:
            media_id = await self.upload(data, "minpcode.png" if data.startswith(b"\x89PNG") else "minpcode.jpg")
            await self._send_safely(p.SEND, p.media_message(chat_id, "image", media_id))

    async def upload(self, data: bytes, filename: str, kind: str = "image") -> str:
        """Temporary media over the socket (101463 上传临时素材: init → chunks of 512 KB → finish)."""
        if len(data) > p.MEDIA_MAX_BYTES.get(kind, 0):
            raise GatewayRefused(p.UPLOAD_INIT, -1, f"{kind} over {p.MEDIA_MAX_BYTES.get(kind, 0)} bytes")
        chunks = [data[i:i + p.CHUNK_BYTES] for i in range(0, len(data), p.CHUNK_BYTES)] or [b""]
        if len(chunks) > p.CHUNKS_MAX:
            raise GatewayRefused(p.UPLOAD_INIT, -1, f"over {p.CHUNKS_MAX} chunks")
        init = await self.gateway.call(p.UPLOAD_INIT, {"type": kind, "filename": filename, "total_size": len(data),
                                                       "total_chunks": len(chunks),
                                                       "md5": hashlib.md5(data).hexdigest()})
        upload_id = str(init["upload_id"])
        for index, chunk in enumerate(chunks, start=1):
            await self.gateway.call(p.UPLOAD_CHUNK, {"upload_id": upload_id, "chunk_index": index,
                                                     "base64_data": base64.b64encode(chunk).decode("ascii")})
        done = await self.gateway.call(p.UPLOAD_FINISH, {"upload_id": upload_id})
        return str(done["media_id"])

    async def _send_safely(self, cmd: str, body: dict[str, Any], req_id: str | None = None) -> None:
        try:
            await self.gateway.call(cmd, body, req_id)
        except GatewayRefused as exc:
            # refused for good (a finished stream, a lapsed window): a resend would be refused the same way
            log.warning("WeCom AI bot: %s refused (errcode %s, %s)", cmd, exc.errcode, exc.errmsg)


async def fetch_file(http: httpx.AsyncClient, file: dict[str, Any], limit: int) -> tuple[bytes, str]:
    """Download a file message's ``url`` (at most ``limit`` bytes) and decrypt it with its ``aeskey``."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from bot.errors import FieldError

    url, aeskey = str(file.get("url") or ""), str(file.get("aeskey") or "")
    too_big = FieldError("file", "文件太大。", "The file is too large.")
    try:
        async with http.stream("GET", url) as response:
            if response.status_code != 200:
                raise UpstreamError("wecom_aibot", response.status_code, "文件下载失败。", "The file could not be downloaded.")
            data = b""
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > limit + 32:  # the padding of the encrypted copy
                    raise too_big
    except httpx.HTTPError as exc:
        raise UpstreamError("wecom_aibot", None, "文件下载失败。", "The file could not be downloaded.") from exc
    name = _filename(response.headers.get("content-disposition", "")) or "sheet"
    if not aeskey:
        return data, name
    try:
        key = base64.b64decode(aeskey + "=" * (-len(aeskey) % 4))
        clear = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
        plain = clear.update(data) + clear.finalize()
        pad = plain[-1]
        if not 1 <= pad <= 32 or plain[-pad:] != bytes([pad]) * pad:
            raise ValueError("padding")
    except (ValueError, IndexError) as exc:
        raise FieldError("file", "文件无法解密。", "The file could not be decrypted.") from exc
    if len(plain) - pad > limit:
        raise too_big
    return plain[:-pad], name


def _filename(disposition: str) -> str:
    for part in disposition.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "filename":
            return value.strip().strip('"')
    return ""


def wecom_aibot_front_end(service: Service) -> AiBotFrontEnd | None:
    """The AI bot's front-end from WECOM_BOT_ID / WECOM_BOT_SECRET; None (one log line says why) without them."""
    s = service.settings
    bot_id = (s.wecom_bot_id or "").strip()
    secret = s.wecom_bot_secret.get_secret_value().strip() if s.wecom_bot_secret else ""
    if not bot_id and not secret:
        log.info("WeCom AI bot is off: set WECOM_BOT_ID and WECOM_BOT_SECRET to connect to %s", s.wecom_bot_ws_url)
        return None
    problems = s.problems("WECOM_BOT")
    if problems:
        log.warning("WeCom AI bot is off: %s", problems[0])
        return None
    return AiBotFrontEnd(service, s.wecom_bot_ws_url, bot_id, SecretStr(secret))

