"""The API's routes: each reads its input, asks the service, and answers the API's envelope ``{code, msg, data}``.

Only the service is used (no storage, no upstream client, no lock of our own: the service makes one
code per identical request, so a double click reuses the first code, whichever process it reached).
Refusals are our errors, turned into answers once, by :func:`handlers.api.errors.error_response`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from starlette.concurrency import iterate_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from bot import links, scenes
from bot.errors import FieldError, InputError, InvalidRequest, MinpcodeError, NotFound
from bot.history import HistoryQuery
from bot.live.routes import build_routes
from bot.models import CodeRecord, CodeType, Requester, Status, page_path
from bot.ports import HotRoute
from bot.posters.service import PosterMade
from bot.service import Service
from bot.summary import MAX_DAYS
from bot.text import Text
from bot.wording import describe
from handlers.api.auth import ApiKeys
from handlers.api.errors import MAX_BODY, OK, CodeFailed, EmptyPath, StillPending, answer, error_response
from handlers.api.models import (
    CodeAnswer,
    CodeListAnswer,
    CodePage,
    CodeView,
    DestinationRequest,
    ListQuery,
    PosterAnswer,
    PosterApiRequest,
    QRCodeAnswer,
    QRCodeRequest,
    bad_text,
)
from handlers.api.openapi import openapi_document
from handlers.api.resolver import Resolver
from handlers.http import BodyTooLarge, read_limited, request_lang
from handlers.live_commands import scans_csv_chunks

log = logging.getLogger("minpcode.api")

WAIT_SECONDS = 30.0  # how long a request waits for the upstream before answering "still making it"
ID_MAX = 64  # characters of an id or key read from a URL
POSTER_BODY_MAX = 1_500_000  # a poster request may carry a logo (1 MB, base64)


def image_url(public_url: str, record: CodeRecord) -> str | None:
    """The image's link under ``public_url``, for a made code with an image (links and failures have none)."""
    if not record.image_sha256 or record.status is not Status.DONE:
        return None
    return links.code_image_url(public_url, record.id)


def code_view(service: Service, public_url: str, record: CodeRecord,
              live: tuple[str, bool, int] | None = None) -> CodeView:
    """One record as the API shows it (and the MCP tools, which answer with the same fields)."""
    if live is None:
        live = service.live.totals([record]).get(record.id)
    params = None
    if record.type is CodeType.B and record.scene and scenes.is_key(record.scene):
        params = service.scene_params(record.scene)
    return CodeView(
        id=record.id, type=record.type, provider=record.provider.value, status=record.status, page=record.page,
        scene=record.scene, scene_params=params, name=record.name, app=record.app, campaign=record.campaign,
        channel=record.channel, width=record.width, comments=record.comments, link=record.link,
        expires_at=record.expires_at, permanent=record.permanent if record.type.is_link else None,
        plain=record.plain, tracking_url=record.tracking_url, image_url=image_url(public_url, record),
        error_code=record.error_code, error=record.error, requested_by=record.requested_by, chat=record.chat,
        sandbox=record.sandbox, created_at=record.created_at, updated_at=record.updated_at, live=live is not None,
        destination=live[0] if live else None, paused=live[1] if live else None, scans=live[2] if live else None,
        routes=service.live.routes_of(record) if live else None,
        blank=not live[0] if live else None, tags=service.live.tags(record.id),
    )


Handler = Callable[[Request], Awaitable[Response]]


class Api:
    """The routes of the HTTP API around one service."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.keys = ApiKeys(service.settings.minpcode_api_keys)
        self.public_url = service.settings.minpcode_public_url.rstrip("/")
        self.resolver = Resolver(service)
        if not self.keys:
            log.info("HTTP API closed: MINPCODE_API_KEYS is not set")

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/weapp/qrcode", self._guarded(self.qrcode), methods=["POST"]),
            Route("/api/posters", self._guarded(self.poster), methods=["POST"]),
            Route("/api/codes", self._guarded(self.list_codes), methods=["GET"]),
            Route("/api/codes/{code_id:str}", self._guarded(self.get_code), methods=["GET"]),
            Route("/api/codes/{code_id:str}/destination", self._guarded(self.destination), methods=["POST"]),
            Route("/api/codes/{code_id:str}/scans.csv", self._guarded(self.scans_csv), methods=["GET"]),
            # every scan of every printed code: answered before the middleware (bot.ports.HotRoute)
            HotRoute("/api/scenes/{key:str}", self.resolver, methods=["GET"]),  # an ASGI app: see Resolver
            Route("/openapi.json", self.openapi, methods=["GET"]),
        ]

    # -- plumbing ---------------------------------------------------------------------------------
    def _guarded(self, handler: Callable[[Request, str], Awaitable[Response]]) -> Handler:
        async def with_key(request: Request) -> Response:
            return await handler(request, self.keys.authenticate(request))
        return self._open(with_key)

    @staticmethod
    def _open(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except (MinpcodeError, BodyTooLarge) as exc:
                return error_response(exc, request_lang(request))
        return endpoint

    def image_url(self, record: CodeRecord) -> str | None:
        return image_url(self.public_url, record)

    def view(self, record: CodeRecord, live: tuple[str, bool, int] | None = None) -> CodeView:
        return code_view(self.service, self.public_url, record, live)

    # -- POST /api/weapp/qrcode -------------------------------------------------------------------
    async def qrcode(self, request: Request, name: str) -> Response:
        body = await _json_body(request)
        requester = Requester(chat="api", user_id=name, user_name=name, lang=request_lang(request))
        # docs/api.md: a scene WeChat would refuse is 3002, unless the caller asks for it behind a stored k= key.
        fields = self.fields(body)
        submission = await self.service.submit(fields, requester, wait=True, timeout=WAIT_SECONDS,
                                               long_scene=body.get("long_scene") == "key")
        record = submission.record
        log.info("api: %s asked for %s code %s (%s)", name, record.type.value, record.id,
                 "reused" if submission.reused else record.status.value)
        if record.status is Status.PENDING:
            raise StillPending()
        if record.status is not Status.DONE or not (record.link if record.type.is_link else record.image_sha256):
            message = record.error_message or Text(zh="生成失败。", en="The code could not be made.")
            raise CodeFailed(message.zh, message.en)
        return answer(QRCodeAnswer(
            code=OK, msg="", data=record.link if record.type.is_link else self.image_url(record), id=record.id,
            scene=record.scene, reused=submission.reused, link=record.link, expires_at=record.expires_at,
            notices=[n.text(requester.lang) for n in submission.notices],
        ))

    @staticmethod
    def fields(body: dict[str, Any]) -> dict[str, Any]:
        """The body of ``POST /api/weapp/qrcode`` as CodeRequest input: a B code with a scene, else an A code."""
        try:
            parsed = QRCodeRequest.model_validate(body)
        except ValidationError as exc:
            raise _body_error(exc, body) from None
        # The model refused a path with nothing but spaces and "/" (3001: required, for B codes too; WeChat's
        # "home page" default is not offered) and any control character.
        page = parsed.path.strip()
        if not page_path(page) and not (parsed.live and parsed.type is None):
            raise EmptyPath()  # required, for B codes too (WeChat's "home page" default is not offered); a live
            # code without one is a blank code (空码), bound later
        tags = {"tags": parsed.tags} if parsed.tags else {}
        scene = (parsed.scene or "").strip()
        if parsed.type is not None:
            # A link: the model refuses what it does not take (a scene, live) rather than dropping it.
            asked = {"type": parsed.type, "page": page, "plain": parsed.plain, "expire_days": parsed.expire_days,
                     "live": parsed.live or None, "expires": parsed.expires, "env_version": parsed.env_version,
                     "scene": scene or None}
            return {k: v for k, v in asked.items() if v is not None} | tags
        if parsed.plain or parsed.expire_days is not None:
            raise FieldError("type", "plain 和 expire_days 只用于链接：请同时给出 \"type\": \"urllink\" 或 \"scheme\"。",
                             "plain and expire_days are for links: give \"type\": \"urllink\" or \"scheme\" too.")
        if parsed.live:
            # A scene given anyway reaches the service, which says a live code takes none.
            return ({"type": "B", "live": True, "page": page, "width": parsed.width, "expires": parsed.expires}
                    | ({"scene": scene} if scene else {}) | tags)
        # Sent only when asked for, so the model refuses them where WeChat would ignore them.
        version = ({"env_version": parsed.env_version} if parsed.env_version != "release" else {}) | (
            {"check_path": False} if not parsed.check_path else {})
        if not scene:
            # No campaign or channel here, so a plain WeChat code rather than a GrowingIO link.
            return {"type": "A", "via": "wechat", "page": page, "width": parsed.width, "expires": parsed.expires,
                    **version, **tags}
        return {"type": "B", "page": page, "scene": scene, "width": parsed.width, "expires": parsed.expires,
                **version, **tags}

    # -- POST /api/posters ----------------------------------------------------------------------------
    async def poster(self, request: Request, name: str) -> Response:
        """A poster of a code (by id, or by the code's fields); JSON with its URL, or the bytes when the
        caller's Accept asks for image/png or application/pdf."""
        body = await _json_body(request, POSTER_BODY_MAX)
        try:
            asked = PosterApiRequest.model_validate(body)
        except ValidationError as exc:
            raise _body_error(exc, body) from None
        requester = Requester(chat="api", user_id=name, user_name=name, lang=request_lang(request))
        made = await make_poster(self.service, asked, requester)
        info = made.info
        log.info("api: %s asked for a %s poster of %s (%s)", name, info.template, info.code_id,
                 "served" if made.reused else "rendered")
        if info.mime in request.headers.get("accept", ""):
            return Response(made.data, media_type=info.mime, headers={
                "X-Poster-Id": info.id, "X-Code-Id": info.code_id,
                "Content-Disposition": f'attachment; filename="{info.filename}"'})
        return answer(PosterAnswer(
            code=OK, msg="", data=links.poster_url(self.public_url, info.id, info.format), id=info.id, code_id=info.code_id,
            template=info.template, format=info.format, mime=info.mime, width_px=info.width_px,
            height_px=info.height_px, dpi=info.dpi, size=info.size, reused=made.reused,
            sharper_copy=made.sharper_copy.id if made.sharper_copy else None,
            notices=[n.text(requester.lang) for n in made.notices]))

    # -- GET /api/codes, /api/codes/{id} ----------------------------------------------------------
    async def list_codes(self, request: Request, name: str) -> Response:
        try:
            query = ListQuery.model_validate(dict(request.query_params))
        except ValidationError as exc:
            raise _body_error(exc, {}) from None
        requester = Requester(chat="api", user_id=name, user_name=name)
        page = self.service.history(HistoryQuery(
            text=query.q, type=query.type, status=query.status, requested_by=query.requested_by, mine=query.mine,
            limit=query.limit, offset=query.offset), requester)
        live = self.service.live.totals(page.items)
        return answer(CodeListAnswer(code=OK, msg="", data=CodePage(
            items=[self.view(r, live.get(r.id)) for r in page.items], limit=page.limit, offset=page.offset,
            next_offset=page.next_offset,
        )))

    async def get_code(self, request: Request, name: str) -> Response:
        code_id = request.path_params["code_id"]
        record = self.service.find(code_id) if len(code_id) <= ID_MAX and not bad_text(code_id) else None
        if record is None:
            raise NotFound(f"没有编号为 {code_id[:ID_MAX]} 的码。", f"There is no code with id {code_id[:ID_MAX]}.")
        return answer(CodeAnswer(code=OK, msg="", data=self.view(record)))

    # -- POST /api/codes/{id}/destination ------------------------------------------------------------
    async def destination(self, request: Request, name: str) -> Response:
        code_id = request.path_params["code_id"]
        record = self.service.find(code_id) if len(code_id) <= ID_MAX and not bad_text(code_id) else None
        if record is None:
            raise NotFound(f"没有编号为 {code_id[:ID_MAX]} 的码。", f"There is no code with id {code_id[:ID_MAX]}.")
        try:
            body = DestinationRequest.model_validate(await _json_body(request))
        except ValidationError as exc:
            raise _body_error(exc, {}) from None
        if body.page is None and body.paused is None and not body.routed():
            raise InputError("请给出 page（新的目标页面）、路由或 paused。", "Give page (the new destination), routes or paused.")
        requester = Requester(chat="api", user_id=name, user_name=name, lang=request_lang(request))
        if body.routed():
            options = {k: v for k, v in (body.platforms or {}).items()} | (
                {"from": body.from_day.isoformat()} if body.from_day else {}) | (
                {"until": body.until_day.isoformat()} if body.until_day else {})
            change = build_routes([body.page] if body.page else [],
                                  [(s.page, s.weight) for s in body.shares or []], options, self.service.settings.zone)
            self.service.live.repoint(record.id, change, requester)
        elif body.page is not None:
            self.service.live.repoint(record.id, body.page, requester)
        if body.paused is not None:
            (self.service.live.pause if body.paused else self.service.live.resume)(record.id, requester)
        log.info("api: %s changed live code %s", name, record.id)
        return answer(CodeAnswer(code=OK, msg="", data=self.view(self.service.get(record.id))))

    # -- GET /api/codes/{id}/scans.csv ---------------------------------------------------------------
    async def scans_csv(self, request: Request, name: str) -> Response:
        """Every scan of a live code as CSV (``?days=N``: the last N local days), written as it is read."""
        code_id = request.path_params["code_id"]
        record = self.service.find(code_id) if len(code_id) <= ID_MAX and not bad_text(code_id) else None
        if record is None:
            raise NotFound(f"没有编号为 {code_id[:ID_MAX]} 的码。", f"There is no code with id {code_id[:ID_MAX]}.")
        raw = request.query_params.get("days")
        days = None
        if raw is not None:
            if not (raw.isascii() and raw.isdecimal() and 1 <= int(raw) <= MAX_DAYS):
                raise FieldError("days", f"days 须是 1 到 {MAX_DAYS} 之间的整数。",
                                 f"days must be a whole number from 1 to {MAX_DAYS}.")
            days = int(raw)
        rows = self.service.live.export(record.id, days)
        first = next(rows, None)  # NotLive is raised here, before the answer starts
        chunks = scans_csv_chunks(rows, first)
        return StreamingResponse(iterate_in_threadpool(chunks), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="scans-{record.id}.csv"', "Cache-Control": "no-store"})

    # -- GET /openapi.json -------------------------------------------------------------------------
    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document(self.public_url))


async def make_poster(service: Service, asked: PosterApiRequest, requester: Requester) -> PosterMade:
    """A poster of the code ``asked`` names by id, or of the code its fields make (made or reused), as
    ``POST /api/posters`` reads it (the MCP tool ``make_poster`` takes the same fields)."""
    poster = {"template": asked.template, "title": asked.title, "subtitle": asked.subtitle, "footer": asked.footer,
              "format": asked.format, "bleed": asked.bleed}
    logo = _logo(asked.logo)
    posters = service.posters
    if asked.id:
        return await posters.make(asked.id, poster, requester, sharper=asked.sharper, logo=logo)
    fields = Api.fields({"path": asked.path or "", "scene": asked.scene} | (
        {"width": asked.width} if asked.width else {}))
    if not asked.width:
        fields.pop("width", None)
    both = await posters.for_new(fields, poster, requester, sharper=asked.sharper, logo=logo,
                                 timeout=WAIT_SECONDS, long_scene=True)
    record = both.submission.record
    if both.poster_error is not None:
        raise both.poster_error
    if both.poster is None:
        if record.status is Status.PENDING:
            raise StillPending()
        message = record.error_message or Text(zh="生成失败。", en="The code could not be made.")
        raise CodeFailed(message.zh, message.en)
    return both.poster


def _logo(data: str | None) -> bytes | None:
    if not data:
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise FieldError("logo", "logo 须是 PNG 或 JPEG 图片的 base64。", "The logo must be a PNG or JPEG image in base64.") from None


async def _json_body(request: Request, limit: int = MAX_BODY) -> dict[str, Any]:
    raw = await read_limited(request, limit)
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise InputError("请求体须是 JSON 对象，例如 {\"path\": \"pages/index/index\", \"scene\": \"id=1\"}。",
                         "The body must be a JSON object, e.g. {\"path\": \"pages/index/index\", \"scene\": \"id=1\"}.")
    return body


def _body_error(exc: ValidationError, body: dict[str, Any]) -> MinpcodeError:
    """Pydantic's complaint about the body as our error: no path (3001), a bad scene (3002), else -1.

    A text that breaks its pattern (handlers/api/models.py) holds a control character or invalid text, or,
    for a path, nothing but spaces and slashes: an empty path."""
    errors = exc.errors()
    fields = {str(e["loc"][0]) if e.get("loc") else "body" for e in errors}
    if "path" in fields and body.get("path") in (None, ""):
        return EmptyPath()
    found: list[FieldError] = []
    for item in errors:
        field = str(item["loc"][0]) if item.get("loc") else "body"
        if item.get("type") in ("string_pattern_mismatch", "string_unicode"):
            if field == "path" and isinstance(item.get("input"), str) and not bad_text(item["input"]):
                return EmptyPath()
            found.append(FieldError(field, f"{field} 不能包含控制字符或无效字符。",
                                    f"The {field} cannot contain control characters or invalid text."))
        elif str(item.get("type")).startswith("bool_"):
            # A JSON boolean, strictly: "yes" or 1 is refused as the document says (the chats' yes/no is theirs).
            found.append(FieldError(field, f"{field} 须是 true 或 false。", f"The {field} must be true or false."))
        elif field == "scene":
            found.append(FieldError("scene", f"scene 须是最多 {scenes.PARAMS_MAX} 个字符的字符串。",
                                    f"The scene must be a string of at most {scenes.PARAMS_MAX} characters."))
        else:
            found.append(describe(field, item))
    return InvalidRequest(found)


__all__ = ["WAIT_SECONDS", "Api", "code_view", "image_url", "make_poster", "request_lang"]
