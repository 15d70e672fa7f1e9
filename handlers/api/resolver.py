"""``GET /api/scenes/{key}``: where a scanned key leads. Public (the mini program asks), on every scan's path.

The answer's shape stays the same for ever (printed codes outlive our releases): ``key``, ``scene``
and ``query`` as long-scene keys always had, plus ``page``, ``live`` and ``paused``. For a live code
``page``/``query`` are where it leads now (the fallback page while paused or expired). Unknown,
malformed and stored-nowhere keys all get the same 404 answer; every request costs its client IP a
token (:mod:`handlers.ratelimit`). The scan is counted in memory and written by the flusher, so
nothing waits on the disk here. A mini program may send ``?visitor=<anonymous id>``: only its keyed
hash is kept.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from bot.errors import InputError, NotFound
from bot.service import Service
from handlers.api.errors import OK, error_response
from handlers.ratelimit import PerClientLimit

UNKNOWN = NotFound("没有这个场景编号。", "There is no such scene key.")
LIVE_HEADERS = {"Cache-Control": "no-store"}  # a live code can be re-pointed, and each scan must reach us
STORED_HEADERS = {"Cache-Control": "public, max-age=86400, immutable"}  # long-scene keys never change


class TooMany(InputError):
    code_name = "rate_limited"


def split_params(params: str) -> dict[str, str]:
    """``a=1&b=2`` as a dict, literally: no %- or +-decoding (the parameters were never URL-encoded)."""
    out: dict[str, str] = {}
    for part in params.split("&"):
        if part:
            name, _, value = part.partition("=")
            out[name] = value
    return out


def client_of(request: Request) -> str:
    return request.client.host if request.client else "-"


class Resolver:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.limit = PerClientLimit(service.settings.minpcode_resolver_rate)

    def refused(self, request: Request, lang: str) -> Response | None:
        """The 429 answer when this client has used its tokens, else None."""
        if self.limit.allow(client_of(request)):
            return None
        response = error_response(TooMany("请求太频繁，请稍后再试。", "Too many requests; try again shortly."), lang)
        response.status_code = 429
        response.headers["Retry-After"] = str(self.limit.retry_after())
        return response

    async def scene(self, request: Request, lang: str) -> Response:
        refused = self.refused(request, lang)
        if refused is not None:
            return refused
        visitor = request.query_params.get("visitor") or None
        found = self.service.resolve(request.path_params["key"], visitor=visitor, source="wxa")
        if found is None:
            return error_response(UNKNOWN, lang)
        # SceneAnswer's shape (the OpenAPI test checks real answers against it), built without a model per scan.
        data = {"key": found.key, "scene": found.scene, "query": split_params(found.query), "page": found.page,
                "live": found.live, "paused": found.paused}
        body = json.dumps({"code": OK, "msg": "", "data": data}, ensure_ascii=False, separators=(",", ":"))
        return Response(body.encode("utf-8"), media_type="application/json",
                        headers=LIVE_HEADERS if found.live else STORED_HEADERS)


__all__ = ["Resolver", "client_of", "split_params"]
