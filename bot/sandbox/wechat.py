"""A faithful local emulator of the WeChat server API used by minpcode: access tokens
(https://developers.weixin.qq.com/miniprogram/dev/server/API/mp-access-token), the A/B/C codes, Short Link,
URL Link and URL Scheme (https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/?lang=en).

    emu = WeChatEmulator(clock=fake_clock, ac_cap=3)
    with ServerThread(emu.app) as server:
        httpx.get(f"{server.url}/cgi-bin/token", params={...})

Every knob is a plain attribute and may be changed while the server runs (``emu.latency = 0.2``).
Errors are HTTP 200 JSON with ``Content-Type: application/json; encoding=utf-8`` and a ``rid``
suffix on ``errmsg``; codes are HTTP 200 raw JPEG (PNG when ``is_hyaline``) whose QR text is
``qr.code_url(appid, kind, page, scene)`` so a test can scan what it got.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.sandbox import qr
from bot.sandbox._wechat_codes import CodeRequest, CodeRules, load_body, parse_code_request
from bot.sandbox._wechat_errors import ERRMSG, WeChatError, error_response, json_response
from bot.sandbox._wechat_links import TITLE_BLOCKLIST, parse_short_link, short_link
from bot.sandbox._wechat_tokens import TokenStore, beijing_day
from bot.sandbox._wechat_urls import (
    SCHEME_PATH,
    URLLINK_PATH,
    LinkRequest,
    parse_scheme,
    parse_url_link,
    url_link,
    url_scheme,
)
from bot.sandbox.faults import FaultQueue, delay
from bot.sandbox.identities import SANDBOX_APP_NAME, SANDBOX_APPID, SANDBOX_HOME_PAGE, SANDBOX_SECRET

__all__ = ["CODE_PATHS", "ERRMSG", "LINK_PATHS", "WeChatEmulator", "WeChatError"]

CODE_PATHS = {"A": "/wxa/getwxacode", "B": "/wxa/getwxacodeunlimit", "C": "/cgi-bin/wxaapp/createwxaqrcode"}
SHORTLINK_PATH = "/wxa/genwxashortlink"
LINK_PATHS = {"urllink": URLLINK_PATH, "scheme": SCHEME_PATH}
TOKEN_PATHS = ("/cgi-bin/token", "/cgi-bin/stable_token")

Handler = Callable[[Request, str], Awaitable[Response]]


class WeChatEmulator:
    def __init__(
        self,
        *,
        apps: dict[str, str] | None = None,
        app_names: dict[str, str] | None = None,
        home_page: str = SANDBOX_HOME_PAGE,
        clock: Callable[[], float] = time.time,
        token_ttl: float = 7200,
        grace: float = 300,
        force_spacing: float = 30,
        force_per_day: int = 20,
        ac_cap: int = 100_000,
        a_per_day: int = 10_000,
        b_per_minute: int = 5000,
        shortlink_permanent_cap: int = 100_000,
        shortlink_per_day: int = 1_000_000,
        shortlink_allowed: bool = True,
        links_per_day: int = 500_000,
        links_per_second: int = 100,
        links_allowed: bool = True,
        released: bool = True,
        title_blocklist: Collection[str] = TITLE_BLOCKLIST,
        pages: set[str] | None = None,
        path_max_bytes: int = 128,
        a_path_max_bytes: int = 1024,
        strict_width: Collection[str] = ("A",),
        reject_ampersand_in_scene: bool = False,
        latency: float = 0.0,
    ) -> None:
        self.apps = dict(apps) if apps is not None else {SANDBOX_APPID: SANDBOX_SECRET}
        self.app_names = dict(app_names) if app_names is not None else {SANDBOX_APPID: SANDBOX_APP_NAME}
        self.home_page = home_page
        self.clock = clock
        self.tokens = TokenStore(
            self.apps, clock, ttl=token_ttl, grace=grace, force_spacing=force_spacing,
            force_per_day=force_per_day,
        )
        self.ac_cap = ac_cap
        self.a_per_day = a_per_day
        self.b_per_minute = b_per_minute
        self.shortlink_permanent_cap = shortlink_permanent_cap
        self.shortlink_per_day = shortlink_per_day
        self.shortlink_allowed = shortlink_allowed
        # URL Link and URL Scheme: 500,000 a day together, 100 a second (44993, 44990); only for mini programs
        # of a non-personal subject (40002 otherwise) that have a released version (85079 otherwise).
        self.links_per_day = links_per_day
        self.links_per_second = links_per_second
        self.links_allowed = links_allowed
        self.released = released
        self.title_blocklist = tuple(word.lower() for word in title_blocklist)
        self.pages = pages
        self.path_max_bytes = path_max_bytes
        self.a_path_max_bytes = a_path_max_bytes
        self.strict_width = frozenset(strict_width)
        self.reject_ampersand_in_scene = reject_ampersand_in_scene
        self.latency = latency

        self.calls: Counter[str] = Counter()
        self.shortlinks: list[dict[str, Any]] = []  # every link handed out, for tests to inspect
        self.links: list[dict[str, Any]] = []  # every URL Link and URL Scheme handed out
        self._faults: FaultQueue[WeChatError] = FaultQueue()
        # Server thread and test thread both touch the state below.
        self._lock = threading.Lock()
        self._ac_keys: dict[str, set[tuple[object, ...]]] = {}
        self._b_window: dict[str, deque[float]] = {}
        self._link_window: dict[str, deque[float]] = {}
        self._daily: dict[tuple[str, str], tuple[int, int]] = {}
        self._permanent_links: Counter[str] = Counter()
        self.app = self._build_app()

    # ---- knobs that live in the token store -------------------------------------------------

    @property
    def token_ttl(self) -> float:
        return self.tokens.ttl

    @token_ttl.setter
    def token_ttl(self, value: float) -> None:
        self.tokens.ttl = value

    @property
    def grace(self) -> float:
        return self.tokens.grace

    @grace.setter
    def grace(self, value: float) -> None:
        self.tokens.grace = value

    @property
    def rules(self) -> CodeRules:
        return CodeRules(
            path_max_bytes=self.path_max_bytes,
            a_path_max_bytes=self.a_path_max_bytes,
            strict_width=self.strict_width,
            pages=self.pages,
            reject_ampersand_in_scene=self.reject_ampersand_in_scene,
        )

    # ---- test controls ----------------------------------------------------------------------

    def inject(self, errcode: int, times: int = 1, path: str | None = None, errmsg: str | None = None) -> None:
        """The next ``times`` calls to ``path`` (default: any business path, not the token
        endpoints) answer this errcode instead of doing their work."""
        self._faults.add(WeChatError(errcode, errmsg), times, path)

    def ac_used(self, appid: str = SANDBOX_APPID) -> int:
        """Distinct A/C codes this appid has spent of its lifetime ``ac_cap``."""
        with self._lock:
            return len(self._ac_keys.get(appid, ()))

    def reset_counts(self) -> None:
        """Forget ``calls`` (the request counter) and any faults still queued."""
        with self._lock:
            self.calls.clear()
        self._faults.clear()

    def reset_quotas(self) -> None:
        """Forget A+C usage, rate windows, daily counters and permanent short links."""
        with self._lock:
            self._ac_keys.clear()
            self._b_window.clear()
            self._link_window.clear()
            self._daily.clear()
            self._permanent_links.clear()

    def issue_token(self, appid: str = SANDBOX_APPID, stable: bool = True) -> str:
        """A valid token without an HTTP round trip (for tests of other components)."""
        with self._lock:
            token = self.tokens.stable(appid, force=False) if stable else self.tokens.classic(appid)
        return token.value

    def issue_code(self, appid: str, kind: str, path: str, width: int = 430) -> int:
        """An A/C code generated by a trusted caller (GrowingIO acting for the app): the same
        counting, faults, validation and quota as the HTTP API, minus the token. Returns the
        A+C count used; raises :class:`WeChatError`."""
        api_path = CODE_PATHS[kind]
        with self._lock:
            self.calls[api_path] += 1
        fault = self._faults.take(api_path)
        if fault is not None:
            raise fault
        if appid not in self.apps:
            raise WeChatError(40013)
        _, used = self._issue(appid, kind, {"path": path, "width": width})
        return used

    # ---- request plumbing -------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        both = ["GET", "POST"]

        def code(kind: str) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                return await self._business(request, lambda req, appid: self._code(req, appid, kind))

            return endpoint

        async def shortlink(request: Request) -> Response:
            return await self._business(request, self._shortlink)

        def link(kind: str) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                return await self._business(request, lambda req, appid: self._link(req, appid, kind))

            return endpoint

        routes = [
            Route("/cgi-bin/token", self._token, methods=both),
            Route("/cgi-bin/stable_token", self._stable_token, methods=both),
            *(Route(path, code(kind), methods=both) for kind, path in CODE_PATHS.items()),
            Route(SHORTLINK_PATH, shortlink, methods=both),
            *(Route(path, link(kind), methods=both) for kind, path in LINK_PATHS.items()),
        ]
        return Starlette(routes=routes)

    async def _enter(self, request: Request, business: bool) -> None:
        """What every request goes through first: counted, delayed, maybe faulted."""
        path = request.url.path
        with self._lock:
            self.calls[path] += 1
        await delay(self.latency)
        fault = self._faults.take(path, business=business)
        if fault is not None:
            raise fault

    async def _business(self, request: Request, handler: Handler) -> Response:
        try:
            await self._enter(request, business=True)
            if request.method != "POST":
                raise WeChatError(43002)
            with self._lock:
                appid = self.tokens.check(request.query_params.get("access_token"))
            return await handler(request, appid)
        except WeChatError as error:
            return error_response(error)

    # ---- tokens -----------------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        try:
            await self._enter(request, business=False)
            q = request.query_params
            with self._lock:
                appid = self.tokens.check_credentials(q.get("grant_type"), q.get("appid"), q.get("secret"))
                token = self.tokens.classic(appid)
            return json_response({"access_token": token.value, "expires_in": int(self.tokens.ttl)})
        except WeChatError as error:
            return error_response(error)

    async def _stable_token(self, request: Request) -> Response:
        try:
            await self._enter(request, business=False)
            if request.method != "POST":
                raise WeChatError(43002)
            body = load_body(await request.body())
            force = body.get("force_refresh", False)
            if not isinstance(force, bool):
                raise WeChatError(47001)
            with self._lock:
                appid = self.tokens.check_credentials(
                    body.get("grant_type"), body.get("appid"), body.get("secret")
                )
                token = self.tokens.stable(appid, force=force)
                expires_in = self.tokens.remaining(token)
            return json_response({"access_token": token.value, "expires_in": expires_in})
        except WeChatError as error:
            return error_response(error)

    # ---- codes ------------------------------------------------------------------------------

    async def _code(self, request: Request, appid: str, kind: str) -> Response:
        req, used = self._issue(appid, kind, await request.body())
        page = req.path or self.home_page
        text = qr.code_url(appid, kind, page, req.scene)
        fmt = req.image_format
        image = await run_in_threadpool(qr.render, text, req.width, fmt, fmt == "PNG")
        headers = {"Num-Used": str(used)} if kind == "A" else {}
        return Response(image, media_type="image/png" if fmt == "PNG" else "image/jpeg", headers=headers)

    def _issue(self, appid: str, kind: str, raw: bytes | dict[str, Any]) -> tuple[CodeRequest, int]:
        if kind == "B":
            self._take_b_slot(appid)
        req = parse_code_request(kind, raw, self.rules)
        if kind == "B":
            return req, 0
        with self._lock:
            keys = self._ac_keys.setdefault(appid, set())
            repeat = req.quota_key in keys
            if not repeat and len(keys) >= self.ac_cap:
                raise WeChatError(45029)
            # A's 10,000/day (WeChat's answer in its developer community,
            # https://developers.weixin.qq.com/community/develop/doc/00024cb7bac430fec599b56ed5bc00);
            # C sharing it: our assumption.
            self._take_daily(appid, "ac", self.a_per_day)
            keys.add(req.quota_key)
            return req, len(keys)

    def _take_b_slot(self, appid: str) -> None:
        """B: ``b_per_minute`` calls in any sliding 60 s, else 45009 ("daily" errmsg and all)."""
        now = self.clock()
        with self._lock:
            window = self._b_window.setdefault(appid, deque())
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= self.b_per_minute:
                raise WeChatError(45009)
            window.append(now)

    def _take_daily(self, appid: str, name: str, cap: int, errcode: int = 45009) -> None:
        """One more of a per-day allowance (reset at Beijing midnight); caller holds the lock."""
        day = beijing_day(self.clock())
        seen_day, count = self._daily.get((appid, name), (day, 0))
        if seen_day != day:
            count = 0
        if count >= cap:
            raise WeChatError(errcode)
        self._daily[(appid, name)] = (day, count + 1)

    # ---- short links ------------------------------------------------------------------------

    async def _shortlink(self, request: Request, appid: str) -> Response:
        if not self.shortlink_allowed:
            raise WeChatError(43104)
        req = parse_short_link(await request.body(), self.pages, self.title_blocklist)
        with self._lock:
            if req.is_permanent and self._permanent_links[appid] >= self.shortlink_permanent_cap:
                raise WeChatError(85400)
            self._take_daily(appid, "shortlink", self.shortlink_per_day)
            if req.is_permanent:
                self._permanent_links[appid] += 1
        link = short_link(self.app_names.get(appid, appid), req.title)
        with self._lock:
            self.shortlinks.append(
                {"appid": appid, "link": link, "page_url": req.page_url, "title": req.title,
                 "is_permanent": req.is_permanent, "created_at": self.clock()}
            )
        return json_response({"errcode": 0, "errmsg": "ok", "link": link})

    # ---- URL Link and URL Scheme ------------------------------------------------------------

    async def _link(self, request: Request, appid: str, kind: str) -> Response:
        if not self.links_allowed:
            raise WeChatError(40002, "no permission to generate for this appid")  # errmsg: our assumption
        if not self.released:
            raise WeChatError(85079)
        now = self.clock()
        parse = parse_url_link if kind == "urllink" else parse_scheme
        req: LinkRequest = parse(await request.body(), now, self.pages)
        with self._lock:
            window = self._link_window.setdefault(appid, deque())
            while window and window[0] <= now - 1:
                window.popleft()
            if len(window) >= self.links_per_second:
                raise WeChatError(44990)
            # One count for both kinds: "每天生成 URL Scheme（加密+明文）和 URL Link 的总数量上限为50万".
            self._take_daily(appid, "links", self.links_per_day, errcode=44993)
            window.append(now)
        link = url_link() if kind == "urllink" else url_scheme()
        with self._lock:
            self.links.append({"appid": appid, "kind": kind, "link": link, "path": req.path, "query": req.query,
                               "env_version": req.env_version, "expires_at": req.expires_at, "created_at": now})
        answer: dict[str, object] = {"errcode": 0, "errmsg": "ok"}
        answer["url_link" if kind == "urllink" else "openlink"] = link
        return json_response(answer)
