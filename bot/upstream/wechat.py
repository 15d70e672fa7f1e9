"""WeChat mini-program codes (A, B, C), Short Links, URL Links and URL Schemes over ``httpx.AsyncClient``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from bot.errors import RateLimited, TokenInvalid, UpstreamBusy, UpstreamError
from bot.links import plain_scheme
from bot.messages import LINK_APIS, wechat_error
from bot.models import SHORTLINK_DAYS, CodeRequest, CodeType, LineColor, Provider, UpstreamResult
from bot.text import clip
from bot.upstream.tokens import StableTokenSource
from bot.upstream.wire import image_type, json_body, send, with_backoff

log = logging.getLogger("minpcode.upstream.wechat")

PATHS = {
    CodeType.A: "/wxa/getwxacode",
    CodeType.B: "/wxa/getwxacodeunlimit",
    CodeType.C: "/cgi-bin/wxaapp/createwxaqrcode",
    CodeType.SHORTLINK: "/wxa/genwxashortlink",
    # https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/url-link/api_generateurllink.html
    CodeType.URLLINK: "/wxa/generate_urllink",
    # https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/url-scheme/api_generatescheme
    CodeType.SCHEME: "/wxa/generatescheme",
}
# Where the link is in each answer.
ANSWER_FIELDS = {CodeType.SHORTLINK: "link", CodeType.URLLINK: "url_link", CodeType.SCHEME: "openlink"}
EXPIRE_INTERVAL = 1  # expire_type: "失效时间：0，失效间隔天数：1"


class WeChatClient:
    """One mini program's codes. Share one instance per app id: it holds the token cache."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, appid: str, secret: SecretStr, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self.appid = appid
        self.tokens = StableTokenSource(http, self._base, appid, secret)
        self._clock = clock
        # A daily limit once hit holds until midnight in Beijing: later calls of that kind are refused
        # here, with the same error, instead of hammering WeChat for the rest of the day.
        self._closed_until: dict[CodeType, RateLimited] = {}

    async def a_code(self, path: str, *, width: int = 430, auto_color: bool = False,
                     line_color: LineColor | None = None, is_hyaline: bool = False,
                     env_version: str = "release") -> UpstreamResult:
        body: dict[str, Any] = {"path": path, "width": width, "auto_color": auto_color,
                                "is_hyaline": is_hyaline, "env_version": env_version}
        if line_color and not auto_color:
            body["line_color"] = line_color.model_dump()
        return await self._image(CodeType.A, body)

    async def b_code(self, scene: str, page: str = "", *, check_path: bool = True, width: int = 430,
                     auto_color: bool = False, line_color: LineColor | None = None, is_hyaline: bool = False,
                     env_version: str = "release") -> UpstreamResult:
        body: dict[str, Any] = {"scene": scene, "check_path": check_path, "width": width,
                                "auto_color": auto_color, "is_hyaline": is_hyaline, "env_version": env_version}
        if page:
            body["page"] = page
        if line_color and not auto_color:
            body["line_color"] = line_color.model_dump()
        return await self._image(CodeType.B, body)

    async def c_code(self, path: str, *, width: int = 430) -> UpstreamResult:
        return await self._image(CodeType.C, {"path": path, "width": width})

    async def short_link(self, page_url: str, page_title: str | None = None,
                         is_permanent: bool = False) -> UpstreamResult:
        body: dict[str, Any] = {"page_url": page_url, "is_permanent": is_permanent}
        if page_title:
            body["page_title"] = page_title
        # A temporary Short Link lasts 30 days (https://developers.weixin.qq.com/miniprogram/dev/framework/
        # open-ability/shortlink.html); counted from before the call, so we never say it lasts longer than it does.
        expires = None if is_permanent else self._clock() + SHORTLINK_DAYS * 86400
        return await self._link(CodeType.SHORTLINK, body, expires)

    async def url_link(self, path: str, query: str = "", *, env_version: str = "release",
                       days: int = 30) -> UpstreamResult:
        """A URL Link (``https://wxaurl.cn/…``) to ``path`` (no query: ``query`` goes apart) that lasts ``days``."""
        body: dict[str, Any] = {**_target(path, query, env_version), "expire_type": EXPIRE_INTERVAL,
                                "expire_interval": days}
        return await self._link(CodeType.URLLINK, body, self._clock() + days * 86400)

    async def url_scheme(self, path: str, query: str = "", *, env_version: str = "release",
                         days: int = 30) -> UpstreamResult:
        """An encrypted URL Scheme (``weixin://dl/business/?t=…``) to ``path`` that lasts ``days``."""
        body: dict[str, Any] = {"jump_wxa": _target(path, query, env_version), "expire_type": EXPIRE_INTERVAL,
                                "expire_interval": days}
        return await self._link(CodeType.SCHEME, body, self._clock() + days * 86400)

    def plain_scheme(self, path: str, query: str = "", *, env_version: str = "release") -> UpstreamResult:
        """The plain-text URL Scheme of this mini program: made here, no call, never expires."""
        return UpstreamResult(provider=Provider.WECHAT, link=plain_scheme(self.appid, path, query, env_version))

    async def _link(self, kind: CodeType, body: dict[str, Any], expires: float | None) -> UpstreamResult:
        response = await self._post(kind, body)
        data = json_body(response.content)
        if data is None:
            raise UpstreamBusy("wechat", "bad-body", "微信返回了无法识别的内容。", "WeChat answered something unreadable.",
                               raw=clip(response.text, 200))
        if int(data.get("errcode", 0) or 0) != 0:
            raise self._error(kind, int(data["errcode"]), str(data.get("errmsg", "")))
        link = data.get(ANSWER_FIELDS[kind])
        if not isinstance(link, str) or not link:
            raise UpstreamBusy("wechat", "bad-body", "微信的回答里没有链接。", "WeChat's answer has no link in it.",
                               raw=clip(response.text, 200))
        return UpstreamResult(provider=Provider.WECHAT, link=link,
                              expires_at=datetime.fromtimestamp(expires, UTC) if expires is not None else None)

    async def make(self, request: CodeRequest) -> UpstreamResult:
        """The code ``request`` asks for, straight from WeChat."""
        if request.type is CodeType.A:
            return await self.a_code(request.page, width=request.width, auto_color=request.auto_color,
                                     line_color=request.line_color, is_hyaline=request.transparent,
                                     env_version=request.env_version)
        if request.type is CodeType.B:
            return await self.b_code(request.scene or "", request.page, check_path=request.check_path,
                                     width=request.width, auto_color=request.auto_color,
                                     line_color=request.line_color, is_hyaline=request.transparent,
                                     env_version=request.env_version)
        if request.type is CodeType.C:
            return await self.c_code(request.page, width=request.width)
        if request.type.opens_outside:
            path, query = request.path_and_query
            if request.plain:
                return self.plain_scheme(path, query, env_version=request.env_version)
            make = self.url_link if request.type is CodeType.URLLINK else self.url_scheme
            return await make(path, query, env_version=request.env_version, days=request.link_days or 30)
        return await self.short_link(request.page, request.title, request.permanent)

    async def _image(self, kind: CodeType, body: dict[str, Any]) -> UpstreamResult:
        response = await self._post(kind, body)
        mime = image_type(response.content)
        if mime is None:
            data = json_body(response.content)
            if data is not None and "errcode" in data:
                raise self._error(kind, int(data["errcode"]), str(data.get("errmsg", "")))
            raise UpstreamBusy("wechat", "bad-body", "微信返回的既不是图片也不是错误信息。",
                               "WeChat answered neither an image nor an error.",
                               raw=clip(response.text, 200))
        num_used = response.headers.get("Num-Used")
        return UpstreamResult(provider=Provider.WECHAT, image=response.content, mime=mime,
                              num_used=int(num_used) if num_used and num_used.isdigit() else None)

    def closed_until(self, kind: CodeType) -> float | None:
        """When WeChat takes ``kind`` again after its daily limit was hit (a Unix time), or None."""
        closed = self._closed_until.get(kind)
        if closed is None or closed.not_before is None or closed.not_before <= self._clock():
            return None
        return closed.not_before

    def _error(self, kind: CodeType, errcode: int, errmsg: str) -> UpstreamError:
        error = wechat_error(errcode, errmsg, api=kind.value, now=self._clock())
        if isinstance(error, RateLimited) and error.not_before is not None:
            # A and C share one daily count: our assumption. A's 10,000 a day is WeChat's answer in its
            # developer community, which names no limit for C
            # (https://developers.weixin.qq.com/community/develop/doc/00024cb7bac430fec599b56ed5bc00).
            # URL Link and URL Scheme share one daily count ("每天生成 URL Scheme（加密+明文）和 URL Link 的总数量
            # 上限为50万", https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/url-link.html).
            shared = {CodeType.A: (CodeType.A, CodeType.C), CodeType.C: (CodeType.A, CodeType.C),
                      CodeType.URLLINK: LINK_APIS, CodeType.SCHEME: LINK_APIS}
            for closed in shared.get(kind, (kind,)):
                self._closed_until[CodeType(closed)] = error
        return error

    async def _post(self, kind: CodeType, body: dict[str, Any]) -> httpx.Response:
        """POST with a token; on a stale token refresh once and retry once — never a loop."""
        if self.closed_until(kind) is not None:
            closed = self._closed_until[kind]
            now = self._clock()
            raise RateLimited("wechat", closed.code, closed.zh, closed.en, closed.raw,
                              retry_after=(closed.not_before or now) - now, not_before=closed.not_before)

        async def attempt() -> httpx.Response:
            token = await self.tokens.get()
            response = await send(self._http, "wechat", "POST", self._base + PATHS[kind],
                                  params={"access_token": token}, json=body)
            if image_type(response.content) is None:
                data = json_body(response.content) or {}
                code = int(data.get("errcode", 0) or 0)
                if code:
                    error = wechat_error(code, str(data.get("errmsg", "")))
                    if isinstance(error, TokenInvalid):
                        self.tokens.invalidate(token)
                    if isinstance(error, TokenInvalid | UpstreamBusy):
                        raise error
            return response

        try:
            return await with_backoff(attempt)
        except TokenInvalid:
            log.info("wechat token refused for %s; refreshing once", self.appid)
            return await with_backoff(attempt)


def _target(path: str, query: str, env_version: str) -> dict[str, Any]:
    """The page of a URL Link or URL Scheme as both take it: ``path`` "不可携带 query" and left out for the
    home page ("path 为空时会跳转小程序主页"), ``query`` apart, ``env_version`` only when not the release."""
    target: dict[str, Any] = {}
    if path:
        target["path"] = path
    if query:
        target["query"] = query
    if env_version != "release":
        target["env_version"] = env_version
    return target
