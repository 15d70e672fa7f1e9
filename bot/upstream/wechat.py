"""WeChat mini-program codes (A, B, C) and Short Links over ``httpx.AsyncClient``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import SecretStr

from bot.errors import RateLimited, TokenInvalid, UpstreamBusy, UpstreamError
from bot.messages import wechat_error
from bot.models import CodeRequest, CodeType, LineColor, Provider, UpstreamResult
from bot.text import clip
from bot.upstream.tokens import StableTokenSource
from bot.upstream.wire import image_type, json_body, send, with_backoff

log = logging.getLogger("minpcode.upstream.wechat")

PATHS = {
    CodeType.A: "/wxa/getwxacode",
    CodeType.B: "/wxa/getwxacodeunlimit",
    CodeType.C: "/cgi-bin/wxaapp/createwxaqrcode",
    CodeType.SHORTLINK: "/wxa/genwxashortlink",
}


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
        response = await self._post(CodeType.SHORTLINK, body)
        data = json_body(response.content)
        if data is None:
            raise UpstreamBusy("wechat", "bad-body", "微信返回了无法识别的内容。", "WeChat answered something unreadable.")
        if int(data.get("errcode", 0)) != 0:
            raise self._error(CodeType.SHORTLINK, int(data["errcode"]), str(data.get("errmsg", "")))
        return UpstreamResult(provider=Provider.WECHAT, link=str(data["link"]))

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
            for closed in (CodeType.A, CodeType.C) if kind.counts_against_cap else (kind,):
                self._closed_until[closed] = error
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
