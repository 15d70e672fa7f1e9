"""The WeCom server API for one self-built app: token, media upload, send, card update.

WeCom's pages: gettoken https://developer.work.weixin.qq.com/document/path/91039,
media/upload https://developer.work.weixin.qq.com/document/path/90253,
message/send https://developer.work.weixin.qq.com/document/path/90236,
message/update_template_card https://developer.work.weixin.qq.com/document/path/94888.

    client = WeComClient(http, settings.wecom_api_url, corp_id, agent_id, secret)
    media_id = await client.upload_media(jpeg, "code.jpg", "image/jpeg")
    await client.send(Target("zhangsan"), "image", {"media_id": media_id})

* **Access token**: fetched with ``gettoken``, cached until shortly before ``expires_in``, fetched by one
  caller at a time (single flight: a burst of callers shares one ``gettoken``). A call answered
  ``40014``/``42001`` refreshes the token once and is retried once; a second refusal is an error.
* **Errors**: every ``errcode`` becomes one of our :mod:`bot.errors` classes (provider ``"wecom"``) with a
  Chinese and an English sentence, at one boundary (:func:`wecom_error`). ``60020`` (this server's IP is
  not among the app's trusted IPs) and ``81013`` (the person is outside the app's visible range) are
  also logged with the fix an admin has to make.
* **Media sent once**: an ``image``/``file`` message to a member asks for WeCom's duplicate check
  (``enable_duplicate_check``, message/send above: "在一定时间间隔内，同样内容（请求json）的消息，不会重复收到",
  the interval ``duplicate_check_interval``, default 1800 s, at most 4 hours). Its body names one upload
  (the media_id), so the same body again is the same answer sent again after a crash (deliver.py keeps the
  media_id for that), never a second request's. Text has no such name: two requests may well get the same
  words, which the check would swallow, so text goes without it. ``appchat/send`` (a group chat) documents
  no such check.
* **Secrets**: the corp secret and access tokens go in query strings, as WeCom requires; they are never
  logged here, and httpx's own request log lines are filtered so they show ``access_token=***``.
"""

from __future__ import annotations

import logging
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr

from bot import errors as e
from bot.concurrency import SingleFlight
from bot.metrics import METRICS
from bot.redact import guard_logs

__all__ = [
    "CHECKED_MSGTYPES",
    "DUPLICATE_CHECK_INTERVAL",
    "SendResult",
    "Target",
    "WeComClient",
    "wecom_error",
]

log = logging.getLogger("minpcode.wecom.client")

TOKEN_MARGIN = 300.0
"""Refresh this many seconds before WeCom says the token expires."""
TOKEN_RETRY_CODES = frozenset({40014, 42001})
DUPLICATE_CHECK_INTERVAL = 4 * 3600
"""Seconds WeCom drops a repeat of a media message: its maximum, so a restart however slow is covered."""
CHECKED_MSGTYPES = frozenset({"image", "file"})

_Entry = tuple[type[e.UpstreamError], str, str]
ERRORS: dict[int, _Entry] = {
    -1: (e.UpstreamBusy, "企业微信系统繁忙，请稍后再试。", "WeCom is busy; try again in a moment."),
    40001: (e.ConfigError, "企业微信应用的 Secret 不对，请检查 WECOM_SECRET。",
            "The WeCom app secret is wrong; check WECOM_SECRET."),
    40091: (e.ConfigError, "企业微信应用的 Secret 不对（可能是别的应用的 Secret），请检查 WECOM_SECRET。",
            "The WeCom app secret is wrong (perhaps another app's); check WECOM_SECRET."),
    40013: (e.ConfigError, "企业 ID 不对，请检查 WECOM_CORP_ID。", "The corp id is wrong; check WECOM_CORP_ID."),
    40014: (e.TokenInvalid, "企业微信 access_token 无效。", "The WeCom access token is invalid."),
    42001: (e.TokenInvalid, "企业微信 access_token 已过期。", "The WeCom access token has expired."),
    41001: (e.TokenInvalid, "请求缺少企业微信 access_token。", "The request had no WeCom access token."),
    40056: (e.ConfigError, "应用 AgentId 不对，请检查 WECOM_AGENT_ID。", "The AgentId is wrong; check WECOM_AGENT_ID."),
    48002: (e.ConfigError, "这个企业微信应用没有调用该接口的权限。", "This WeCom app may not call that API."),
    60020: (e.ConfigError, "本服务器的 IP 不在企业微信应用的「企业可信IP」里，请管理员添加。",
            "This server's IP is not among the WeCom app's trusted IPs; an admin must add it."),
    81013: (e.UpstreamRejected, "收件人不在企业微信应用的可见范围内，消息没有发出。",
            "The recipient is outside the WeCom app's visible range; the message was not sent."),
    60011: (e.ConfigError, "企业微信应用没有这个成员或部门的权限（可见范围）。",
            "The WeCom app has no access to that member or department (visible range)."),
    45009: (e.RateLimited, "企业微信接口调用太频繁，请稍后再试。", "Too many WeCom API calls; try again later."),
    45033: (e.RateLimited, "企业微信接口并发太多，请稍后再试。", "Too many concurrent WeCom API calls; try again later."),
    45002: (e.UpstreamRejected, "消息太长，企业微信拒收。", "The message is too long for WeCom."),
    40007: (e.UpstreamRejected, "图片素材已失效，请重试。", "The uploaded image has expired; try again."),
    40009: (e.UpstreamRejected, "图片太大，企业微信拒收。", "The image is too large for WeCom."),
    42014: (e.UpstreamRejected, "卡片 task_id 重复或不合法。", "The card's task_id is duplicated or invalid."),
}

_FROM_IP = re.compile(r"from ip: ([0-9a-fA-F.:]+)")


def _short(errmsg: str) -> str:
    """WeCom's errmsg without its ``, hint: [...] ... more info at ...`` tail."""
    return errmsg.split(", hint:")[0].strip()


def wecom_error(errcode: int, errmsg: str = "") -> e.UpstreamError:
    """The error for one WeCom ``errcode`` (unknown codes: :class:`~bot.errors.UpstreamRejected`)."""
    cls, zh, en = ERRORS.get(errcode, (
        e.UpstreamRejected, f"企业微信拒绝了请求（错误码 {errcode}）。", f"WeCom refused the request (errcode {errcode}).",
    ))
    return cls("wecom", errcode, zh, en, raw=_short(errmsg))


@dataclass(frozen=True, slots=True)
class Target:
    """Where a message goes: a member (1:1 chat with the app) or an app-created group chat."""

    user: str
    chat_id: str | None = None

    def __str__(self) -> str:
        return f"chat {self.chat_id}" if self.chat_id else f"user {self.user}"


@dataclass(frozen=True, slots=True)
class SendResult:
    msgid: str = ""
    response_code: str | None = None
    invalid_users: tuple[str, ...] = field(default_factory=tuple)


class WeComClient:
    """One self-built app's API client over a shared ``httpx.AsyncClient`` (injected; closed by its owner)."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, corp_id: str, agent_id: int, secret: SecretStr,
                 *, token_margin: float = TOKEN_MARGIN) -> None:
        self._http = http
        self._base = base_url.rstrip("/") + "/cgi-bin/"
        self.corp_id = corp_id
        self.agent_id = agent_id
        self._secret = secret
        self._margin = token_margin
        self._token: str | None = None
        self._expires_at = 0.0
        self._flight: SingleFlight[str, str] = SingleFlight()
        self.token_fetches = 0
        guard_logs()

    def __repr__(self) -> str:
        return f"WeComClient(corp_id={self.corp_id!r}, agent_id={self.agent_id})"

    # -- token ---------------------------------------------------------------------------------------------

    def _fresh(self, stale: str | None) -> str | None:
        token = self._token
        if token and token != stale and time.monotonic() < self._expires_at:
            return token
        return None

    async def token(self, *, stale: str | None = None) -> str:
        """The cached access token, fetched when missing, near expiry or equal to ``stale`` (refused)."""
        token = self._fresh(stale)
        if token:
            return token
        # single flight: a burst of callers shares one gettoken
        return await self._flight.run("token", lambda: self._fetch_token(stale))

    async def _fetch_token(self, stale: str | None) -> str:
        token = self._fresh(stale)
        if token:
            return token
        data = await self._request("GET", "gettoken", params={
            "corpid": self.corp_id, "corpsecret": self._secret.get_secret_value()})
        self.token_fetches += 1
        code = _errcode(data)
        if code != 0 or not isinstance(data.get("access_token"), str):
            raise self._fail(code or -1, data, "gettoken")
        ttl = float(data.get("expires_in") or 7200)
        token = str(data["access_token"])
        self._token = token
        self._expires_at = time.monotonic() + max(0.0, ttl - min(self._margin, ttl / 2))
        log.info("wecom access token fetched (valid %ds)", int(ttl))
        return token

    # -- calls -----------------------------------------------------------------------------------------------

    async def call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                   json: Any = None, files: Any = None, what: str = "") -> dict[str, Any]:
        """One authenticated call; refresh the token once on 40014/42001 and retry once."""
        token = await self.token()
        data = await self._request(method, path, params={**(params or {}), "access_token": token},
                                   json=json, files=files)
        code = _errcode(data)
        if code in TOKEN_RETRY_CODES:
            log.info("wecom %s answered %d: refreshing the access token once", path, code)
            token = await self.token(stale=token)
            data = await self._request(method, path, params={**(params or {}), "access_token": token},
                                       json=json, files=files)
            code = _errcode(data)
        if code != 0:
            raise self._fail(code, data, path, what)
        return data

    async def upload_media(self, data: bytes, filename: str, mime: str, media_type: str = "image") -> str:
        """``media/upload``: the bytes as a temporary media (valid 3 days); returns its ``media_id``."""
        answer = await self.call("POST", "media/upload", params={"type": media_type},
                                 files={"media": (filename, data, mime)}, what=filename)
        media_id = answer.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise wecom_error(-1, "media/upload returned no media_id")
        return media_id

    async def get_media(self, media_id: str, limit: int) -> tuple[bytes, str]:
        """``media/get``: a temporary media's bytes (at most ``limit``) and its file name. WeCom answers an
        error as JSON, the media as its own type with a Content-Disposition file name."""
        token = await self.token()
        try:
            response = await self._http.get(self._base + "media/get",
                                            params={"access_token": token, "media_id": media_id})
        except httpx.HTTPError as exc:
            raise e.UpstreamBusy("wecom", type(exc).__name__, "连不上企业微信，请稍后再试。",
                                 "Could not reach WeCom; try again later.") from exc
        if response.status_code != 200 or "json" in response.headers.get("content-type", ""):
            data = response.json() if "json" in response.headers.get("content-type", "") else {}
            raise self._fail(_errcode(data) if isinstance(data, dict) else -1, data, "media/get")
        if len(response.content) > limit:
            raise e.FieldError("file", "文件太大。", "The file is too large.")
        return response.content, _filename(response.headers.get("content-disposition", ""))

    async def send(self, target: Target, msgtype: str, payload: dict[str, Any]) -> SendResult:
        """``message/send`` to a member, or ``appchat/send`` to an app-created group chat."""
        if target.chat_id:
            body: dict[str, Any] = {"chatid": target.chat_id, "msgtype": msgtype, msgtype: payload}
            data = await self.call("POST", "appchat/send", json=body, what=str(target))
            return SendResult(msgid=str(data.get("msgid") or ""))
        body = {"touser": target.user, "msgtype": msgtype, "agentid": self.agent_id, msgtype: payload}
        if msgtype in CHECKED_MSGTYPES:
            body |= {"enable_duplicate_check": 1, "duplicate_check_interval": DUPLICATE_CHECK_INTERVAL}
        data = await self.call("POST", "message/send", json=body, what=str(target))
        invalid = tuple(u for u in str(data.get("invaliduser") or "").split("|") if u)
        if invalid:
            log.warning("wecom: %s is outside the app's visible range; add them under 应用管理 → app → 可见范围 "
                        "(visible range) in the admin console", ", ".join(invalid))
        code = data.get("response_code")
        return SendResult(msgid=str(data.get("msgid") or ""), response_code=code if isinstance(code, str) else None,
                          invalid_users=invalid)

    async def send_text(self, target: Target, content: str) -> SendResult:
        return await self.send(target, "text", {"content": content})

    async def send_card(self, user: str, card: dict[str, Any]) -> SendResult:
        """A template card to one member (cards cannot go to app group chats)."""
        return await self.send(Target(user), "template_card", card)

    async def update_card(self, response_code: str, userids: list[str], *, replace_name: str | None = None,
                          card: dict[str, Any] | None = None) -> None:
        """``message/update_template_card`` (one use per response code, 72 h): grey the buttons out with
        ``replace_name``, or replace the whole card."""
        body: dict[str, Any] = {"userids": userids, "agentid": self.agent_id, "response_code": response_code}
        if replace_name is not None:
            body["button"] = {"replace_name": replace_name}
        elif card is not None:
            body["template_card"] = card
        else:
            raise ValueError("replace_name or card is required")
        await self.call("POST", "message/update_template_card", json=body, what="card")

    # -- the wire ------------------------------------------------------------------------------------------

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        try:
            response = await self._http.request(method, self._base + path, **kwargs)
        except httpx.TimeoutException as exc:
            METRICS.reached("wecom", False, "timeout")
            raise e.UpstreamBusy("wecom", "timeout", "企业微信没有及时响应，请稍后再试。",
                                 "WeCom did not answer in time; try again later.") from exc
        except httpx.TransportError as exc:
            METRICS.reached("wecom", False, type(exc).__name__)
            raise e.UpstreamBusy("wecom", type(exc).__name__, "连不上企业微信，请稍后再试。",
                                 "Could not reach WeCom; try again later.") from exc
        up = response.status_code < 500
        METRICS.reached("wecom", up, None if up else f"HTTP {response.status_code}")
        if response.status_code != 200:
            raise e.UpstreamBusy("wecom", f"HTTP {response.status_code}", "企业微信返回了错误，请稍后再试。",
                                 f"WeCom answered HTTP {response.status_code}; try again later.")
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise e.UpstreamBusy("wecom", "bad-body", "企业微信返回了无法识别的内容。", "WeCom answered something unreadable.")
        return data

    def _fail(self, code: int, data: dict[str, Any], path: str, what: str = "") -> e.UpstreamError:
        error = wecom_error(code, str(data.get("errmsg") or ""))
        if code == 60020:
            found = _FROM_IP.search(str(data.get("errmsg") or ""))
            ip = found.group(1) if found else "this server's egress IP"
            if found:
                error.raw = f"{error.raw}, from ip: {ip}"  # the IP to add, for doctor and the record
            log.error("wecom %s refused with 60020: the caller IP %s is not trusted. Fix: WeCom admin console → "
                      "应用管理 → the app (AgentId %s) → 企业可信IP (trusted IPs) → add %s (a verified domain or "
                      "the callback URL must be set first).", path, ip, self.agent_id, ip)
        elif code == 81013:
            log.error("wecom %s refused with 81013: no valid recipient (%s). Fix: WeCom admin console → 应用管理 → "
                      "the app (AgentId %s) → 可见范围 (visible range) → add the member or their department.",
                      path, what or "?", self.agent_id)
        elif code in TOKEN_RETRY_CODES:
            log.warning("wecom %s refused the token again with %d after one refresh", path, code)
        else:
            log.warning("wecom %s failed: errcode %d %s", path, code, error.raw)
        return error


def _filename(disposition: str) -> str:
    """The file name of a Content-Disposition header (RFC 6266's ``filename*`` first)."""
    for part in disposition.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "filename*" and "''" in value:
            return urllib.parse.unquote(value.split("''", 1)[1]) or "sheet"
    for part in disposition.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "filename":
            return value.strip('"') or "sheet"
    return "sheet"


def _errcode(data: dict[str, Any]) -> int:
    try:
        return int(data.get("errcode", 0))
    except (TypeError, ValueError):
        return -1
