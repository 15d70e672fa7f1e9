"""The HTTP API for other systems (CMS, CRM, scripts): the same core, history and quota as the bot.

Routes (every ``/api`` answer is seed 003's envelope ``{code, msg, data}``):

    POST /api/weapp/qrcode     {path, scene?, width?} -> data: the image URL under MINPCODE_PUBLIC_URL
    GET  /api/codes            history: q, type, status, requested_by, mine, limit, offset
    GET  /api/codes/{id}       one record
    GET  /api/scenes/{key}     the parameters behind a short scene key (public: the mini program asks)
    GET  /openapi.json         this API as OpenAPI 3.1, built from the pydantic models below

Keys come from ``MINPCODE_API_KEYS`` (``name:key,name2:key2``; one name may have several keys, for
rotation), sent as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. A key is compared in
constant time against every configured key and is never logged or echoed; the record's
``requested_by`` is the key's *name*.

Codes: 0 ok; -1 failed, ``msg`` says why; 1001 no key; 1002 key not allowed; 3001 empty path;
3002 bad scene. The HTTP status agrees with the code (200, 400, 401, 403, 404, 409, 413, 502, 503)
so scripts and monitoring see failures, while seed-style clients read ``code``.

A request with a scene makes a B code (unlimited quota), one without makes a plain WeChat A code
(the path may carry ``?query``; it counts against the 100,000 A+C cap, so identical repeats reuse
the code already made). One leading ``/`` of the path is dropped (WeChat's B page must not have
one; the seed's example sends ``/pages/...``). Scenes that do not fit WeChat's 32 characters or
character set are stored and replaced by a short key (see ``bot/scenes.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot import scenes
from bot.errors import (
    FieldError,
    InputError,
    InvalidRequest,
    MinpcodeError,
    QuotaExhausted,
)
from bot.models import SCENE_MAX, WIDTH_MAX, WIDTH_MIN, CodeRecord, CodeType, Requester, Status
from bot.service import Service

log = logging.getLogger("minpcode.api")

OK, FAILED, NO_KEY, BAD_KEY, EMPTY_PATH, BAD_SCENE = 0, -1, 1001, 1002, 3001, 3002
MAX_BODY = 16 * 1024  # bytes of JSON a code request may have
WAIT_SECONDS = 30.0  # how long a request waits for the upstream before answering "still making it"
LIST_MAX = 100
OFFSET_MAX = 1_000_000
SCAN_BATCH = 200  # rows read at a time when filtering history by type or status


# -- the wire models (they are also the OpenAPI document) -------------------------------------------
class QRCodeRequest(BaseModel):
    """Seed 003's request, plus an optional width."""

    model_config = ConfigDict(extra="forbid", title="QRCodeRequest")
    path: str = Field(
        description="Mini-program page, e.g. `/pages/product/detail` (one leading `/` is dropped). "
                    "Without a scene it may carry a `?query` (A code, at most 128 bytes).",
        examples=["/pages/product/detail"],
    )
    scene: str | None = Field(
        None, max_length=scenes.PARAMS_MAX,
        description=f"Parameters for a B code. Up to {SCENE_MAX} characters from WeChat's set go as they are; "
                    f"longer ones or other characters (Chinese, spaces, %) are stored and the code carries "
                    f"`k=<10 letters/digits>`, resolved by GET /api/scenes/{{key}}. Omit (or empty) for an A code.",
        examples=["product_id=123"],
    )
    width: int = Field(430, ge=WIDTH_MIN, le=WIDTH_MAX, description="Image width in pixels.")


class Envelope(BaseModel):
    """Seed 003's answer."""

    code: int = Field(description="0 ok, -1 failed (msg says why), 1001 no key, 1002 key not allowed, "
                                  "3001 empty path, 3002 bad scene")
    msg: str = Field(description="Why it failed, Chinese and English (empty on success)")


class ErrorAnswer(Envelope):
    data: None = None


class QRCodeAnswer(Envelope):
    data: str | None = Field(description="The image URL (code 0), else null")
    id: str | None = Field(None, description="The code's id (for GET /api/codes/{id})")
    scene: str | None = Field(None, description="The scene the code carries (a `k=...` key for stored parameters)")
    reused: bool = Field(False, description="True when an identical code already existed and nothing new was made")
    notices: list[str] = Field(default_factory=list, description="Heads-ups (quota nearly used, sandbox code)")


class CodeView(BaseModel):
    """One history record."""

    id: str
    type: CodeType
    provider: str
    status: Status
    page: str
    scene: str | None = None
    scene_params: str | None = Field(None, description="The parameters behind a stored-scene key")
    name: str | None = None
    app: str | None = None
    campaign: str | None = None
    channel: str | None = None
    width: int
    comments: str | None = None
    link: str | None = None
    tracking_url: str | None = None
    image_url: str | None = None
    error_code: str | None = None
    error: str | None = None
    requested_by: str
    chat: str | None = None
    sandbox: bool
    created_at: datetime
    updated_at: datetime


class CodeAnswer(Envelope):
    data: CodeView


class CodePage(BaseModel):
    items: list[CodeView]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page, null on the last one")


class CodeListAnswer(Envelope):
    data: CodePage


class SceneView(BaseModel):
    key: str = Field(examples=["k=3fZq9LmA0x"])
    scene: str = Field(description="The original parameters, exactly as given")
    query: dict[str, str] = Field(description="The parameters split as `a=1&b=2` (literally, no URL-decoding; "
                                             "the last of repeated names wins)")


class SceneAnswer(Envelope):
    data: SceneView


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    q: str | None = Field(None, max_length=200, description="Full-text search (name, page, scene, campaign, comments ...)")
    type: CodeType | None = None
    status: Status | None = None
    requested_by: str | None = Field(None, max_length=200, description="Only codes this user or API key name asked for")
    mine: bool = Field(False, description="Only codes asked for with this API key's name")
    limit: int = Field(20, ge=1, le=LIST_MAX)
    offset: int = Field(0, ge=0, le=OFFSET_MAX)


class Health(BaseModel):
    ok: bool
    sandbox: bool
    pending: int


class NotFoundAnswer(BaseModel):
    error: str


# -- keys -------------------------------------------------------------------------------------------
class ApiKeys:
    """The configured keys, held as SHA-256 digests and compared in constant time."""

    def __init__(self, secret: SecretStr | None) -> None:
        self._keys: list[tuple[str, bytes]] = []
        raw = secret.get_secret_value() if secret is not None else ""
        for position, entry in enumerate(raw.split(","), start=1):
            entry = entry.strip()
            if not entry:
                continue
            name, sep, key = (part.strip() for part in entry.partition(":"))
            if not sep or not name or not key or any(ch.isspace() for ch in name):
                # Say where, never what: the entry may be a bare key.
                log.warning("MINPCODE_API_KEYS entry %d is not name:key; ignored", position)
                continue
            self._keys.append((name, _digest(key)))

    def __bool__(self) -> bool:
        return bool(self._keys)

    @property
    def names(self) -> list[str]:
        return sorted({name for name, _ in self._keys})

    def identify(self, presented: str) -> str | None:
        """The name of the key ``presented`` is, or None. Every configured key is compared."""
        digest = _digest(presented)
        found = None
        for name, expected in self._keys:
            if hmac.compare_digest(digest, expected) and found is None:
                found = name
        return found


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def presented_key(request: Request) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (Bearer first)."""
    scheme, _, value = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    key = request.headers.get("x-api-key", "").strip()
    return key or None


# -- helpers ----------------------------------------------------------------------------------------
class KeyedLocks:
    """One asyncio lock per key while anyone holds or waits for it: identical concurrent requests
    run one after another, so the second reuses the first's code instead of making another."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class ApiError(Exception):
    """An answer other than success: seed code, HTTP status, bilingual text."""

    def __init__(self, code: int, status: int, zh: str, en: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(en)
        self.code, self.status, self.zh, self.en = code, status, zh, en
        self.headers = headers or {}

    @classmethod
    def from_error(cls, exc: MinpcodeError, code: int = FAILED, status: int = 400) -> ApiError:
        return cls(code, status, exc.zh, exc.en)


def _lang(request: Request) -> str:
    first = request.headers.get("accept-language", "").split(",")[0].strip().lower()
    return "en" if first.startswith("en") else "zh"


def _text(zh: str, en: str, lang: str) -> str:
    return f"{en}\n{zh}" if lang == "en" else f"{zh}\n{en}"


def _answer(payload: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(payload.model_dump(mode="json"), status_code=status, headers=headers)


def _bad_text(value: str) -> bool:
    """Control characters or lone surrogates: nothing a page or scene may hold, nor SQLite store."""
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value)


def _code_for(exc: InvalidRequest | FieldError, page: str) -> int:
    fields = [e.field for e in exc.errors] if isinstance(exc, InvalidRequest) else [exc.field]
    if "scene" in fields:
        return BAD_SCENE
    if "page" in fields and not page:
        return EMPTY_PATH
    return FAILED


def _split_params(params: str) -> dict[str, str]:
    """``a=1&b=2`` as a dict, literally: no %- or +-decoding (the parameters were never URL-encoded)."""
    out: dict[str, str] = {}
    for part in params.split("&"):
        if part:
            name, _, value = part.partition("=")
            out[name] = value
    return out


# -- the routes -------------------------------------------------------------------------------------
class Api:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.keys = ApiKeys(service.settings.minpcode_api_keys)
        self.public_url = service.settings.minpcode_public_url.rstrip("/")
        self.locks = KeyedLocks()
        if not self.keys:
            log.info("HTTP API closed: MINPCODE_API_KEYS is not set")

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/weapp/qrcode", self._guarded(self.qrcode), methods=["POST"]),
            Route("/api/codes", self._guarded(self.list_codes), methods=["GET"]),
            Route("/api/codes/{code_id:str}", self._guarded(self.get_code), methods=["GET"]),
            Route("/api/scenes/{key:str}", self._open(self.scene), methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
        ]

    # -- plumbing ---------------------------------------------------------------------------------
    def _guarded(self, handler: Callable[[Request, str], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            lang = _lang(request)
            try:
                name = self.authenticate(request)
                return await handler(request, name)
            except ApiError as exc:
                return self._error(exc, lang)
        return endpoint

    def _open(self, handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return self._error(exc, _lang(request))
        return endpoint

    @staticmethod
    def _error(exc: ApiError, lang: str) -> Response:
        return _answer(ErrorAnswer(code=exc.code, msg=_text(exc.zh, exc.en, lang)), exc.status, exc.headers)

    def authenticate(self, request: Request) -> str:
        """The name of the caller's key; ApiError 1001 without a key, 1002 with a wrong one."""
        key = presented_key(request)
        if key is None:
            raise ApiError(NO_KEY, 401, "缺少 API 密钥：请用 Authorization: Bearer <密钥> 或 X-API-Key 头发送。",
                           "No API key: send it as Authorization: Bearer <key> or X-API-Key.",
                           {"WWW-Authenticate": 'Bearer realm="minpcode"'})
        name = self.keys.identify(key)
        if name is None:
            client = request.client.host if request.client else "?"
            log.info("api: refused a request with an unknown key from %s", client)
            if not self.keys:
                raise ApiError(BAD_KEY, 403, "HTTP API 未开放（没有设置 MINPCODE_API_KEYS）。",
                               "The HTTP API is closed (MINPCODE_API_KEYS is not set).")
            raise ApiError(BAD_KEY, 403, "这个 API 密钥无效或未获授权。", "This API key is not valid or not allowed.")
        return name

    def image_url(self, record: CodeRecord) -> str | None:
        if not record.image_sha256 or record.status is not Status.DONE:
            return None
        return f"{self.public_url}/codes/{record.id}.png"

    def view(self, record: CodeRecord) -> CodeView:
        params = None
        if record.type is CodeType.B and record.scene and scenes.is_key(record.scene):
            params = scenes.resolve(self.service.storage, record.scene)
        return CodeView(
            id=record.id, type=record.type, provider=record.provider.value, status=record.status, page=record.page,
            scene=record.scene, scene_params=params, name=record.name, app=record.app, campaign=record.campaign,
            channel=record.channel, width=record.width, comments=record.comments, link=record.link,
            tracking_url=record.tracking_url, image_url=self.image_url(record), error_code=record.error_code,
            error=record.error, requested_by=record.requested_by, chat=record.chat, sandbox=record.sandbox,
            created_at=record.created_at, updated_at=record.updated_at,
        )

    # -- POST /api/weapp/qrcode -------------------------------------------------------------------
    async def qrcode(self, request: Request, name: str) -> Response:
        body = await _json_body(request)
        fields, page = self.fields(body, name)
        requester = Requester(chat="api", user_id=name, user_name=name, lang=_lang(request))
        try:
            async with self.locks.hold(json.dumps(fields, sort_keys=True, ensure_ascii=False)):
                submission = await self.service.submit(fields, requester, wait=True, timeout=WAIT_SECONDS)
        except (InvalidRequest, FieldError) as exc:
            raise ApiError(_code_for(exc, page), 400, exc.zh, exc.en) from None
        except QuotaExhausted as exc:
            raise ApiError.from_error(exc, status=409) from None
        except InputError as exc:
            raise ApiError.from_error(exc, status=400) from None
        except MinpcodeError as exc:
            raise ApiError.from_error(exc, status=502) from None
        record = submission.record
        log.info("api: %s asked for %s code %s (%s)", name, record.type.value, record.id,
                 "reused" if submission.reused else record.status.value)
        if record.status is Status.PENDING:
            raise ApiError(FAILED, 503, "码还在生成中，请稍后用同样的参数再请求一次（不会重复生成）。",
                           "The code is still being made; send the same request again shortly (it will not be made twice).",
                           {"Retry-After": "5"})
        if record.status is not Status.DONE or not record.image_sha256:
            zh, _, en = (record.error or "生成失败。\nThe code could not be made.").partition("\n")
            raise ApiError(FAILED, 502, zh, en or zh)
        lang = requester.lang
        return _answer(QRCodeAnswer(
            code=OK, msg="", data=self.image_url(record), id=record.id, scene=record.scene, reused=submission.reused,
            notices=[n.text(lang) for n in submission.notices],
        ))

    def fields(self, body: dict[str, Any], name: str) -> tuple[dict[str, Any], str]:
        """Seed 003's body as CodeRequest input (a B code with a scene, else an A code), and the page."""
        try:
            parsed = QRCodeRequest.model_validate(body)
        except ValidationError as exc:
            raise _body_error(exc, body) from None
        page = parsed.path.strip()
        if _bad_text(page):
            raise ApiError(FAILED, 400, "path 不能包含控制字符。", "The path cannot contain control characters.")
        if page.startswith("/"):
            page = page[1:]
        if not page:  # the seed's path is required, for B codes too (WeChat's "home page" default is not offered)
            raise _empty_path()
        scene = (parsed.scene or "").strip()
        if not scene:
            # No campaign or channel here, so a plain WeChat code rather than a GrowingIO link.
            return {"type": "A", "via": "wechat", "page": page, "width": parsed.width}, page
        try:
            sent, params = scenes.prepare_scene(self.service.storage, scene, created_by=name)
        except FieldError as exc:
            raise ApiError(BAD_SCENE, 400, exc.zh, exc.en) from None
        fields: dict[str, Any] = {"type": "B", "page": page, "scene": sent, "width": parsed.width}
        if params is not None:
            fields["comments"] = scenes.note(sent, params)
        return fields, page

    # -- GET /api/codes, /api/codes/{id} ----------------------------------------------------------
    async def list_codes(self, request: Request, name: str) -> Response:
        raw = dict(request.query_params)
        try:
            query = ListQuery.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'query'}: {e['msg']}" for e in exc.errors())
            raise ApiError(FAILED, 400, f"查询参数不对：{problems}", f"Bad query parameters: {problems}") from None
        if query.q is not None and _bad_text(query.q) or query.requested_by is not None and _bad_text(query.requested_by):
            raise ApiError(FAILED, 400, "查询参数不能包含控制字符。", "Query parameters cannot contain control characters.")
        who = name if query.mine else (query.requested_by or None)
        records, more = self._page(query, who)
        items = [self.view(r) for r in records]
        return _answer(CodeListAnswer(code=OK, msg="", data=CodePage(
            items=items, limit=query.limit, offset=query.offset,
            next_offset=query.offset + len(items) if more else None,
        )))

    def _page(self, query: ListQuery, who: str | None) -> tuple[list[CodeRecord], bool]:
        """One page of history, newest first, and whether more follow."""
        history = self.service.storage.history

        def fetch(limit: int, offset: int) -> list[CodeRecord]:
            if query.q and query.q.strip():
                return history.search(query.q, requested_by=who, limit=limit, offset=offset)
            return history.recent(requested_by=who, limit=limit, offset=offset,
                                  include_deleted=query.status is Status.DELETED)

        if query.type is None and query.status is None:
            rows = fetch(query.limit + 1, query.offset)
            return rows[: query.limit], len(rows) > query.limit
        # The storage filters by requester and text; type and status are filtered here, in batches.
        matched: list[CodeRecord] = []
        skip, position = query.offset, 0
        while len(matched) <= query.limit:
            rows = fetch(SCAN_BATCH, position)
            position += len(rows)
            for record in rows:
                if (query.type and record.type is not query.type) or (query.status and record.status is not query.status):
                    continue
                if skip:
                    skip -= 1
                else:
                    matched.append(record)
            if len(rows) < SCAN_BATCH:
                break
        return matched[: query.limit], len(matched) > query.limit

    async def get_code(self, request: Request, name: str) -> Response:
        code_id = request.path_params["code_id"]
        record = self.service.storage.history.get(code_id) if len(code_id) <= 64 and not _bad_text(code_id) else None
        if record is None:
            raise ApiError(FAILED, 404, f"没有编号为 {code_id[:64]} 的码。", f"There is no code with id {code_id[:64]}.")
        return _answer(CodeAnswer(code=OK, msg="", data=self.view(record)))

    # -- GET /api/scenes/{key} ---------------------------------------------------------------------
    async def scene(self, request: Request) -> Response:
        key = request.path_params["key"].strip()
        params = scenes.resolve(self.service.storage, key) if len(key) <= 64 else None
        if params is None:
            raise ApiError(FAILED, 404, "没有这个场景编号。", "There is no such scene key.")
        full = key if key.startswith(scenes.KEY_PREFIX) else scenes.KEY_PREFIX + key
        return _answer(SceneAnswer(code=OK, msg="", data=SceneView(key=full, scene=params, query=_split_params(params))),
                       headers={"Cache-Control": "public, max-age=86400, immutable"})

    # -- GET /openapi.json -------------------------------------------------------------------------
    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document(self.public_url))


async def _json_body(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiError(FAILED, 413, f"请求体最多 {MAX_BODY} 字节。", f"The body may have at most {MAX_BODY} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(FAILED, 413, f"请求体最多 {MAX_BODY} 字节。", f"The body may have at most {MAX_BODY} bytes.")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise ApiError(FAILED, 400, "请求体须是 JSON 对象，例如 {\"path\": \"pages/index/index\", \"scene\": \"id=1\"}。",
                       "The body must be a JSON object, e.g. {\"path\": \"pages/index/index\", \"scene\": \"id=1\"}.")
    return body


def _empty_path() -> ApiError:
    return ApiError(EMPTY_PATH, 400, "path 参数不能为空，例如 /pages/index/index。",
                    "The path cannot be empty, e.g. /pages/index/index.")


def _body_error(exc: ValidationError, body: dict[str, Any]) -> ApiError:
    """Pydantic's complaint about the body as the seed's code: 3001 no path, 3002 bad scene, else -1."""
    errors = exc.errors()
    fields = {str(e["loc"][0]) if e.get("loc") else "body" for e in errors}
    if "path" in fields and body.get("path") in (None, ""):
        return _empty_path()
    if "scene" in fields:
        return ApiError(BAD_SCENE, 400,
                        f"scene 须是最多 {scenes.PARAMS_MAX} 个字符的字符串。",
                        f"The scene must be a string of at most {scenes.PARAMS_MAX} characters.")
    problems = "; ".join(
        f"{e['loc'][0] if e.get('loc') else 'body'}: {'unknown field' if e['type'] == 'extra_forbidden' else e['msg']}"
        for e in errors
    )
    return ApiError(FAILED, 400, f"请求参数不对：{problems}", f"The request is not valid: {problems}")


# -- the OpenAPI document -----------------------------------------------------------------------------
_SECURITY = [{"bearer": []}, {"apiKey": []}]
_MODELS: list[type[BaseModel]] = [QRCodeRequest, QRCodeAnswer, ErrorAnswer, CodeView, CodeAnswer, CodePage,
                                  CodeListAnswer, SceneView, SceneAnswer, Health, NotFoundAnswer]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type[BaseModel], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": _ref(model)}}}
    if headers:
        out["headers"] = headers
    return out


def _errors(*statuses: int) -> dict[str, Any]:
    why = {
        400: "Bad input: -1, 3001 (empty path) or 3002 (bad scene)",
        401: "1001: no API key",
        403: "1002: the key is not allowed",
        404: "-1: not found",
        409: "-1: the mini program's A/C quota is used up (use a B code)",
        413: "-1: body too large",
        502: "-1: WeChat refused or failed; msg says why",
        503: "-1: still being made; send the same request again",
    }
    headers = {
        401: {"WWW-Authenticate": {"schema": {"type": "string"}}},
        503: {"Retry-After": {"schema": {"type": "string"}}},
    }
    return {str(s): _json(ErrorAnswer, why[s], headers.get(s)) for s in statuses}


def _query_parameters() -> list[dict[str, Any]]:
    schema = ListQuery.model_json_schema()
    out = []
    for field, spec in schema["properties"].items():
        spec = dict(spec)
        spec.pop("title", None)
        description = spec.pop("description", None)
        if "$ref" in spec:  # enums live in $defs: inline them
            spec = dict(schema["$defs"][spec["$ref"].rsplit("/", 1)[1]])
            spec.pop("title", None)
        elif "anyOf" in spec:
            choices = [c for c in spec["anyOf"] if c.get("type") != "null"]
            inner = choices[0]
            if "$ref" in inner:
                inner = dict(schema["$defs"][inner["$ref"].rsplit("/", 1)[1]])
                inner.pop("title", None)
            spec = {**inner, **{k: v for k, v in spec.items() if k not in ("anyOf", "default")}}
        spec.pop("default", None)
        param: dict[str, Any] = {"name": field, "in": "query", "required": False, "schema": spec}
        if description:
            param["description"] = description
        out.append(param)
    return out


def openapi_document(public_url: str = "") -> dict[str, Any]:
    """The API as OpenAPI 3.1: the schemas are the pydantic models this module answers with."""
    _, defs = models_json_schema([(m, "validation") for m in _MODELS],
                                 ref_template="#/components/schemas/{model}")
    schemas = defs.get("$defs", {})
    path_id = {"name": "code_id", "in": "path", "required": True, "description": "12 random lowercase letters/digits",
               "schema": {"type": "string", "pattern": "^[a-z0-9]{12}$"}}
    image_headers = {"ETag": {"schema": {"type": "string"}}, "Cache-Control": {"schema": {"type": "string"}}}
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "minpcode HTTP API",
            "version": "1",
            "description": "WeChat mini-program codes for other systems, with the bot's shared client, "
                           "history and quota. Answers follow seed 003's {code, msg, data}.",
        },
        "paths": {
            "/api/weapp/qrcode": {"post": {
                "operationId": "makeCode",
                "summary": "A B code when a scene is given, else an A code; data is the image URL",
                "security": _SECURITY,
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": _ref(QRCodeRequest)}}},
                "responses": {"200": _json(QRCodeAnswer, "0: made, or reused"),
                              **_errors(400, 401, 403, 404, 409, 413, 502, 503)},
            }},
            "/api/codes": {"get": {
                "operationId": "listCodes",
                "summary": "History, newest first",
                "security": _SECURITY,
                "parameters": _query_parameters(),
                "responses": {"200": _json(CodeListAnswer, "A page of records"), **_errors(400, 401, 403)},
            }},
            "/api/codes/{code_id}": {"get": {
                "operationId": "getCode",
                "summary": "One record",
                "security": _SECURITY,
                "parameters": [path_id],
                "responses": {"200": _json(CodeAnswer, "The record"), **_errors(401, 403, 404)},
            }},
            "/api/scenes/{key}": {"get": {
                "operationId": "resolveScene",
                "summary": "The parameters behind a stored scene key (called by the mini program; no API key)",
                "security": [],
                "parameters": [{"name": "key", "in": "path", "required": True,
                                "description": "`k=XXXXXXXXXX` or just the 10 characters",
                                "schema": {"type": "string", "pattern": "^(k=)?[0-9A-Za-z]{10}$"}}],
                "responses": {"200": _json(SceneAnswer, "The parameters"), **_errors(404)},
            }},
            "/codes/{code_id}.png": {"get": {
                "operationId": "codeImage",
                "summary": "The image (its real type: JPEG, or PNG when transparent); the id is the capability",
                "security": [],
                "parameters": [path_id, {"name": "If-None-Match", "in": "header", "required": False,
                                         "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "The image", "headers": image_headers, "content": {
                        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                        "image/png": {"schema": {"type": "string", "format": "binary"}},
                    }},
                    "304": {"description": "Not modified (If-None-Match matched the ETag)", "headers": image_headers},
                    "404": _json(NotFoundAnswer, "No such code, or it has no image"),
                },
            }},
            "/healthz": {"get": {
                "operationId": "health", "summary": "Liveness", "security": [],
                "responses": {"200": _json(Health, "Alive")},
            }},
            "/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document", "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}},
            }},
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
    if public_url:
        doc["servers"] = [{"url": public_url}]
    return doc


def api_routes(service: Service) -> list[BaseRoute]:
    """Every route of the HTTP API (``/codes/{id}.png`` and ``/healthz`` are the server's own)."""
    return Api(service).routes()


__all__ = ["Api", "ApiKeys", "api_routes", "openapi_document"]
