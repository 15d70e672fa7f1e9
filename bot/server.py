"""``minpcode serve``: one ASGI app that mounts every front-end around one running service.

Each front-end contributes its routes through a ``routes(service) -> list[BaseRoute]`` function and
may contribute start/stop hooks (background tasks such as Socket Mode or the scheduler). A front-end
whose settings are missing says so once at start and the rest still serves.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.config import Settings
from bot.errors import NotFound
from bot.service import Service

log = logging.getLogger("minpcode.server")

Hook = Callable[[], Awaitable[None]]


class FrontEnds:
    """What the front-ends add to the server: routes, and hooks run after start / before stop."""

    def __init__(self) -> None:
        self.routes: list[BaseRoute] = []
        self.on_start: list[Hook] = []
        self.on_stop: list[Hook] = []


def core_routes(service: Service) -> list[BaseRoute]:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True, "sandbox": service.sandbox, "pending": len(service.storage.history.pending())})

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

    return [
        Route("/healthz", healthz, methods=["GET"]),
        # The id is 12 random characters: the link works as a capability and cannot be enumerated.
        Route("/codes/{code_id:str}.png", code_image, methods=["GET"]),
    ]


def front_ends(service: Service) -> FrontEnds:
    """Every front-end, each one adding its routes and hooks (see the modules named here)."""
    mounted = FrontEnds()
    # Slack (handlers/slack): POST /slack/events, or Socket Mode when SLACK_APP_TOKEN is set
    from handlers.slack import mount as mount_slack

    mount_slack(service, mounted)
    # HTTP API for other systems (handlers/api.py): /api/weapp/qrcode, /api/codes, /api/scenes, /openapi.json
    from handlers.api import api_routes

    mounted.routes += api_routes(service)
    # Scheduled summaries (bot/scheduler.py): start/stop hooks, only when Slack or WeCom posting is configured
    from bot.scheduler import install as install_summary_scheduler

    install_summary_scheduler(service, mounted)
    # WeCom self-built app (handlers/wecom/callback.py): GET, POST /wecom/callback; off without WECOM_* settings
    from handlers.wecom.callback import wecom_front_end

    if (wecom := wecom_front_end(service)) is not None:
        mounted.routes += wecom.routes
        mounted.on_start.append(wecom.start)
        mounted.on_stop.append(wecom.stop)
    return mounted


def create_app(settings: Settings | None = None, service: Service | None = None) -> Starlette:
    settings = settings or Settings()
    service = service or Service.from_settings(settings)
    mounted = front_ends(service)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        resumed = await service.start()
        log.info("minpcode serving (sandbox=%s, resumed %d pending)", service.sandbox, resumed)
        for hook in mounted.on_start:
            await hook()
        try:
            yield
        finally:
            for hook in reversed(mounted.on_stop):
                with contextlib.suppress(Exception):
                    await hook()
            await service.close()

    app = Starlette(routes=[*core_routes(service), *mounted.routes], lifespan=lifespan)
    app.state.service = service
    return app
