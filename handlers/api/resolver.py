"""``GET /api/scenes/{key}``: where a scanned key leads. Public (the mini program asks), on every scan's path.

The answer's shape stays the same for ever (printed codes outlive our releases): ``key``, ``scene``
and ``query`` as long-scene keys always had, plus ``page``, ``live`` and ``paused``. For a live code
``page``/``query`` are where it leads now (the fallback page while paused or expired). Unknown,
malformed and stored-nowhere keys all get the same 404 answer, and each costs its client address a
token (:class:`bot.concurrency.PerClientLimit`): guessing keys is slow. A key that exists is always
answered, whatever the address has asked before: a refused scan sends a person to the fallback page, and
many phones share one address. Whether the scan is counted is the core's to decide (the per-code rate of an
address, a test build's or another mini program's Referer: :meth:`bot.live.rules.LiveCodes.resolve`). The
scan is counted in memory and written by the flusher, so nothing waits on the disk here. A mini program
may send ``?visitor=<anonymous id>``: only its keyed hash is kept; ``&platform=`` (``wx.getDeviceInfo().platform``)
and ``&source=link`` (opened from the plain-link QR rather than the B code) choose among the code's routes and
are counted with the scan. A router page that sends none of them is answered as before.

The client address is ``scope["client"]``: uvicorn puts the address a trusted proxy names there
(MINPCODE_TRUSTED_PROXIES, bot/server.py ``run_server``), the same one the access lines show.
"""

from __future__ import annotations

import json
from urllib.parse import unquote_plus

from starlette.types import Receive, Scope, Send

from bot.concurrency import PerClientLimit
from bot.errors import InputError, MinpcodeError, NotFound
from bot.live import Resolution
from bot.service import Service
from bot.text import Lang
from handlers.api.errors import OK, error_response
from handlers.http import accept_lang

UNKNOWN = NotFound("没有这个场景编号。", "There is no such scene key.")
# a live code can be re-pointed, and each scan must reach us; long-scene keys never change
LIVE_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
STORED_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"public, max-age=86400, immutable")]


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


BODIES_MAX = 4096  # answers kept encoded: one per key and destination, forgotten all at once when full


def _param(query_string: bytes, name: bytes) -> str | None:
    # read as Starlette reads a query (latin-1 bytes, then %-decoded as UTF-8); the first one wins
    if name not in query_string:
        return None
    for part in query_string.split(b"&"):
        if part.startswith(name):
            return unquote_plus(part[len(name):].decode("latin-1")) or None
    return None


def _source(query_string: bytes) -> str:
    # our router page's word (docs/live-codes.md): "link" when WeChat opened it from the plain-link QR (?q=)
    return "link" if b"source=link" in query_string and _param(query_string, b"source=") == "link" else "wxa"


class Resolver:
    """The route's ASGI app. Starlette's Request and Response took more of a scan's time than the
    lookup itself; on a path every scan of every printed code takes, it reads the scope and sends the
    answer directly (errors, which are rare, still go through the API's one error envelope)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.limit = PerClientLimit(service.settings.minpcode_resolver_rate)
        self._answers: dict[Resolution, tuple[bytes, list[tuple[bytes, bytes]]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lang: Lang = "zh"
        referer: str | None = None
        for name, value in scope["headers"]:
            if name == b"accept-language":
                lang = accept_lang(value.decode("latin-1"))
            elif name == b"referer":
                referer = value.decode("latin-1")
        client = scope.get("client")
        address = client[0] if client else "-"
        try:
            query = scope["query_string"]
            found = self.service.live.resolve(scope["path_params"]["key"], visitor=_param(query, b"visitor="),
                                              source=_source(query), client=address, referer=referer,
                                              platform=_param(query, b"platform=") if b"platform=" in query else None)
        except MinpcodeError as exc:
            await error_response(exc, lang)(scope, receive, send)
            return
        if found is None:
            if not self.limit.allow(address):  # keys that do not exist: the per-address limit
                response = error_response(TooMany("请求太频繁，请稍后再试。", "Too many requests; try again shortly."),
                                          lang)
                response.status_code = 429
                response.headers["Retry-After"] = str(self.limit.retry_after())
                await response(scope, receive, send)
                return
            await error_response(UNKNOWN, lang)(scope, receive, send)
            return
        body, headers = self._answers.get(found) or self._answer(found)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _answer(self, found: Resolution) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        # SceneAnswer's shape (the OpenAPI test checks real answers against it), built without a model.
        data = {"key": found.key, "scene": found.scene, "query": split_params(found.query), "page": found.page,
                "live": found.live, "paused": found.paused}
        body = json.dumps({"code": OK, "msg": "", "data": data}, ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8")
        headers = [*(LIVE_HEADERS if found.live else STORED_HEADERS), (b"content-length", str(len(body)).encode())]
        if len(self._answers) >= BODIES_MAX:
            self._answers.clear()
        self._answers[found] = body, headers
        return body, headers


__all__ = ["Resolver", "split_params"]
