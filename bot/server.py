"""The process: how minpcode is put together, and ``minpcode serve`` (one ASGI app around one service).

    process = compose(settings)            # the Service and the summary announcers (every entry point)
    service = open_service(settings)       # the Service alone, on the real upstreams or the sandbox's
    app = create_app(settings)             # serve: the front-ends' routes on one Starlette app

Every front-end is a ``FrontEnd`` (bot/ports.py) built by its own factory from the service; the
server mounts their routes and starts and stops them in the lifespan. A front-end whose settings
are missing says so once at start and the rest still serves. Only entry points import this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import chart, health, links, logs
from bot.batch.sheets import SAMPLE_CSV
from bot.config import Settings
from bot.errors import NotFound, StorageUnavailable, Unexpected
from bot.metrics import METRICS
from bot.ports import Announcer, FrontEnd, HotRoute, Preflight
from bot.service import Service
from bot.upstream import TIMEOUT, Upstream
from bot.upstream.growingio import GrowingIOClient
from bot.upstream.wechat import WeChatClient
from storage import Storage
from storage.engine import database_errors

if TYPE_CHECKING:
    from bot.preflight import SvgLoaded

log = logging.getLogger("minpcode.server")
SANDBOX_WECHAT_URL = "http://wechat.sandbox"
SANDBOX_GIO_URL = "http://gio.sandbox"


def sandboxed_upstream() -> Upstream:
    """Both upstreams answered in this process by the emulators, through ``httpx.ASGITransport``.

    The process wires the emulators under the clients: the client never imports the sandbox (an
    import-linter contract in pyproject.toml), so no setting or bug can put emulated codes into a
    live deployment's history."""
    from bot import sandbox
    from bot.sandbox.growingio import GrowingIOEmulator
    from bot.sandbox.wechat import WeChatEmulator

    wx = WeChatEmulator()
    gio = GrowingIOEmulator(wechat=wx)
    wx_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=wx.app), timeout=TIMEOUT)
    gio_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=gio.app), timeout=TIMEOUT)
    return Upstream(
        wechat=WeChatClient(wx_http, SANDBOX_WECHAT_URL, sandbox.SANDBOX_APPID, SecretStr(sandbox.SANDBOX_SECRET)),
        gio=GrowingIOClient(gio_http, SANDBOX_GIO_URL, sandbox.GIO_PROJECT_UID, sandbox.GIO_CLIENT_ID,
                            SecretStr(sandbox.GIO_TOKEN)),
        gio_product_id=sandbox.GIO_PRODUCT_ID, sandbox=True, emulators=(wx, gio), _clients=[wx_http, gio_http],
    )


def upstream_for(settings: Settings) -> Upstream:
    """The settings' upstream: the emulators in the sandbox, else the clients the settings configure."""
    return sandboxed_upstream() if settings.sandbox else Upstream.from_settings(settings)


def open_service(settings: Settings | None = None) -> Service:
    """The service on the settings' data folder and upstream (the one way to open one, sandbox included)."""
    settings = settings or Settings()
    return Service(settings, Storage.open(settings.minpcode_data_dir, settings.database_url,
                                          migrate=settings.minpcode_migrate), upstream_for(settings))


def announcers(settings: Settings) -> list[Announcer]:
    """Where summaries go: Slack (SLACK_SUMMARY_CHANNEL), the WeCom group robot (WECOM_WEBHOOK_URL) and a group
    the WeCom AI bot is in (WECOM_BOT_SUMMARY_CHAT)."""
    from handlers.slack import slack_announcer
    from handlers.wecom import wecom_announcer
    from handlers.wecom_aibot.announce import wecom_aibot_announcer

    return [a for a in (slack_announcer(settings), wecom_announcer(settings), wecom_aibot_announcer(settings))
            if a is not None]


def preflights(settings: Settings) -> list[Preflight]:
    """What ``minpcode doctor`` checks, in table order: the core's parts, the posters' SVG logos, then Slack and WeCom."""
    from bot.preflight import SvgPreflight, core_preflights
    from handlers.slack.preflight import slack_preflight
    from handlers.wecom.preflight import wecom_preflight
    from handlers.wecom_aibot.preflight import wecom_aibot_preflight

    return [*core_preflights(settings), SvgPreflight(svg_loaded), slack_preflight(settings), wecom_preflight(settings),
            wecom_aibot_preflight(settings)]


def svg_loaded() -> SvgLoaded:
    """cairosvg and what is missing, loaded in this process only when doctor asks (bot/posters/svg.py: never
    in the serving process, where the workers draw)."""
    from bot.posters import svg

    return svg.cairosvg, svg.missing


@dataclass
class Process:
    """What every entry point (serve, the console chat, the CLI) runs on."""

    settings: Settings
    service: Service
    announcers: list[Announcer]


def prepare(settings: Settings) -> None:
    """What the whole process takes from the settings besides the service: the chart's font file."""
    chart.use_font_file(settings.minpcode_cjk_font)


def compose(settings: Settings | None = None, service: Service | None = None) -> Process:
    """The one way the parts are put together: the service and the announcers from the settings."""
    settings = settings or (service.settings if service is not None else Settings())
    prepare(settings)
    service = service or open_service(settings)
    return Process(settings, service, announcers(settings))


def serve_logging(settings: Settings) -> None:
    """serve's log output through bot.logs (redacted, escaped: a request cannot forge a line); uvicorn
    runs with ``log_config=None`` so its loggers go through the same handler."""
    logs.setup(settings.minpcode_log_level, settings.minpcode_log_format, secrets=settings.secret_values())


def run_server(app: Starlette, host: str, port: int, grace: float, trusted_proxies: list[str]) -> None:
    """uvicorn until SIGTERM or Ctrl-C, then a graceful stop, exiting 0.

    ``trusted_proxies`` (MINPCODE_TRUSTED_PROXIES) are the addresses and ranges whose ``X-Forwarded-For``
    uvicorn believes: from them, the request's client (``scope["client"]``) becomes the address the proxy
    names, and that one address is what the public routes' limits count and the access lines show
    (https://www.uvicorn.org/settings/#http, ``--forwarded-allow-ips``; https://www.uvicorn.org/deployment/
    #proxies-and-forwarded-headers). Passed explicitly, so uvicorn's own FORWARDED_ALLOW_IPS is not read.

    At the signal the service drains at once (no new job; requests waiting for a code answer "still
    making it"), uvicorn stops accepting and gives open requests ``grace`` seconds, then the lifespan
    stops the front-ends and the worker (codes in flight get ``grace`` seconds more, then stay pending
    for the next start)."""
    import gc
    import signal
    import socket

    import uvicorn

    service: Service = app.state.service

    class Graceful(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            # What start-up built (modules, settings, caches) lives as long as the process: frozen out of
            # the collector, a full collection under load no longer walks it (it paused scans for 50 ms).
            gc.collect()
            gc.freeze()

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            service.drain()

    config = uvicorn.Config(app, host=host, port=port, log_level="info", log_config=None,  # see serve_logging
                            access_log=False,  # bot.logs.RequestIdMiddleware writes the access lines
                            proxy_headers=True, forwarded_allow_ips=trusted_proxies,
                            timeout_graceful_shutdown=max(1, round(grace)))
    # uvicorn raises the captured signal again once it has stopped: SIGTERM then lands here (a clean
    # stop, exit 0) instead of killing the process after its orderly shutdown.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        Graceful(config).run()
    finally:
        signal.signal(signal.SIGTERM, previous)


def command_logging(settings: Settings) -> None:
    """A CLI command's logs: the same handler as serve's, from WARNING unless MINPCODE_LOG_LEVEL is set
    (a person at a terminal wants the answer, not the INFO lines)."""
    level = settings.minpcode_log_level if "minpcode_log_level" in settings.model_fields_set else "WARNING"
    logs.setup(level, settings.minpcode_log_format, secrets=settings.secret_values())


def core_routes(service: Service) -> list[BaseRoute]:
    async def code_image(request: Request) -> Response:
        code_id = request.path_params["code_id"]
        try:
            data, mime = service.image(code_id)
        except NotFound:
            return JSONResponse({"error": "not_found"}, status_code=404)
        record = service.get(code_id)
        etag = '"' + (record.image_sha256 or hashlib.sha256(data).hexdigest()) + '"'
        headers = {"ETag": etag, "Cache-Control": "private, max-age=86400, immutable",
                   "X-Content-Type-Options": "nosniff"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(data, media_type=mime, headers=headers)

    async def poster_file(request: Request) -> Response:
        try:
            info, data = service.posters.get(request.path_params["poster_id"])
        except NotFound:
            return JSONResponse({"error": "not_found"}, status_code=404)
        if info.format != request.path_params["format"]:
            return JSONResponse({"error": "not_found"}, status_code=404)
        etag = f'"{info.id}"'  # a stored poster never changes
        headers = {"ETag": etag, "Cache-Control": "private, max-age=86400, immutable",
                   "X-Content-Type-Options": "nosniff",
                   "Content-Disposition": f'inline; filename="{info.filename}"'}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(data, media_type=info.mime, headers=headers)

    async def sample_sheet(request: Request) -> Response:
        return Response(SAMPLE_CSV, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="sample.csv"'})

    return [
        *health.routes(service),               # /healthz, /readyz, /metrics
        Route(links.SAMPLE_SHEET_ROUTE, sample_sheet, methods=["GET"]),  # the batch forms link it
        Route(links.POSTER_ROUTE, poster_file, methods=["GET"]),
        # The id is 12 random characters: the link works as a capability and cannot be enumerated.
        Route(links.CODE_IMAGE_ROUTE, code_image, methods=["GET"]),
    ]


def front_ends(process: Process) -> list[FrontEnd]:
    """Every front-end of serve, in start order (stopped in reverse)."""
    from bot.scheduler import summary_front_end
    from handlers.api import api_front_end
    from handlers.linkpage import link_front_end
    from handlers.mcp import mcp_front_end
    from handlers.slack import slack_front_end
    from handlers.upload_page import upload_front_end
    from handlers.wecom import wecom_front_end
    from handlers.wecom_aibot import wecom_aibot_front_end

    service = process.service
    built: list[FrontEnd | None] = [
        slack_front_end(service),  # POST /slack/events, or Socket Mode when SLACK_APP_TOKEN is set
        api_front_end(service),           # /api/weapp/qrcode, /api/codes, /api/scenes (a HotRoute), /openapi.json
        summary_front_end(service, process.announcers),  # off when there is nowhere to post
        wecom_front_end(service),  # GET, POST /wecom/callback; off without WECOM_* settings
        wecom_aibot_front_end(service),  # the AI bot's long connection out; off without WECOM_BOT_ID/SECRET
        upload_front_end(service),  # /batches/upload/<token> (a chat's sheet), /batches/<token>.zip (its zip)
        mcp_front_end(service),            # /mcp: the MCP tools over streamable HTTP (API key)
        link_front_end(service),           # /q/{key} (live codes as plain-link QR codes), /{name}.txt; last: catch-all
    ]
    return [f for f in built if f is not None]


def error_answer(scope: Scope, failure: Unexpected | StorageUnavailable) -> Response:
    """A request refused by the process itself: the API's envelope on ``/api/`` (its clients read ``code``
    and ``msg``; the status is the API's mapping), plain bilingual text with the same status elsewhere."""
    from handlers.api.errors import error_response, status_and_code
    from handlers.http import accept_lang

    header = next((v for k, v in scope.get("headers") or () if k == b"accept-language"), b"")
    lang = accept_lang(header.decode("latin-1"))
    if scope["path"].startswith("/api/"):
        return error_response(failure, lang)
    return PlainTextResponse(failure.text(lang), status_code=status_and_code(failure)[0])


def unexpected_answer(scope: Scope) -> Response:
    """What a request that met a bug of ours is answered: 500 and the request id to quote."""
    return error_answer(scope, Unexpected(logs.current_request_id() or "-"))


async def _unexpected_handler(request: Request, exc: Exception) -> Response:
    return unexpected_answer(request.scope)


Failed = Callable[[BaseException], StorageUnavailable | None]


def _storage_handler(failed: Failed) -> Callable[[Request, Exception], Awaitable[Response]]:
    """A database error no route handled: a full disk is 503 naming it (the API's envelope on /api/; a WeCom
    message not saved so gets no 200, and WeCom sends it again), remembered for /readyz; any other is a bug."""
    async def handler(request: Request, exc: Exception) -> Response:
        problem = failed(exc)
        if problem is None:
            raise exc  # answered 500 and logged once with its traceback, as every unexpected error (Answered)
        return error_answer(request.scope, problem)
    return handler


_READS = ("GET", "HEAD", "OPTIONS")


class Answered:
    """ASGI, inside the request-id middleware: every request gets an answer and is counted.

    An exception no route handled is logged once, with its traceback, under the request's id (uvicorn
    would log it without one) and answered by :func:`unexpected_answer` when nothing was sent yet; it
    is not raised further, so the server does not log it a second time. Each answer is counted in
    ``minpcode_http_responses`` by the template of the route that matched (Starlette's router, or
    :class:`App` for a hot route, leave it in ``scope["route"]``).

    While ``lost()`` names a reason (the database file deleted under us), every request but a read is
    refused with it, before any route runs."""

    def __init__(self, app: ASGIApp, lost: Callable[[], StorageUnavailable | None] | None = None,
                 routes: list[BaseRoute] | None = None) -> None:
        self.app = app
        self.lost = lost
        self.routes = routes or []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0
        app = self.app
        if self.lost is not None and scope["method"] not in _READS and (lost := self.lost()) is not None:
            app = error_answer(scope, lost)  # a write would land in a file nobody will see again
            scope["route"] = next((r for r in self.routes if r.matches(scope)[0] is Match.FULL), None)

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_counted)
        except Exception:
            log.exception('unexpected error answering "%s %s"', scope["method"], scope["path"])
            if not status:
                await unexpected_answer(scope)(scope, receive, send_counted)
        finally:
            if status:
                METRICS.responded(getattr(scope.get("route"), "path", None) or "unmatched", status)


class App(Starlette):
    """Starlette, with each :class:`~bot.ports.HotRoute` answered before the middleware stack (inside
    the request-id middleware and :class:`Answered` only). Any other request, and a hot path asked with
    another method, take the usual way (a 405 from the router)."""

    def __init__(self, *args: Any, lost: Callable[[], StorageUnavailable | None] | None = None,
                 failed: Failed | None = None, **kwargs: Any) -> None:
        # Starlette's own last resort answers text/plain with no request id; ours answers instead.
        handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {Exception: _unexpected_handler}
        if failed is not None:
            for kind in database_errors():  # SQLite's or PostgreSQL's
                handlers[kind] = _storage_handler(failed)
        kwargs.setdefault("exception_handlers", handlers)
        super().__init__(*args, **kwargs)
        self._hot = [route for route in self.router.routes if isinstance(route, HotRoute)]
        self._entry = logs.RequestIdMiddleware(Answered(self._dispatch, lost, self.router.routes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._entry(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self._hot:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope["app"] = self
                    scope["route"] = route  # as the router would set it: the metrics label its template
                    scope.update(child)  # the path parameters, as the router would set them
                    await route.handle(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, service: Service | None = None) -> Starlette:
    process = compose(settings, service)
    service = process.service
    mounted = front_ends(process)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        resumed = await service.start()
        health.feed(service)
        log.info("minpcode serving (sandbox=%s, resumed %d pending)", service.sandbox, resumed)
        batch_runs = service.batches.resume_all()  # after start: their rows need the job runner
        # serve alone delivers webhooks (a CLI command's events wait for it): what a killed run left is pending
        await service.webhooks.sender.start()
        started: list[FrontEnd] = []
        try:
            for front_end in mounted:
                await front_end.start()
                started.append(front_end)
            yield
        finally:
            for front_end in reversed(started):
                try:
                    await front_end.stop()
                except Exception:  # one front-end failing to stop must not keep the others running
                    log.exception("%s: stop failed", front_end.name)
            for run in batch_runs:  # each row's state is stored: the next start resumes where this stopped
                run.cancel()
            await asyncio.gather(*batch_runs, return_exceptions=True)
            await service.webhooks.sender.stop()  # a delivery cut off here stays pending for the next start
            health.unfeed()
            await service.close()

    routes = [*core_routes(service)]
    for front_end in mounted:
        routes += front_end.routes()
    # App wraps itself in the request-id middleware
    app = App(routes=routes, lifespan=lifespan, lost=service.storage.lost, failed=service.storage.failed)
    app.state.service = service
    app.state.front_ends = mounted
    return app


__all__ = ["Process", "announcers", "preflights", "compose", "prepare", "core_routes", "serve_logging", "command_logging", "create_app", "run_server", "front_ends"]
