"""A faithful local emulator of the WeCom (企业微信) server, for tests (WeCom's pages for each half are
cited in handlers/wecom/client.py and handlers/wecom/callback.py).

Two halves:

* :class:`WeComEmulator` — the **inbound API** the bot calls (``/cgi-bin/...``): ``gettoken``, ``media/upload``,
  ``media/get``, ``message/send``, ``message/update_template_card``, ``getcallbackip``, the group-robot
  ``webhook/send`` and ``webhook/upload_media``. A Starlette app (``.app``); run it with
  ``bot.sandbox.server.ServerThread``. Business errors are JSON ``{"errcode", "errmsg"}`` at HTTP 200,
  errmsgs carry WeCom's ``hint``/``from ip`` suffix. Time comes from ``clock`` (a :class:`FakeClock` by
  default) so token expiry, the 3-day media lifetime, 72 h response codes, per-minute caps and the
  duplicate-check interval are testable. ``message/send`` keeps the page's duplicate check (below);
  :meth:`WeComEmulator.hold_answers` takes a call and holds back its answer, as a lost response would.
* :class:`CallbackSender` — the **outbound callbacks** WeCom makes to the bot's URL: URL verification (GET)
  and encrypted message/event POSTs, with ``MsgId``/``CreateTime`` control, ``resend()`` for WeCom's
  retries, and verification/decryption of passive replies. Its WXBizMsgCrypt is written independently of
  ``handlers.wecom.crypto`` (and checked against the published vectors) so the two test each other.

Error codes WeCom's pages do not confirm (marked UNCONFIRMED: our assumptions) are collected in :data:`ERRCODES`
so they can be changed in one place.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import hashlib
import itertools
import json
import re
import secrets
import string
import struct
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = [
    "ERRCODES",
    "Call",
    "CallbackReplyError",
    "CallbackRequest",
    "CallbackSender",
    "CardState",
    "Delivery",
    "FakeClock",
    "MediaRecord",
    "SentMessage",
    "VerifyResult",
    "WeComEmulator",
    "WebhookMessage",
    "WxBizCipher",
    "parse_multipart",
]

MB = 1024 * 1024

ERRCODES: dict[str, int] = {
    "invalid_json": 47001,  # 数据格式错误 (UNCONFIRMED for every path)
    "invalid_param": 40058,
    "invalid_response_code": 40058,  # exact code for a bad/used/expired response_code is UNCONFIRMED
    "webhook_bad_key": 93000,  # UNCONFIRMED (seen in the wild: "invalid webhook url")
    "webhook_rate": 45009,  # UNCONFIRMED for the webhook
    "webhook_md5": 301019,  # UNCONFIRMED code; errmsg "media md5 not match" is seen in the wild
}

ERRMSGS: dict[int, str] = {
    -1: "system busy",
    40001: "invalid credential",
    40004: "invalid media type",
    40005: "invalid file type",
    40006: "invalid file size",
    40007: "invalid media_id",
    40008: "invalid message type",
    40009: "invalid image size",
    40011: "invalid video size",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40056: "invalid agentid",
    40058: "invalid Request Parameter",
    40091: "secret is invalid",
    41001: "access_token missing",
    41002: "corpid missing",
    41004: "corpsecret missing",
    42001: "access_token expired",
    42014: "taskid has existed or empty or exceed max len",
    44001: "empty media data",
    44004: "empty content",
    45001: "media size out of limit",
    45002: "content size out of limit",
    45008: "article size out of limit",
    45009: "api freq out of limit",
    45033: "api concurrent out of limit",
    47001: "data format error",
    60020: "not allow to access from your ip",
    81013: "user & party & tag all invalid",
    93000: "invalid webhook url",
    301002: "not allow operate another agent with this accesstoken.",
    301019: "media md5 not match",
}

SEND_MSGTYPES = (
    "text", "image", "voice", "video", "file", "textcard", "news", "mpnews", "markdown",
    "miniprogram_notice", "template_card",
)
WEBHOOK_MSGTYPES = ("text", "markdown", "markdown_v2", "image", "news", "file", "voice", "template_card")
CARD_TYPES = ("text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction")
INTERACTIVE_CARDS = ("button_interaction", "vote_interaction", "multiple_interaction")
TASK_ID_RE = re.compile(r"[0-9A-Za-z_\-@]{1,128}")
USERID_RE = re.compile(r"[A-Za-z0-9_.@\-]{1,64}")
MEDIA_TTL = 3 * 86400
RESPONSE_CODE_TTL = 72 * 3600
DUPLICATE_CHECK_DEFAULT = 1800  # message/send (path/90236): duplicate_check_interval's default …
DUPLICATE_CHECK_MAX = 4 * 3600  # … and its maximum ("最大不超过4小时")


def _utf8_len(value: Any) -> int:
    return len(str(value).encode("utf-8"))


def _truncate_utf8(text: str, limit: int) -> str:
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


def _norm_path(path: str) -> str:
    path = path.split("?", 1)[0]
    if not path.startswith("/"):
        path = "/" + path
    if not path.startswith("/cgi-bin/"):
        path = "/cgi-bin" + path
    return path


def _sniff(data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"#!AMR"):
        return "amr"
    if data[4:8] == b"ftyp":
        return "mp4"
    return "other"


# ============================================================================================ clock


class FakeClock:
    """A settable clock: ``clock()`` returns ``now``; ``advance(seconds)`` moves it forward."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self.now += seconds
            return self.now


# ============================================================================================ multipart


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str
    headers: dict[str, str]
    data: bytes


_PARAM_RE = re.compile(r';\s*([A-Za-z0-9_\-*]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))')


def parse_multipart(body: bytes, content_type: str) -> list[Part] | None:
    """Parse ``multipart/form-data``; ``None`` if the request is not multipart or has no boundary."""
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    params = {k.lower(): (q if q is not None and q != "" else u) for k, q, u in _PARAM_RE.findall(content_type)}
    boundary = params.get("boundary")
    if not boundary:
        return None
    delim = b"\r\n--" + boundary.encode("latin-1")
    chunks = (b"\r\n" + body).split(delim)
    parts: list[Part] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        disp = headers.get("content-disposition", "")
        dparams = {k.lower(): (q if q else u) for k, q, u in _PARAM_RE.findall(";" + disp.partition(";")[2])}
        parts.append(Part(
            name=dparams.get("name", ""),
            filename=dparams.get("filename"),
            content_type=headers.get("content-type", "application/octet-stream"),
            headers=headers,
            data=data,
        ))
    return parts


# ============================================================================================ records


@dataclass
class Call:
    """One request the emulator answered."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    client_ip: str
    at: float
    response: Any = None
    status: int = 200

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def errcode(self) -> int | None:
        return self.response.get("errcode") if isinstance(self.response, dict) else None


@dataclass
class MediaRecord:
    media_id: str
    type: str
    filename: str | None
    content_type: str
    data: bytes
    created_at: float


@dataclass
class SentMessage:
    """A ``message/send`` that WeCom accepted."""

    msgid: str
    agentid: int
    msgtype: str
    body: dict[str, Any]
    delivered_to: list[str]
    dropped_for: list[str]
    invaliduser: list[str]
    at: float
    truncated: bool = False
    response_code: str | None = None

    @property
    def content(self) -> str | None:
        """Text of a ``text``/``markdown`` message as delivered (after truncation)."""
        payload = self.body.get(self.msgtype)
        return payload.get("content") if isinstance(payload, dict) else None

    @property
    def media_id(self) -> str | None:
        payload = self.body.get(self.msgtype)
        return payload.get("media_id") if isinstance(payload, dict) else None


@dataclass
class CardState:
    """A template card as each recipient currently sees it."""

    task_id: str
    agentid: int
    card: dict[str, Any]
    msgid: str
    recipients: list[str]
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    replaced_name: dict[str, str] = field(default_factory=dict)

    def view(self, user: str) -> dict[str, Any]:
        return self.views.get(user, self.card)


@dataclass
class ResponseCode:
    code: str
    task_id: str
    agentid: int
    issued_at: float
    user: str | None = None
    used: bool = False


@dataclass
class WebhookMessage:
    key: str
    msgtype: str
    body: dict[str, Any]
    at: float
    image: bytes | None = None


@dataclass
class _Token:
    value: str
    agentid: int
    expires_at: float


@dataclass
class _Ctx:
    request: Request
    query: dict[str, str]
    body: bytes
    ip: str
    agentid: int | None = None

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


# ============================================================================================ emulator


class WeComEmulator:
    """The WeCom server API for one corp with one (or more) self-built apps.

    ``users``: the corp's members (``None`` = any well-formed userid exists). ``parties``/``tags``: valid
    department/tag ids. ``trusted_ips``: ``None`` = every caller trusted, else a set (the caller IP is the
    socket peer, or the first value of ``ip_header`` when set). ``api_budget_per_minute``: per path, else
    45009. ``oversize``: ``"truncate"`` text/markdown beyond 2048 bytes like WeCom, or ``"error"`` (45002).
    """

    def __init__(
        self,
        corp_id: str = "ww0a1b2c3d4e5f6a7b",
        secret: str = "emulator-app-secret-0123456789abcdefABCDEF_x",
        agent_id: int = 1000002,
        *,
        clock: Callable[[], float] | None = None,
        token_ttl: int = 7200,
        users: Iterable[str] | None = None,
        parties: Iterable[str | int] = ("1",),
        tags: Iterable[str | int] = (),
        foreign_secrets: Iterable[str] = (),
        trusted_ips: Iterable[str] | None = None,
        ip_header: str | None = None,
        api_budget_per_minute: int | None = None,
        member_cap_per_minute: int = 30,
        image_max_bytes: int = 10 * MB,
        oversize: str = "truncate",
        webhook_keys: Iterable[str] = ("robot-key",),
        webhook_per_minute: int = 20,
        callback_ips: Iterable[str] = ("101.226.103.0/25",),
        latency: float = 0.0,
    ) -> None:
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = agent_id
        self.clock: Callable[[], float] = clock if clock is not None else FakeClock()
        self.token_ttl = token_ttl
        self.apps: dict[int, str] = {agent_id: secret}
        self.users = set(users) if users is not None else None
        self.parties = {str(p) for p in parties}
        self.tags = {str(t) for t in tags}
        self.foreign_secrets = set(foreign_secrets)
        self.trusted_ips = set(trusted_ips) if trusted_ips is not None else None
        self.ip_header = ip_header
        self.api_budget_per_minute = api_budget_per_minute
        self.member_cap_per_minute = member_cap_per_minute
        self.image_max_bytes = image_max_bytes
        self.oversize = oversize
        self.webhook_keys = set(webhook_keys)
        self.webhook_per_minute = webhook_per_minute
        self.callback_ips = list(callback_ips)
        self.latency = latency
        self.path_latency: dict[str, float] = {}
        self._holds: dict[str, tuple[Callable[[Any], bool], threading.Event]] = {}

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._ids = itertools.count(1)
        self._failures: dict[str, deque[tuple[int, str | None]]] = {}
        self._tokens: dict[str, _Token] = {}
        self._api_hits: dict[str, deque[float]] = {}
        self._member_hits: dict[str, deque[float]] = {}
        self._webhook_hits: dict[str, deque[float]] = {}
        self._task_ids: dict[int, set[str]] = {}
        self._checked: dict[str, tuple[float, str]] = {}  # request JSON sent with the duplicate check -> (at, msgid)

        self.calls: list[Call] = []
        self.media: dict[str, MediaRecord] = {}
        self.uploaded_media: dict[str, bytes] = {}
        self.sent_messages: list[SentMessage] = []
        self.dropped_messages: list[tuple[str, str]] = []  # (msgid, userid) silently dropped by the 30/min cap
        self.duplicates: list[tuple[str, dict[str, Any]]] = []  # (first msgid, body) not delivered again
        self.cards: dict[str, CardState] = {}
        self.response_codes: dict[str, ResponseCode] = {}
        self.card_updates: list[dict[str, Any]] = []
        self.webhook_messages: list[WebhookMessage] = []
        self.webhook_media: dict[str, MediaRecord] = {}

        ep = self._endpoint
        self.app = Starlette(routes=[
            Route("/cgi-bin/gettoken", ep(self._gettoken, auth=False), methods=["GET"]),
            Route("/cgi-bin/getcallbackip", ep(self._getcallbackip), methods=["GET"]),
            Route("/cgi-bin/agent/get", ep(self._agent_get), methods=["GET"]),
            Route("/cgi-bin/media/upload", ep(self._media_upload), methods=["POST"]),
            Route("/cgi-bin/media/get", ep(self._media_get), methods=["GET"]),
            Route("/cgi-bin/message/send", ep(self._message_send), methods=["POST"]),
            Route("/cgi-bin/message/update_template_card", ep(self._update_card), methods=["POST"]),
            Route("/cgi-bin/webhook/send", ep(self._webhook_send, auth=False), methods=["POST"]),
            Route("/cgi-bin/webhook/upload_media", ep(self._webhook_upload, auth=False), methods=["POST"]),
        ])

    # ------------------------------------------------------------------------------------ knobs

    def add_app(self, agent_id: int, secret: str) -> None:
        """Another self-built app in the same corp (own secret, own tokens)."""
        with self._lock:
            self.apps[agent_id] = secret

    def fail_next(self, path: str, errcode: int, times: int = 1, errmsg: str | None = None) -> None:
        """The next ``times`` calls to ``path`` answer ``errcode`` (e.g. 60020, 81013, 45009, -1)."""
        with self._lock:
            queue = self._failures.setdefault(_norm_path(path), deque())
            queue.extend([(errcode, errmsg)] * times)

    def hold_answers(self, path: str, when: Callable[[Any], bool] | None = None) -> None:
        """Calls to ``path`` (those whose JSON body ``when`` accepts) are handled and recorded as usual, but
        their HTTP answer is held back until :meth:`release_answers`: the caller cannot tell that its call
        took effect, as when a response is lost on its way back or the caller dies waiting for it."""
        with self._lock:
            self._holds[_norm_path(path)] = (when or (lambda body: True), threading.Event())

    def release_answers(self) -> None:
        """Send every held answer and hold no more."""
        with self._lock:
            for _, released in self._holds.values():
                released.set()
            self._holds.clear()

    def issue_token(self, agent_id: int | None = None) -> str:
        """The current access token of an app (issued now if none is valid), without an HTTP call."""
        with self._lock:
            return self._current_token(agent_id or self.agent_id).value

    def invalidate_tokens(self) -> None:
        """WeCom revoked every token early: they now answer 40014."""
        with self._lock:
            self._tokens.clear()

    def expire_tokens(self) -> None:
        """Every issued token is past its expiry: they now answer 42001."""
        with self._lock:
            for tok in self._tokens.values():
                tok.expires_at = min(tok.expires_at, self.clock() - 1)

    def issue_response_code(self, task_id: str, user: str | None = None) -> str:
        """A fresh single-use response code for a sent card (what a click on it yields)."""
        with self._lock:
            card = self.cards.get(task_id)
            code = "RC" + secrets.token_hex(16)
            self.response_codes[code] = ResponseCode(code, task_id, card.agentid if card else self.agent_id,
                                                     self.clock(), user)
            return code

    def callback_client(
        self,
        base_url: str,
        token: str,
        aes_key: str,
        corp_id: str | None = None,
        agent_id: int | None = None,
        **kwargs: Any,
    ) -> CallbackSender:
        """A :class:`CallbackSender` bound to this emulator (shared clock, cards, response codes)."""
        kwargs.setdefault("clock", self.clock)
        return CallbackSender(base_url, token, aes_key, corp_id or self.corp_id, agent_id or self.agent_id,
                              emulator=self, **kwargs)

    # ------------------------------------------------------------------------------------ inspection

    def calls_to(self, path: str) -> list[Call]:
        target = _norm_path(path)
        with self._lock:
            return [c for c in self.calls if c.path == target]

    def wait_for(self, path: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Block until ``path`` has been answered ``count`` times (TimeoutError otherwise).

        Blocking: use from sync tests, or from async tests whose code under test runs in another thread;
        in the same event loop use :meth:`await_calls`.
        """
        target = _norm_path(path)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [c for c in self.calls if c.path == target]
                if len(got) >= count:
                    return got
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{target}: {len(got)} of {count} calls after {timeout}s")
                self._cond.wait(remaining)

    async def await_calls(self, path: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Async :meth:`wait_for` that yields to the event loop while waiting."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.calls_to(path)
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"{_norm_path(path)}: {len(got)} of {count} calls after {timeout}s")
            await asyncio.sleep(0.01)

    def messages_for(self, user: str) -> list[SentMessage]:
        """Messages that actually reached ``user`` (after the silent per-member cap)."""
        with self._lock:
            return [m for m in self.sent_messages if user in m.delivered_to]

    # ------------------------------------------------------------------------------------ plumbing

    def _errmsg(self, code: int, ip: str, text: str | None = None) -> str:
        base = text or ERRMSGS.get(code, "error")
        hint = f"{int(self.clock())}{next(self._ids):07d}"
        return f"{base}, hint: [{hint}], from ip: {ip}, more info at https://open.work.weixin.qq.com/devtool/query?e={code}"

    def _error(self, ctx: _Ctx, code: int, text: str | None = None, **extra: Any) -> dict[str, Any]:
        return {"errcode": code, "errmsg": self._errmsg(code, ctx.ip, text), **extra}

    def _client_ip(self, request: Request) -> str:
        if self.ip_header:
            value = request.headers.get(self.ip_header)
            if value:
                return value.split(",")[0].strip()
        return request.client.host if request.client else "0.0.0.0"

    @staticmethod
    def _hit(hits: dict[str, deque[float]], key: str, now: float, budget: int | None) -> bool:
        """Count one call in a 60 s sliding window; False if that exceeds ``budget``."""
        window = hits.setdefault(key, deque())
        while window and window[0] <= now - 60:
            window.popleft()
        if budget is not None and len(window) >= budget:
            return False
        window.append(now)
        return True

    def _current_token(self, agentid: int) -> _Token:
        now = self.clock()
        for tok in self._tokens.values():
            if tok.agentid == agentid and tok.expires_at > now:
                return tok
        value = secrets.token_urlsafe(96)
        tok = _Token(value, agentid, now + self.token_ttl)
        self._tokens[value] = tok
        return tok

    def _endpoint(self, handler: Callable[[_Ctx], Any], auth: bool = True) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            body = await request.body()
            path = request.url.path
            delay = self.path_latency.get(path, self.latency)
            if delay:
                await asyncio.sleep(delay)
            ctx = _Ctx(request, dict(request.query_params), body, self._client_ip(request))
            with self._lock:
                result = self._dispatch(ctx, handler, path, auth)
                if isinstance(result, Response):
                    recorded: Any = {"_binary": len(result.body)} if result.media_type != "application/json" \
                        else json.loads(result.body)
                    response = result
                else:
                    recorded = result
                    response = JSONResponse(result)
                self.calls.append(Call(request.method, path, ctx.query, dict(request.headers), body, ctx.ip,
                                       self.clock(), recorded, response.status_code))
                self._cond.notify_all()
                hold = self._holds.get(path)
                released = hold[1] if hold is not None and hold[0](ctx.json()) else None
            while released is not None and not released.is_set():
                await asyncio.sleep(0.02)
            return response

        return endpoint

    def _dispatch(self, ctx: _Ctx, handler: Callable[[_Ctx], Any], path: str, auth: bool) -> Any:
        queue = self._failures.get(path)
        if queue:
            code, text = queue.popleft()
            return self._error(ctx, code, text)
        if auth:
            token = ctx.query.get("access_token", "")
            if not token:
                return self._error(ctx, 41001)
            tok = self._tokens.get(token)
            if tok is None:
                return self._error(ctx, 40014)
            if tok.expires_at <= self.clock():
                return self._error(ctx, 42001)
            ctx.agentid = tok.agentid
            # 企业可信IP guards the token-authenticated API; gettoken itself is not refused (it takes the secret)
            if self.trusted_ips is not None and ctx.ip not in self.trusted_ips:
                return self._error(ctx, 60020)
        if (auth or path.endswith("/gettoken")) and not self._hit(
            self._api_hits, path, self.clock(), self.api_budget_per_minute
        ):
            return self._error(ctx, 45009)
        return handler(ctx)

    # ------------------------------------------------------------------------------------ token

    def _gettoken(self, ctx: _Ctx) -> dict[str, Any]:
        corpid = ctx.query.get("corpid", "")
        secret = ctx.query.get("corpsecret", "")
        if not corpid:
            return self._error(ctx, 41002)
        if not secret:
            return self._error(ctx, 41004)
        if corpid != self.corp_id:
            return self._error(ctx, 40013)
        agentid = next((a for a, s in self.apps.items() if secrets.compare_digest(s, secret)), None)
        if agentid is None:
            return self._error(ctx, 40091 if secret in self.foreign_secrets else 40001)
        tok = self._current_token(agentid)
        return {"errcode": 0, "errmsg": "ok", "access_token": tok.value,
                "expires_in": max(0, int(tok.expires_at - self.clock()))}

    def _getcallbackip(self, ctx: _Ctx) -> dict[str, Any]:
        return {"ip_list": list(self.callback_ips), "errcode": 0, "errmsg": "ok"}

    def _agent_get(self, ctx: _Ctx) -> dict[str, Any]:
        """获取指定的应用详情 (document path/90227): only the app the token belongs to may be read. A
        malformed or unknown agentid answers 40056 and another app's 301002 (OUR ASSUMPTION: the global
        error-code list names both, the page does not say which applies when)."""
        raw = ctx.query.get("agentid", "")
        if not raw.isdigit() or int(raw) not in self.apps:
            return self._error(ctx, 40056)
        if int(raw) != ctx.agentid:
            return self._error(ctx, 301002)
        return {"errcode": 0, "errmsg": "ok", "agentid": int(raw), "name": f"minpcode-{raw}",
                "square_logo_url": "", "description": "", "close": 0, "redirect_domain": "",
                "report_location_flag": 0, "isreportenter": 0, "home_url": "",
                "allow_userinfos": {"user": [{"userid": u} for u in sorted(self.users or ())]},
                "allow_partys": {"partyid": sorted(int(p) for p in self.parties if p.isdigit())},
                "allow_tags": {"tagid": sorted(int(t) for t in self.tags if t.isdigit())}}

    # ------------------------------------------------------------------------------------ media

    _MEDIA_LIMITS = {"voice": (2 * MB, 45001), "video": (10 * MB, 40011), "file": (20 * MB, 45001)}
    _MEDIA_FORMATS = {"image": ("png", "jpg"), "voice": ("amr",), "video": ("mp4",)}

    def _read_media_part(self, ctx: _Ctx) -> Part | dict[str, Any]:
        parts = parse_multipart(ctx.body, ctx.request.headers.get("content-type", ""))
        part = next((p for p in parts or () if p.name == "media"), None)
        if part is None:
            return self._error(ctx, 44001, "media data missing")
        return part

    def _media_upload(self, ctx: _Ctx) -> dict[str, Any]:
        mtype = ctx.query.get("type", "")
        if mtype not in ("image", "voice", "video", "file"):
            return self._error(ctx, 40005)
        part = self._read_media_part(ctx)
        if isinstance(part, dict):
            return part
        size = len(part.data)
        if size == 0:
            return self._error(ctx, 44001)
        if size <= 5:
            return self._error(ctx, 40006)
        if mtype == "image":
            if size > self.image_max_bytes:
                return self._error(ctx, 40009)
        else:
            limit, code = self._MEDIA_LIMITS[mtype]
            if size > limit:
                return self._error(ctx, code)
        allowed = self._MEDIA_FORMATS.get(mtype)
        if allowed and _sniff(part.data) not in allowed:
            return self._error(ctx, 40004)
        media_id = "3" + secrets.token_urlsafe(48)
        now = self.clock()
        self.media[media_id] = MediaRecord(media_id, mtype, part.filename, part.content_type, part.data, now)
        self.uploaded_media[media_id] = part.data
        return {"errcode": 0, "errmsg": "", "type": mtype, "media_id": media_id, "created_at": str(int(now))}

    def _media_get(self, ctx: _Ctx) -> Any:
        rec = self.media.get(ctx.query.get("media_id", ""))
        if rec is None or self.clock() - rec.created_at > MEDIA_TTL:
            return self._error(ctx, 40007)
        name = rec.filename or rec.media_id
        # A header is Latin-1: a non-ASCII name goes as RFC 6266's filename* (our assumption for such names;
        # WeCom's reference shows only ASCII ones).
        ascii_name = name.encode("ascii", "replace").decode().replace("?", "_")
        disposition = f'attachment; filename="{ascii_name}"'
        if ascii_name != name:
            disposition += f"; filename*=UTF-8''{urllib.parse.quote(name)}"
        headers = {"Content-Disposition": disposition}
        return Response(rec.data, media_type=rec.content_type, headers=headers)

    def _media_ok(self, media_id: Any) -> bool:
        rec = self.media.get(media_id) if isinstance(media_id, str) else None
        return rec is not None and self.clock() - rec.created_at <= MEDIA_TTL

    # ------------------------------------------------------------------------------------ message/send

    def _resolve(self, touser: Any, toparty: Any, totag: Any) -> tuple[list[str], list[str], list[str], list[str],
                                                                      list[str]]:
        """(valid users, invalid users, invalid parties, invalid tags, valid parties+tags).

        Without a member list, '@all' stays one literal recipient."""
        def split(value: Any) -> list[str]:
            return [v.strip() for v in str(value or "").split("|") if v.strip()]

        users, bad_users = [], []
        for uid in split(touser):
            if uid == "@all":
                users.extend(sorted(self.users) if self.users is not None else ["@all"])
            elif (self.users is None and USERID_RE.fullmatch(uid)) or (self.users is not None and uid in self.users):
                users.append(uid)
            else:
                bad_users.append(uid.lower())
        parties, tags = split(toparty), split(totag)
        bad_parties = [p for p in parties if p not in self.parties]
        bad_tags = [t for t in tags if t not in self.tags]
        groups = [p for p in parties if p in self.parties] + [t for t in tags if t in self.tags]
        return list(dict.fromkeys(users)), bad_users, bad_parties, bad_tags, groups

    def _message_send(self, ctx: _Ctx) -> dict[str, Any]:
        body = ctx.json()
        if not isinstance(body, dict):
            return self._error(ctx, ERRCODES["invalid_json"])
        try:
            agentid = int(body.get("agentid"))
        except (TypeError, ValueError):
            return self._error(ctx, 40056)
        if agentid != ctx.agentid:
            return self._error(ctx, 40056)
        msgtype = body.get("msgtype")
        if msgtype not in SEND_MSGTYPES:
            return self._error(ctx, 40008)
        payload = body.get(msgtype)
        body = copy.deepcopy(body)
        truncated = False
        if msgtype in ("text", "markdown"):
            content = payload.get("content") if isinstance(payload, dict) else None
            if not isinstance(content, str) or not content:
                return self._error(ctx, 44004)
            if _utf8_len(content) > 2048:
                if self.oversize == "error":
                    return self._error(ctx, 45002)
                body[msgtype]["content"] = _truncate_utf8(content, 2048)
                truncated = True
        elif msgtype in ("image", "voice", "video", "file"):
            if not isinstance(payload, dict) or not self._media_ok(payload.get("media_id")):
                return self._error(ctx, 40007)
        elif msgtype == "textcard":
            if not isinstance(payload, dict) or not all(payload.get(k) for k in ("title", "description", "url")):
                return self._error(ctx, ERRCODES["invalid_param"], "textcard needs title, description and url")
        elif msgtype == "news":
            articles = payload.get("articles") if isinstance(payload, dict) else None
            if not isinstance(articles, list) or not articles:
                return self._error(ctx, ERRCODES["invalid_param"], "news.articles missing")
            if len(articles) > 8:
                return self._error(ctx, 45008)
        elif msgtype == "template_card":
            problem = validate_template_card(payload)
            if problem:
                return self._error(ctx, *problem)
            task_id = payload.get("task_id")
            if task_id is not None:
                used = self._task_ids.setdefault(agentid, set())
                if task_id in used:
                    return self._error(ctx, 42014)
        elif not isinstance(payload, dict):
            return self._error(ctx, ERRCODES["invalid_param"], f"{msgtype} missing")

        users, bad_users, bad_parties, bad_tags, groups = self._resolve(
            body.get("touser"), body.get("toparty"), body.get("totag"))
        invalid = {"invaliduser": "|".join(bad_users), "invalidparty": "|".join(bad_parties),
                   "invalidtag": "|".join(bad_tags), "unlicenseduser": ""}
        if not users and not groups:
            return self._error(ctx, 81013, **invalid)

        now = self.clock()
        checked = self._duplicate_check(ctx, now)
        if isinstance(checked, dict):
            return {**checked, **invalid}
        msgid = f"msg{next(self._ids):06d}{secrets.token_hex(8)}"
        if checked is not None:
            self._checked[checked] = (now, msgid)
        delivered, dropped = [], []
        for uid in users:
            if self._hit(self._member_hits, f"{agentid}:{uid}", now, self.member_cap_per_minute):
                delivered.append(uid)
            else:
                dropped.append(uid)
                self.dropped_messages.append((msgid, uid))
        response: dict[str, Any] = {"errcode": 0, "errmsg": "ok", **invalid, "msgid": msgid}
        rcode = None
        if msgtype == "template_card":
            task_id = payload.get("task_id")
            if task_id:
                self._task_ids.setdefault(agentid, set()).add(task_id)
                self.cards[task_id] = CardState(task_id, agentid, copy.deepcopy(payload), msgid, delivered)
            if payload.get("card_type") in INTERACTIVE_CARDS or payload.get("action_menu"):
                rcode = self.issue_response_code(task_id)
                response["response_code"] = rcode
        self.sent_messages.append(SentMessage(msgid, agentid, msgtype, body, delivered, dropped, bad_users, now,
                                              truncated, rcode))
        return response

    def _duplicate_check(self, ctx: _Ctx, now: float) -> str | dict[str, Any] | None:
        """重复消息检查 (https://developer.work.weixin.qq.com/document/path/90236): with
        ``"enable_duplicate_check": 1``, "在一定时间间隔内，同样内容（请求json）的消息，不会重复收到", the interval
        ``duplicate_check_interval`` (default 1800 s, at most 4 hours).

        Returns the request's key when it is to be delivered (and remembered), None without the check, or the
        answer to a repeat. OUR ASSUMPTIONS (the page does not say): "the same request JSON" is the same JSON
        value, key order aside; the interval runs from the first delivered send and a repeat does not extend
        it; a repeat is answered like a send (errcode 0) with the first one's msgid and counts against no cap;
        an interval out of range is refused with 40058.
        """
        body = ctx.json()
        if body.get("enable_duplicate_check") not in (1, "1"):
            return None
        interval = body.get("duplicate_check_interval", DUPLICATE_CHECK_DEFAULT)
        if isinstance(interval, bool) or not isinstance(interval, int) or not 0 < interval <= DUPLICATE_CHECK_MAX:
            return self._error(ctx, ERRCODES["invalid_param"], "duplicate_check_interval invalid")
        key = json.dumps(body, sort_keys=True, ensure_ascii=False)
        first = self._checked.get(key)
        if first is not None and now - first[0] < interval:
            self.duplicates.append((first[1], body))
            return {"errcode": 0, "errmsg": "ok", "msgid": first[1]}
        return key

    # ------------------------------------------------------------------------------------ update card

    def _update_card(self, ctx: _Ctx) -> dict[str, Any]:
        body = ctx.json()
        if not isinstance(body, dict):
            return self._error(ctx, ERRCODES["invalid_json"])
        try:
            agentid = int(body.get("agentid"))
        except (TypeError, ValueError):
            return self._error(ctx, 40056)
        if agentid != ctx.agentid:
            return self._error(ctx, 40056)
        code = body.get("response_code")
        rc = self.response_codes.get(code) if isinstance(code, str) else None
        if rc is None or rc.agentid != agentid:
            return self._error(ctx, ERRCODES["invalid_response_code"], "invalid response_code")
        if rc.used:
            return self._error(ctx, ERRCODES["invalid_response_code"], "response_code has been used")
        if self.clock() - rc.issued_at > RESPONSE_CODE_TTL:
            return self._error(ctx, ERRCODES["invalid_response_code"], "response_code expired")
        card = self.cards.get(rc.task_id)
        button = body.get("button")
        new_card = body.get("template_card")
        if button is not None:
            if not isinstance(button, dict) or not button.get("replace_name"):
                return self._error(ctx, ERRCODES["invalid_param"], "button.replace_name missing")
            if card is None or card.card.get("card_type") not in INTERACTIVE_CARDS:
                return self._error(ctx, ERRCODES["invalid_param"], "button update needs an interactive card")
        elif new_card is not None:
            problem = validate_template_card(new_card, require_task_id=False)
            if problem:
                return self._error(ctx, *problem)
        else:
            return self._error(ctx, ERRCODES["invalid_param"], "button or template_card required")
        recipients = card.recipients if card else []
        asked = [str(u) for u in body.get("userids") or []]
        if body.get("atall") == 1:
            targets = list(recipients)
        else:
            targets = [u for u in asked if u in recipients]
        invalid = [u.lower() for u in asked if u not in recipients]
        rc.used = True
        if card is not None:
            for uid in targets:
                if button is not None:
                    card.replaced_name[uid] = button["replace_name"]
                else:
                    card.views[uid] = copy.deepcopy(new_card)
        self.card_updates.append({"response_code": code, "task_id": rc.task_id, "targets": targets,
                                  "button": button, "template_card": new_card, "at": self.clock()})
        return {"errcode": 0, "errmsg": "ok", "invaliduser": invalid}

    def apply_passive_update(self, user: str, task_id: str, replace_name: str | None = None,
                             card: dict[str, Any] | None = None) -> None:
        """Record a passive ``update_button``/``update_template_card`` reply for one user's view."""
        with self._lock:
            state = self.cards.get(task_id)
            if state is None:
                return
            if replace_name is not None:
                state.replaced_name[user] = replace_name
            if card is not None:
                state.views[user] = card

    # ------------------------------------------------------------------------------------ webhook

    def _webhook_key(self, ctx: _Ctx) -> str | dict[str, Any]:
        key = ctx.query.get("key", "")
        if key not in self.webhook_keys:
            return self._error(ctx, ERRCODES["webhook_bad_key"])
        return key

    def _webhook_send(self, ctx: _Ctx) -> dict[str, Any]:
        key = self._webhook_key(ctx)
        if isinstance(key, dict):
            return key
        if not self._hit(self._webhook_hits, key, self.clock(), self.webhook_per_minute):
            return self._error(ctx, ERRCODES["webhook_rate"])
        body = ctx.json()
        if not isinstance(body, dict):
            return self._error(ctx, ERRCODES["invalid_json"])
        msgtype = body.get("msgtype")
        if msgtype not in WEBHOOK_MSGTYPES:
            return self._error(ctx, 40008)
        payload = body.get(msgtype)
        if not isinstance(payload, dict):
            return self._error(ctx, ERRCODES["invalid_param"], f"{msgtype} missing")
        image = None
        bad = ERRCODES["invalid_param"]
        if msgtype in ("text", "markdown", "markdown_v2"):
            content = payload.get("content")
            limit = 2048 if msgtype == "text" else 4096
            if not isinstance(content, str) or not content:
                return self._error(ctx, 44004)
            if _utf8_len(content) > limit:
                return self._error(ctx, bad, f"{msgtype}.content exceed max length {limit}")
        elif msgtype == "image":
            b64, md5 = payload.get("base64"), payload.get("md5")
            if not isinstance(b64, str) or not isinstance(md5, str) or not b64 or not md5:
                return self._error(ctx, bad, "image.base64 and image.md5 required")
            try:
                image = base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError):
                return self._error(ctx, bad, "image.base64 invalid")
            if len(image) > 2 * MB:
                return self._error(ctx, 40009)
            if hashlib.md5(image).hexdigest() != md5.lower():
                return self._error(ctx, ERRCODES["webhook_md5"])
            if _sniff(image) not in ("png", "jpg"):
                return self._error(ctx, 40004)
        elif msgtype == "news":
            articles = payload.get("articles")
            if not isinstance(articles, list) or not articles:
                return self._error(ctx, bad, "news.articles missing")
            if len(articles) > 8:
                return self._error(ctx, 45008)
            if not all(isinstance(a, dict) and a.get("title") and a.get("url") for a in articles):
                return self._error(ctx, bad, "news.articles need title and url")
        elif msgtype in ("file", "voice"):
            rec = self.webhook_media.get(payload.get("media_id", ""))
            if rec is None or rec.type != msgtype or self.clock() - rec.created_at > MEDIA_TTL:
                return self._error(ctx, 40007)
        elif msgtype == "template_card":
            problem = validate_template_card(payload, webhook=True)
            if problem:
                return self._error(ctx, *problem)
        self.webhook_messages.append(WebhookMessage(key, msgtype, body, self.clock(), image))
        return {"errcode": 0, "errmsg": "ok"}

    def _webhook_upload(self, ctx: _Ctx) -> dict[str, Any]:
        key = self._webhook_key(ctx)
        if isinstance(key, dict):
            return key
        mtype = ctx.query.get("type", "")
        if mtype not in ("file", "voice"):
            return self._error(ctx, 40005)
        part = self._read_media_part(ctx)
        if isinstance(part, dict):
            return part
        size = len(part.data)
        if size == 0:
            return self._error(ctx, 44001)
        if size <= 5 or size > (20 * MB if mtype == "file" else 2 * MB):
            return self._error(ctx, 40006)
        if mtype == "voice" and _sniff(part.data) != "amr":
            return self._error(ctx, 40004)
        media_id = "3" + secrets.token_urlsafe(48)
        now = self.clock()
        self.webhook_media[media_id] = MediaRecord(media_id, mtype, part.filename, part.content_type, part.data, now)
        return {"errcode": 0, "errmsg": "ok", "type": mtype, "media_id": media_id, "created_at": str(int(now))}


# ============================================================================================ card validation


def validate_template_card(
    card: Any, *, webhook: bool = False, require_task_id: bool = True
) -> tuple[int, str] | None:
    """Structural checks of a ``template_card`` (https://developer.work.weixin.qq.com/document/path/90236).
    ``None`` if fine, else ``(errcode, errmsg)``.

    Display-length "suggestions" are not enforced (WeCom truncates them); counts, required fields, key
    sizes and ``task_id`` rules are.
    """
    bad = ERRCODES["invalid_param"]
    if not isinstance(card, dict):
        return bad, "template_card must be an object"
    ctype = card.get("card_type")
    allowed = ("text_notice", "news_notice") if webhook else CARD_TYPES
    if ctype not in allowed:
        return bad, "template_card.card_type invalid"

    def items(name: str, lo: int, hi: int, required: bool = False, src: dict[str, Any] = card) -> Any:
        value = src.get(name)
        if value is None:
            return (bad, f"template_card.{name} missing") if required else []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            return bad, f"template_card.{name} must be a list of objects"
        if not lo <= len(value) <= hi:
            return bad, f"template_card.{name} count must be {lo}..{hi}"
        return value

    for name in ("source", "main_title", "emphasis_content", "quote_area", "card_action", "action_menu",
                 "card_image", "image_text_area", "submit_button", "checkbox", "button_selection"):
        if name in card and not isinstance(card[name], dict):
            return bad, f"template_card.{name} must be an object"

    menu = card.get("action_menu")
    if menu is not None:
        actions = items("action_list", 1, 3, True, menu)
        if isinstance(actions, tuple):
            return actions
        if not all(a.get("text") and a.get("key") and _utf8_len(a["key"]) <= 1024 for a in actions):
            return bad, "action_menu.action_list needs text and key (<=1024 bytes)"

    task_id = card.get("task_id")
    if ctype in INTERACTIVE_CARDS or menu is not None:
        if require_task_id and (not isinstance(task_id, str) or not TASK_ID_RE.fullmatch(task_id)):
            return 42014, ERRMSGS[42014]
    elif task_id is not None and (not isinstance(task_id, str) or not TASK_ID_RE.fullmatch(task_id)):
        return 42014, ERRMSGS[42014]

    horizontal = items("horizontal_content_list", 1, 6)
    if isinstance(horizontal, tuple):
        return horizontal
    for h in horizontal:
        if not h.get("keyname"):
            return bad, "horizontal_content_list.keyname missing"
        need = {1: "url", 2: "media_id", 3: "userid"}.get(h.get("type", 0))
        if need and not h.get(need):
            return bad, f"horizontal_content_list.{need} missing"
    jumps = items("jump_list", 1, 3)
    if isinstance(jumps, tuple):
        return jumps
    for j in jumps:
        if not j.get("title"):
            return bad, "jump_list.title missing"
        if j.get("type") == 1 and not j.get("url"):
            return bad, "jump_list.url missing"
        if j.get("type") == 2 and not j.get("appid"):
            return bad, "jump_list.appid missing"

    action = card.get("card_action")
    if ctype in ("text_notice", "news_notice"):
        if not action:
            return bad, "template_card.card_action missing"
        if action.get("type") == 1 and not action.get("url"):
            return bad, "card_action.url missing"
        if action.get("type") == 2 and not action.get("appid"):
            return bad, "card_action.appid missing"
        if action.get("type") not in (1, 2):
            return bad, "card_action.type invalid"
    if ctype == "text_notice":
        if not (card.get("main_title") or {}).get("title") and not card.get("sub_title_text"):
            return bad, "text_notice needs main_title.title or sub_title_text"
    elif ctype == "news_notice":
        image = card.get("card_image") or {}
        area = card.get("image_text_area") or {}
        if not image.get("url") and not (area.get("image_url") or area.get("images_url")):
            return bad, "news_notice needs card_image or image_text_area"
        vertical = items("vertical_content_list", 1, 4)
        if isinstance(vertical, tuple):
            return vertical
    elif ctype == "button_interaction":
        buttons = items("button_list", 1, 6, True)
        if isinstance(buttons, tuple):
            return buttons
        keys = []
        for b in buttons:
            if not b.get("text"):
                return bad, "button_list.text missing"
            if b.get("type", 0) == 1:
                if not b.get("url"):
                    return bad, "button_list.url missing"
            else:
                key = b.get("key")
                if not key or _utf8_len(key) > 1024:
                    return bad, "button_list.key missing or longer than 1024 bytes"
                keys.append(key)
            if "style" in b and b["style"] not in (1, 2, 3, 4):
                return bad, "button_list.style invalid"
        if len(keys) != len(set(keys)):
            return bad, "button_list.key duplicated"
        selection = card.get("button_selection")
        if selection is not None:
            problem = _check_question(selection, 10, "button_selection")
            if problem:
                return problem
    elif ctype == "vote_interaction":
        box = card.get("checkbox")
        if not box:
            return bad, "template_card.checkbox missing"
        problem = _check_question(box, 20, "checkbox")
        if problem:
            return problem
        if box.get("mode", 0) not in (0, 1):
            return bad, "checkbox.mode invalid"
        if not (card.get("submit_button") or {}).get("key"):
            return bad, "submit_button.key missing"
    elif ctype == "multiple_interaction":
        selects = items("select_list", 1, 3, True)
        if isinstance(selects, tuple):
            return selects
        for s in selects:
            problem = _check_question(s, 10, "select_list")
            if problem:
                return problem
        qkeys = [s["question_key"] for s in selects]
        if len(qkeys) != len(set(qkeys)):
            return bad, "select_list.question_key duplicated"
        if not (card.get("submit_button") or {}).get("key"):
            return bad, "submit_button.key missing"
    return None


def _check_question(q: dict[str, Any], max_options: int, where: str) -> tuple[int, str] | None:
    bad = ERRCODES["invalid_param"]
    key = q.get("question_key")
    if not key or _utf8_len(key) > 1024:
        return bad, f"{where}.question_key missing or longer than 1024 bytes"
    options = q.get("option_list")
    if not isinstance(options, list) or not 1 <= len(options) <= max_options:
        return bad, f"{where}.option_list count must be 1..{max_options}"
    ids = []
    for o in options:
        if not isinstance(o, dict) or not o.get("id") or not o.get("text") or _utf8_len(o["id"]) > 128:
            return bad, f"{where}.option_list needs id (<=128 bytes) and text"
        ids.append(o["id"])
    if len(ids) != len(set(ids)):
        return bad, f"{where}.option_list.id duplicated"
    return None


def card_event_keys(card: dict[str, Any]) -> set[str]:
    """Every ``EventKey`` a click on ``card`` can produce."""
    keys = {b["key"] for b in card.get("button_list") or [] if b.get("type", 0) != 1 and b.get("key")}
    if (card.get("submit_button") or {}).get("key"):
        keys.add(card["submit_button"]["key"])
    keys |= {a["key"] for a in (card.get("action_menu") or {}).get("action_list") or [] if a.get("key")}
    return keys


def card_questions(card: dict[str, Any]) -> dict[str, tuple[set[str], bool]]:
    """``{question_key: (option ids, multi-choice allowed)}`` for a card."""
    out: dict[str, tuple[set[str], bool]] = {}
    for q in [card.get("button_selection"), card.get("checkbox"), *(card.get("select_list") or [])]:
        if isinstance(q, dict) and q.get("question_key"):
            multi = q is card.get("checkbox") and q.get("mode", 0) == 1
            out[q["question_key"]] = ({o.get("id") for o in q.get("option_list") or []}, multi)
    return out


# ============================================================================================ callbacks


class WxBizCipher:
    """WXBizMsgCrypt as WeCom's server does it — independent of ``handlers.wecom.crypto``."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self.token = token
        self.key = base64.b64decode(encoding_aes_key + "=")
        if len(self.key) != 32:
            raise ValueError("EncodingAESKey must decode to 32 bytes")
        self.receive_id = receive_id

    def sign(self, timestamp: str, nonce: str, encrypted: str) -> str:
        return hashlib.sha1("".join(sorted([self.token, timestamp, nonce, encrypted])).encode()).hexdigest()

    def encrypt(self, text: str, random16: bytes | None = None) -> str:
        prefix = random16 if random16 is not None else "".join(
            secrets.choice(string.ascii_letters + string.digits) for _ in range(16)).encode()
        msg = text.encode("utf-8")
        raw = prefix + struct.pack("!I", len(msg)) + msg + self.receive_id.encode()
        n = 32 - len(raw) % 32
        raw += bytes([n] * n)
        enc = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).encryptor()
        return base64.b64encode(enc.update(raw) + enc.finalize()).decode()

    def decrypt(self, encrypted: str) -> str:
        dec = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).decryptor()
        plain = dec.update(base64.b64decode(encrypted)) + dec.finalize()
        n = plain[-1]
        if not 1 <= n <= 32:
            raise CallbackReplyError("reply padding out of range")
        content = plain[16:-n]
        (length,) = struct.unpack("!I", content[:4])
        if content[4 + length:] != self.receive_id.encode():
            raise CallbackReplyError("reply receive id is not the CorpID")
        return content[4 : 4 + length].decode("utf-8")


class CallbackReplyError(AssertionError):
    """The bot's passive reply is not what WeCom would accept."""


def _cd(text: str) -> str:
    return "<![CDATA[" + str(text).replace("]]>", "]]]]><![CDATA[>") + "]]>"


@dataclass
class CallbackRequest:
    """One callback exactly as WeCom would send it (kept whole so it can be re-sent byte for byte)."""

    method: str
    url: str
    params: dict[str, str]
    body: bytes | None
    headers: dict[str, str]
    plaintext: str
    user: str | None = None
    task_id: str | None = None

    @property
    def full_url(self) -> str:
        return f"{self.url}?{urlencode(self.params)}"


@dataclass
class VerifyResult:
    ok: bool
    echo: str
    response: httpx.Response
    elapsed: float


@dataclass
class Delivery:
    delivered: bool
    responses: list[httpx.Response | Exception]

    @property
    def attempts(self) -> int:
        return len(self.responses)

    @property
    def response(self) -> httpx.Response | None:
        last = self.responses[-1] if self.responses else None
        return last if isinstance(last, httpx.Response) else None


class CallbackSender:
    """Builds and sends what WeCom sends to a self-built app's callback URL.

    ``send_*`` methods are synchronous (httpx) and return the ``httpx.Response``; ``build_*`` return a
    :class:`CallbackRequest` without sending, for :meth:`send`/:meth:`asend`. :meth:`resend` repeats the
    last request byte for byte, as WeCom's retries do. Bound to a :class:`WeComEmulator` (via
    ``WeComEmulator.callback_client``), template-card events use the stored card's type, reject keys and
    options that are not on the card, and carry a real response code the bot can use.
    """

    def __init__(
        self,
        url: str,
        token: str,
        encoding_aes_key: str,
        corp_id: str,
        agent_id: int = 1000002,
        *,
        emulator: WeComEmulator | None = None,
        clock: Callable[[], float] | None = None,
        timeout: float = 5.0,
        verify_timeout: float = 1.0,
    ) -> None:
        self.url = url
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.cipher = WxBizCipher(token, encoding_aes_key, corp_id)
        self.emulator = emulator
        self.clock = clock or time.time
        self.timeout = timeout
        self.verify_timeout = verify_timeout
        self._msg_ids = itertools.count(7_300_000_000_000_000_000 + secrets.randbelow(10**9) * 1000)
        self.last_request: CallbackRequest | None = None
        self.sent: list[CallbackRequest] = []
        self.replies: list[str] = []

    # ---- plaintext builders (the shapes of https://developer.work.weixin.qq.com/document/path/90239
    # and https://developer.work.weixin.qq.com/document/path/90376)

    def _head(self, user: str, create_time: int | None, msg_type: str) -> str:
        ts = int(self.clock()) if create_time is None else create_time
        return (f"<xml><ToUserName>{_cd(self.corp_id)}</ToUserName><FromUserName>{_cd(user)}</FromUserName>"
                f"<CreateTime>{ts}</CreateTime><MsgType>{_cd(msg_type)}</MsgType>")

    def next_msg_id(self) -> int:
        return next(self._msg_ids)

    def text_xml(self, user: str, content: str, *, msg_id: int | None = None, create_time: int | None = None) -> str:
        mid = self.next_msg_id() if msg_id is None else msg_id
        return (self._head(user, create_time, "text") + f"<Content>{_cd(content)}</Content>"
                f"<MsgId>{mid}</MsgId><AgentID>{self.agent_id}</AgentID></xml>")

    def image_xml(self, user: str, media_id: str, pic_url: str = "http://wework.qpic.cn/x.png", *,
                  msg_id: int | None = None, create_time: int | None = None) -> str:
        mid = self.next_msg_id() if msg_id is None else msg_id
        return (self._head(user, create_time, "image") + f"<PicUrl>{_cd(pic_url)}</PicUrl>"
                f"<MediaId>{_cd(media_id)}</MediaId><MsgId>{mid}</MsgId><AgentID>{self.agent_id}</AgentID></xml>")

    def event_xml(self, user: str, event: str, event_key: str = "", *, create_time: int | None = None,
                  extra: str = "") -> str:
        return (self._head(user, create_time, "event") + f"<Event>{_cd(event)}</Event>"
                f"<EventKey>{_cd(event_key)}</EventKey>{extra}<AgentID>{self.agent_id}</AgentID></xml>")

    def enter_agent_xml(self, user: str, *, create_time: int | None = None) -> str:
        return self.event_xml(user, "enter_agent", create_time=create_time)

    def click_xml(self, user: str, key: str, *, create_time: int | None = None) -> str:
        return self.event_xml(user, "click", key, create_time=create_time)

    def template_card_event_xml(
        self,
        user: str,
        task_id: str,
        event_key: str,
        *,
        selected: dict[str, list[str] | str] | None = None,
        card_type: str | None = None,
        response_code: str | None = None,
        create_time: int | None = None,
        event: str = "template_card_event",
    ) -> str:
        selected = {k: [v] if isinstance(v, str) else list(v) for k, v in (selected or {}).items()}
        card = self.emulator.cards.get(task_id) if self.emulator else None
        if card is not None:
            view = card.view(user)
            if event_key not in card_event_keys(view):
                raise ValueError(f"event key {event_key!r} is not on card {task_id!r}")
            questions = card_questions(view)
            for qkey, ids in selected.items():
                if qkey not in questions:
                    raise ValueError(f"question {qkey!r} is not on card {task_id!r}")
                options, multi = questions[qkey]
                if not set(ids) <= options or (len(ids) > 1 and not multi):
                    raise ValueError(f"options {ids!r} not valid for question {qkey!r}")
            card_type = card_type or view.get("card_type")
        if response_code is None:
            response_code = (self.emulator.issue_response_code(task_id, user) if self.emulator
                             else "RC" + secrets.token_hex(16))
        extra = (f"<TaskId>{_cd(task_id)}</TaskId><CardType>{_cd(card_type or 'button_interaction')}</CardType>"
                 f"<ResponseCode>{_cd(response_code)}</ResponseCode>")
        if selected:
            extra += "<SelectedItems>" + "".join(
                f"<SelectedItem><QuestionKey>{_cd(q)}</QuestionKey><OptionIds>"
                + "".join(f"<OptionId>{_cd(o)}</OptionId>" for o in ids)
                + "</OptionIds></SelectedItem>"
                for q, ids in selected.items()
            ) + "</SelectedItems>"
        return self.event_xml(user, event, event_key, create_time=create_time, extra=extra)

    # ---- request builders

    def build(self, plaintext: str, *, timestamp: str | int | None = None, nonce: str | int | None = None,
              random16: bytes | None = None, user: str | None = None, task_id: str | None = None) -> CallbackRequest:
        """Encrypt ``plaintext`` into the POST WeCom makes (envelope + signed query string)."""
        ts = str(int(self.clock()) if timestamp is None else timestamp)
        nn = str(secrets.randbelow(9 * 10**9) + 10**9 if nonce is None else nonce)
        encrypted = self.cipher.encrypt(plaintext, random16)
        body = (f"<xml><ToUserName>{_cd(self.corp_id)}</ToUserName><Encrypt>{_cd(encrypted)}</Encrypt>"
                f"<AgentID>{_cd(str(self.agent_id))}</AgentID></xml>").encode()
        params = {"msg_signature": self.cipher.sign(ts, nn, encrypted), "timestamp": ts, "nonce": nn}
        if user is None:
            m = re.search(r"<FromUserName><!\[CDATA\[(.*?)\]\]>", plaintext)
            user = m.group(1) if m else None
        return CallbackRequest("POST", self.url, params, body, {"Content-Type": "text/xml"}, plaintext, user, task_id)

    def build_verify(self, echo: str | None = None, *, timestamp: str | int | None = None,
                     nonce: str | int | None = None) -> CallbackRequest:
        """The GET URL verification: a random 19-digit echo, encrypted and signed."""
        echo = echo if echo is not None else str(secrets.randbelow(9 * 10**18) + 10**18)
        ts = str(int(self.clock()) if timestamp is None else timestamp)
        nn = str(secrets.randbelow(9 * 10**9) + 10**9 if nonce is None else nonce)
        encrypted = self.cipher.encrypt(echo)
        params = {"msg_signature": self.cipher.sign(ts, nn, encrypted), "timestamp": ts, "nonce": nn,
                  "echostr": encrypted}
        return CallbackRequest("GET", self.url, params, None, {}, echo)

    # ---- sending

    def _remember(self, request: CallbackRequest) -> None:
        self.last_request = request
        self.sent.append(request)

    def send(self, request: CallbackRequest, timeout: float | None = None) -> httpx.Response:
        self._remember(request)
        with httpx.Client(timeout=timeout or self.timeout) as client:
            return client.request(request.method, request.url, params=request.params, content=request.body,
                                  headers=request.headers)

    async def asend(self, request: CallbackRequest, timeout: float | None = None) -> httpx.Response:
        self._remember(request)
        async with httpx.AsyncClient(timeout=timeout or self.timeout) as client:
            return await client.request(request.method, request.url, params=request.params,
                                        content=request.body, headers=request.headers)

    def resend(self) -> httpx.Response:
        """WeCom's retry: the previous request again, same query string and same body."""
        if self.last_request is None:
            raise RuntimeError("nothing sent yet")
        return self.send(self.last_request)

    async def aresend(self) -> httpx.Response:
        if self.last_request is None:
            raise RuntimeError("nothing sent yet")
        return await self.asend(self.last_request)

    def deliver(self, request: CallbackRequest, retries: int = 3) -> Delivery:
        """Send like WeCom: no HTTP 200 within ``timeout`` → the same payload again, ``retries`` more times."""
        responses: list[httpx.Response | Exception] = []
        for _ in range(1 + retries):
            try:
                response = self.send(request)
            except httpx.HTTPError as exc:
                responses.append(exc)
                continue
            responses.append(response)
            if response.status_code == 200:
                return Delivery(True, responses)
        return Delivery(False, responses)

    def verify_url(self, echo: str | None = None) -> VerifyResult:
        """URL verification as the admin console does it: passes iff HTTP 200 and the body equals the
        echo exactly (no quotes, BOM or newline) within ``verify_timeout`` seconds."""
        request = self.build_verify(echo)
        started = time.monotonic()
        response = self.send(request, timeout=max(self.verify_timeout, 0.1) + 4)
        elapsed = time.monotonic() - started
        ok = response.status_code == 200 and response.content == request.plaintext.encode() \
            and elapsed <= self.verify_timeout
        return VerifyResult(ok, request.plaintext, response, elapsed)

    def send_text(self, user: str, content: str, *, msg_id: int | None = None,
                  create_time: int | None = None) -> httpx.Response:
        return self.send(self.build(self.text_xml(user, content, msg_id=msg_id, create_time=create_time)))

    def send_image(self, user: str, media_id: str, **kwargs: Any) -> httpx.Response:
        return self.send(self.build(self.image_xml(user, media_id, **kwargs)))

    def send_file(self, user: str, media_id: str, *, create_time: int | None = None) -> httpx.Response:
        """``MsgType=file`` with a ``MediaId``: outside the documented types of a self-built app's callback,
        which some tenants report receiving (our assumption of its shape: the image message's fields)."""
        mid = self.next_msg_id()
        xml = (self._head(user, create_time, "file") + f"<MediaId>{_cd(media_id)}</MediaId><MsgId>{mid}</MsgId>"
               f"<AgentID>{self.agent_id}</AgentID></xml>")
        return self.send(self.build(xml))

    def send_enter_agent(self, user: str, *, create_time: int | None = None) -> httpx.Response:
        return self.send(self.build(self.enter_agent_xml(user, create_time=create_time)))

    def send_click(self, user: str, key: str, *, create_time: int | None = None) -> httpx.Response:
        return self.send(self.build(self.click_xml(user, key, create_time=create_time)))

    def send_template_card_event(self, user: str, task_id: str, event_key: str, **kwargs: Any) -> httpx.Response:
        xml = self.template_card_event_xml(user, task_id, event_key, **kwargs)
        return self.send(self.build(xml, task_id=task_id))

    # ---- passive replies

    def decrypt_reply(self, response: httpx.Response, request: CallbackRequest | None = None) -> str | None:
        """Check a passive reply as WeCom does and return its plaintext XML (``None`` for an empty 200).

        Verifies ``MsgSignature`` with the echoed ``TimeStamp``/``Nonce``, decrypts with receive id =
        CorpID and checks the addressing (``ToUserName`` = the user, ``FromUserName`` = CorpID) and
        ``MsgType``. An ``update_button`` answer to a card event updates the emulator's card view.
        """
        request = request or self.last_request
        if response.status_code != 200:
            raise CallbackReplyError(f"HTTP {response.status_code}")
        if not response.content.strip():
            return None
        try:
            root = ET.fromstring(response.content)
        except ET.ParseError as exc:
            raise CallbackReplyError("reply envelope is not XML") from exc
        fields = {n: (root.findtext(n) or "").strip() for n in ("Encrypt", "MsgSignature", "TimeStamp", "Nonce")}
        if not all(fields.values()):
            raise CallbackReplyError(f"reply envelope incomplete: {sorted(k for k, v in fields.items() if not v)}")
        expected = self.cipher.sign(fields["TimeStamp"], fields["Nonce"], fields["Encrypt"])
        if expected != fields["MsgSignature"]:
            raise CallbackReplyError("reply MsgSignature does not verify")
        plaintext = self.cipher.decrypt(fields["Encrypt"])
        reply = ET.fromstring(plaintext)
        if (reply.findtext("FromUserName") or "") != self.corp_id:
            raise CallbackReplyError("reply FromUserName is not the CorpID")
        if request is not None and request.user is not None and (reply.findtext("ToUserName") or "") != request.user:
            raise CallbackReplyError("reply ToUserName is not the sender")
        msg_type = reply.findtext("MsgType") or ""
        if msg_type not in ("text", "image", "voice", "video", "news", "update_button", "update_template_card",
                            "update_taskcard", "markdown", "template_card"):
            raise CallbackReplyError(f"reply MsgType {msg_type!r} not accepted")
        if msg_type.startswith("update_") and (request is None or request.task_id is None):
            raise CallbackReplyError(f"{msg_type} is only a valid answer to a template_card_event")
        if msg_type == "update_button" and self.emulator and request and request.user and request.task_id:
            self.emulator.apply_passive_update(request.user, request.task_id,
                                               replace_name=reply.findtext("Button/ReplaceName") or "")
        self.replies.append(plaintext)
        return plaintext
