"""The HTTP API for other systems (CMS, CRM, scripts): the same core, history and quota as the bot.

Routes (every ``/api`` answer is the envelope ``{code, msg, data}`` of docs/api.md):

    POST /api/weapp/qrcode     {path, scene?, width?} -> data: the image URL under MINPCODE_PUBLIC_URL
    POST /api/posters          {id | path, scene?; template, title?, …} -> data: the poster's URL (or its bytes)
    GET  /api/codes            history: q, type, status, requested_by, mine, limit, offset
    GET  /api/codes/{id}       one record
    GET  /api/scenes/{key}     the parameters behind a short scene key (public: the mini program asks)
    GET  /openapi.json         this API as OpenAPI 3.1, built from the pydantic models

Keys: see :mod:`handlers.api.auth`. Codes: 0 ok; -1 failed, ``msg`` says why; 1001 no key; 1002 key
not allowed; 3001 empty path; 3002 bad scene. The HTTP status agrees with the code (200, 400, 401,
403, 404, 409, 413, 500, 502, 503) so scripts and monitoring see failures, while clients of the envelope read
``code`` (the mapping is :mod:`handlers.api.errors`).

A request with a scene makes a B code (unlimited quota), one without makes a plain WeChat A code
(the path may carry ``?query``; it counts against the 100,000 A+C cap, so identical repeats reuse
the code already made). A leading ``/`` of the path is dropped by the core, as for every front-end
(:func:`bot.models.page_path`), so ``/pages/x`` and ``pages/x`` are one code. A scene that does not
fit WeChat's 32 characters or character set is refused with code 3002; only with ``"long_scene": "key"``
in the body is it stored by the service behind a short key (see ``bot/scenes.py``).

The modules: ``models`` (wire models), ``auth`` (keys), ``errors`` (our errors as answers),
``routes``, ``openapi`` (the document). ``/codes/{id}.png`` and ``/healthz`` are the server's own.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from bot.service import Service
from handlers.api.auth import ApiKeys
from handlers.api.openapi import openapi_document
from handlers.api.routes import Api


class ApiFrontEnd:
    """The API as a front-end the server mounts (``bot.ports.FrontEnd``): routes only, nothing to run."""

    name = "api"

    def __init__(self, service: Service) -> None:
        self.api = Api(service)

    def routes(self) -> list[BaseRoute]:
        return self.api.routes()

    async def start(self) -> None:
        """Nothing runs in the background: requests are served by the server's routes."""

    async def stop(self) -> None:
        """Nothing to stop."""


def api_front_end(service: Service) -> ApiFrontEnd:
    """The HTTP API, always mounted (without MINPCODE_API_KEYS it answers 1002 to every guarded call)."""
    return ApiFrontEnd(service)


__all__ = ["Api", "ApiFrontEnd", "ApiKeys", "api_front_end", "openapi_document"]
