"""``GET, POST /wecom/callback``: WeCom's URL check and its encrypted messages
(https://developer.work.weixin.qq.com/document/path/90238).

* **GET** (URL verification, answered within WeCom's 1 s): check the signature over the URL-decoded
  ``echostr``, decrypt it and answer **200 with the bare plaintext** (no quotes, newline or BOM).
* **POST** (a message or an event): read at most :data:`MAX_BODY` bytes, check the signature, decrypt,
  check the receive id (our CorpID), parse; then acknowledge at once with an **empty 200** and do the
  work after, in an asyncio task. WeCom re-sends when it has no 200 within 5 s; a re-sent message is
  recognised by its ``MsgId`` (events by sender + time) and acknowledged without doing anything twice.

Rejections, none of which does anything else:

============================================  ======
body over :data:`MAX_BODY`                     413
missing query parameters, broken XML/base64    400
bad signature, stale timestamp, wrong corp     403
============================================  ======

Log lines name the reason and the client address only: never the body, the signature or a key.
Under ``serve`` every accepted message is saved in the durable outbox (bot/outbox.py) before its 200,
with its id remembered in SQLite for :data:`DEDUPE_TTL` (a replay after a restart is recognised), and
handled from there: what a crash interrupted is handled at the next start. Without an outbox (tests
of the endpoint alone) the memory is an in-process :class:`~bot.concurrency.TtlSet`. A message that
cannot be saved (a full disk) gets no 200: the server answers 503 (bot/server.py), so WeCom sends it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.concurrency import TtlSet
from bot.config import WECOM_APP_SETTINGS
from bot.metrics import METRICS
from bot.outbox import Outbox
from bot.service import Service
from handlers.http import BodyTooLarge, is_loopback, read_limited

from .batches import WeComBatches
from .client import WeComClient
from .conversation import Conversation
from .crypto import InvalidAESKey, InvalidSignature, ReceiveIdMismatch, WeComCrypto, WeComCryptoError
from .deliver import Deliverer
from .xml import InboundMessage, parse_message

__all__ = ["DEDUPE_TTL", "MAX_BODY", "MAX_SKEW", "PATH", "WORKERS", "WeComCallback", "WeComFrontEnd",
           "wecom_front_end"]

log = logging.getLogger("minpcode.wecom.callback")

PATH = "/wecom/callback"
MAX_BODY = 64 * 1024
"""WeCom's envelopes are a few KB (a 2 KB text is ~3.5 KB encrypted); anything far bigger is not WeCom."""
MAX_SKEW = 300.0
"""Seconds a signed timestamp may be off our clock (replay protection; WeCom retries within ~20 s)."""
DEDUPE_TTL = 3 * MAX_SKEW
"""How long a MsgId is remembered: longer than a replay can pass the timestamp check."""

WORKERS = 32
"""Messages handled at once; more wait their turn after their ack (bounds the CPU and memory of a burst)."""

Work = Callable[[InboundMessage], Awaitable[None]]


@dataclass
class Counters:
    accepted: int = 0
    duplicates: int = 0
    rejected: dict[int, int] = field(default_factory=dict)


class WeComCallback:
    """The callback endpoint: verification, decryption, dedupe, fast ack; ``work`` runs after the ack."""

    def __init__(self, crypto: WeComCrypto, work: Work, *, agent_id: int | None = None,
                 max_body: int = MAX_BODY, seen: TtlSet[str] | None = None, concurrency: int = WORKERS,
                 outbox: Outbox | None = None) -> None:
        self.crypto = crypto
        self.work = work
        self.outbox = outbox  # with it, a message is on disk before its 200 and its id seen across restarts
        self.agent_id = agent_id
        self.max_body = max_body
        self.seen: TtlSet[str] = seen or TtlSet(DEDUPE_TTL)
        self.counters = Counters()
        self._tasks: set[asyncio.Task[None]] = set()
        self._gate = asyncio.Semaphore(concurrency)

    @property
    def routes(self) -> list[BaseRoute]:
        return [Route(PATH, self.endpoint, methods=["GET", "POST"])]

    async def endpoint(self, request: Request) -> Response:
        if request.method == "GET":
            return self.verify(request)
        with METRICS.ack("wecom"):
            return await self.receive(request)

    # -- GET: URL verification ------------------------------------------------------------------------------

    def verify(self, request: Request) -> Response:
        query = request.query_params
        signature, timestamp, nonce = (query.get(k, "") for k in ("msg_signature", "timestamp", "nonce"))
        # A '+' that arrived unencoded was turned into a space by the query parser; base64 has no spaces.
        echostr = query.get("echostr", "").replace(" ", "+")
        if not (signature and timestamp and nonce and echostr):
            return self._reject(request, 400, "missing msg_signature, timestamp, nonce or echostr")
        try:
            echo = self.crypto.verify_url(signature, timestamp, nonce, echostr)
        except WeComCryptoError as exc:
            return self._reject(request, _status(exc), f"{type(exc).__name__} ({exc.code})")
        log.info("wecom callback URL verified")
        return PlainTextResponse(echo)

    # -- POST: messages and events --------------------------------------------------------------------------

    async def receive(self, request: Request) -> Response:
        query = request.query_params
        signature, timestamp, nonce = (query.get(k, "") for k in ("msg_signature", "timestamp", "nonce"))
        if not (signature and timestamp and nonce):
            return self._reject(request, 400, "missing msg_signature, timestamp or nonce")
        try:
            body = await read_limited(request, self.max_body)
        except BodyTooLarge:
            return self._reject(request, 413, f"body over {self.max_body} bytes")
        try:
            plaintext = self.crypto.decrypt_body(signature, timestamp, nonce, body)
            message = parse_message(plaintext)
        except WeComCryptoError as exc:
            return self._reject(request, _status(exc), f"{type(exc).__name__} ({exc.code})")
        if self.agent_id is not None and message.agent_id is not None and message.agent_id != self.agent_id:
            log.info("wecom callback for AgentID %s ignored (ours is %s)", message.agent_id, self.agent_id)
            return Response(status_code=200)
        row: int | None = None
        if self.outbox is not None:
            # WeCom does not retry after a 200: the message and who to answer are saved before it goes out
            row = self.outbox.accept("wecom", "message", {"xml": plaintext}, seen=f"wecom:{message.dedupe_key}",
                                     ttl=DEDUPE_TTL)
            first = row is not None
        else:
            first = self.seen.first(message.dedupe_key)
        if not first:
            self.counters.duplicates += 1
            log.info("wecom %s re-sent (%s): acknowledged, not handled again", message.msg_type, message.dedupe_key)
            return Response(status_code=200)
        self.counters.accepted += 1
        self._spawn(message, row)
        return Response(status_code=200)

    def _spawn(self, message: InboundMessage, row: int | None) -> None:
        task = asyncio.create_task(self._run(message, row), name=f"wecom-{message.dedupe_key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def resume(self) -> int:
        """Handle the messages a previous run acknowledged and did not finish; returns how many."""
        if self.outbox is None:
            return 0
        owed = self.outbox.pending("wecom")
        for row, _, payload in owed:
            try:
                message = parse_message(str(payload["xml"]))
            except (WeComCryptoError, KeyError):
                log.warning("wecom: saved message %d cannot be read again; dropped", row)
                continue
            self._spawn(message, row)
        return len(owed)

    async def _run(self, message: InboundMessage, row: int | None = None) -> None:
        try:
            async with self._gate:
                if row is None or self.outbox is None:
                    await self.work(message)
                else:
                    await self.outbox.deliver(row, lambda: self.work(message))
        except Exception:
            log.exception("wecom: work for a %s failed", message.msg_type)

    def _reject(self, request: Request, status: int, reason: str) -> Response:
        self.counters.rejected[status] = self.counters.rejected.get(status, 0) + 1
        peer = request.client.host if request.client else "?"
        log.warning("wecom callback %s rejected with %d from %s: %s", request.method, status, peer, reason)
        return Response(status_code=status)

    # -- lifecycle --------------------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for in-flight work (up to ``timeout``), then cancel what is left."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("wecom: %d unfinished message(s) cancelled at shutdown", len(pending))
            await asyncio.gather(*pending, return_exceptions=True)


def _status(exc: WeComCryptoError) -> int:
    return 403 if isinstance(exc, InvalidSignature | ReceiveIdMismatch) else 400


# ------------------------------------------------------------------------------------------------ wiring


@dataclass
class WeComFrontEnd:
    """What ``minpcode serve`` mounts for WeCom (bot/ports.py ``FrontEnd``)."""

    callback: WeComCallback
    conversation: Conversation
    client: WeComClient
    http: httpx.AsyncClient
    name: str = "wecom"

    def routes(self) -> list[BaseRoute]:
        return self.callback.routes

    async def start(self) -> None:
        log.info("WeCom: callback at %s (corp %s, AgentId %s)", PATH, self.client.corp_id, self.client.agent_id)
        if resumed := self.callback.resume():
            log.info("WeCom: answering %d message(s) acknowledged before a restart", resumed)

    async def stop(self) -> None:
        await self.callback.drain()
        await self.http.aclose()


def wecom_front_end(service: Service, *, max_skew: float | None = MAX_SKEW) -> WeComFrontEnd | None:
    """Build the WeCom front-end from the service's settings; ``None`` (and one log line) when not configured."""
    s = service.settings
    values = {
        "WECOM_CORP_ID": s.wecom_corp_id,
        "WECOM_AGENT_ID": s.wecom_agent_id,
        "WECOM_SECRET": s.wecom_secret.get_secret_value() if s.wecom_secret else None,
        "WECOM_TOKEN": s.wecom_token.get_secret_value() if s.wecom_token else None,
        "WECOM_AES_KEY": s.wecom_aes_key.get_secret_value() if s.wecom_aes_key else None,
    }
    if not any(values.values()):
        log.info("WeCom is off: set %s to enable /wecom/callback", ", ".join(WECOM_APP_SETTINGS))
        return None
    problems = s.problems("WECOM_APP")  # all or nothing, the AgentId a number, the key 43 characters
    if problems:
        log.warning("WeCom is off: %s", problems[0])
        return None
    agent = str(values["WECOM_AGENT_ID"]).strip()
    try:
        crypto = WeComCrypto(str(values["WECOM_TOKEN"]), str(values["WECOM_AES_KEY"]), str(values["WECOM_CORP_ID"]),
                             max_skew=max_skew)
    except (InvalidAESKey, ValueError):
        log.warning("WeCom is off: WECOM_AES_KEY must be the 43-character EncodingAESKey of the callback settings")
        return None
    http = httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0), trust_env=not is_loopback(s.wecom_api_url))
    client = WeComClient(http, s.wecom_api_url, str(values["WECOM_CORP_ID"]), int(agent), s.wecom_secret)  # type: ignore[arg-type]
    deliver = Deliverer(client, s.people_url)  # links go to phones: only an address the operator gave
    conversation = Conversation(service, deliver, batches=WeComBatches(deliver, service.batches))
    callback = WeComCallback(crypto, conversation.handle, agent_id=int(agent), outbox=service.outbox)
    return WeComFrontEnd(callback, conversation, client, http)

