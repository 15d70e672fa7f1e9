"""Our errors as HTTP answers: one function maps them to an HTTP status and the API's ``code`` (docs/api.md).

There is no API error class of its own: everything the API refuses is a :class:`MinpcodeError`
(one error root for the whole bot), raised by the service or by the few API-only refusals below,
and :func:`error_response` is the single place that decides, at the API's boundary, which status
and API code each one gets and renders its text in the caller's language:

    MissingKey                       401  1001  (with WWW-Authenticate)
    KeyRefused                       403  1002
    EmptyPath (a FieldError)         400  3001
    a FieldError on ``scene``        400  3002  (alone or inside an InvalidRequest)
    other InputError                 400  -1
    NotFound                         404  -1
    PermissionDenied                 403  -1    (a live code changed by someone else)
    BodyTooLarge                     413  -1
    QuotaExhausted                   409  -1
    StillPending                     503  -1    (with Retry-After)
    Unexpected (a bug of ours)       500  -1
    StorageUnavailable               503  -1    (the database file is gone, or its disk full)
    anything else (upstream, failed) 502  -1
"""

from __future__ import annotations

from pydantic import BaseModel
from starlette.responses import JSONResponse

from bot.errors import (
    FieldError,
    InputError,
    InvalidRequest,
    MinpcodeError,
    NotFound,
    PermissionDenied,
    QuotaExhausted,
    StorageUnavailable,
    Unexpected,
)
from bot.text import bilingual
from handlers.api.models import ErrorAnswer
from handlers.http import BodyTooLarge

OK, FAILED, NO_KEY, BAD_KEY, EMPTY_PATH, BAD_SCENE = 0, -1, 1001, 1002, 3001, 3002
MAX_BODY = 16 * 1024  # bytes of JSON a code request may have


class MissingKey(InputError):
    code_name = "missing_key"


class KeyRefused(InputError):
    code_name = "key_refused"


class EmptyPath(FieldError):
    """The API's ``path`` is required, for B codes too (docs/api.md)."""

    def __init__(self) -> None:
        super().__init__("page", "path 参数不能为空，例如 /pages/index/index。",
                         "The path cannot be empty, e.g. /pages/index/index.")


class StillPending(MinpcodeError):
    code_name = "pending"

    def __init__(self) -> None:
        super().__init__("码还在生成中，请稍后用同样的参数再请求一次（不会重复生成）。",
                         "The code is still being made; send the same request again shortly (it will not be made twice).")


class CodeFailed(MinpcodeError):
    """The record was made and failed; its stored message says why."""

    code_name = "failed"


def _fields(exc: MinpcodeError) -> list[FieldError]:
    if isinstance(exc, InvalidRequest):
        return exc.errors
    return [exc] if isinstance(exc, FieldError) else []


def status_and_code(exc: MinpcodeError | BodyTooLarge) -> tuple[int, int, dict[str, str]]:
    """The HTTP status, API code and extra headers for ``exc`` (the table in this module's docstring)."""
    if isinstance(exc, BodyTooLarge):
        return 413, FAILED, {}
    if isinstance(exc, MissingKey):
        return 401, NO_KEY, {"WWW-Authenticate": 'Bearer realm="minpcode"'}
    if isinstance(exc, KeyRefused):
        return 403, BAD_KEY, {}
    fields = _fields(exc)
    if any(e.field == "scene" for e in fields):
        return 400, BAD_SCENE, {}
    if any(isinstance(e, EmptyPath) for e in fields):
        return 400, EMPTY_PATH, {}
    if isinstance(exc, NotFound):
        return 404, FAILED, {}
    if isinstance(exc, PermissionDenied):
        return 403, FAILED, {}
    if isinstance(exc, InputError):
        return 400, FAILED, {}
    if isinstance(exc, QuotaExhausted):
        return 409, FAILED, {}
    if isinstance(exc, StillPending):
        return 503, FAILED, {"Retry-After": "5"}
    if isinstance(exc, Unexpected):
        return 500, FAILED, {}
    if isinstance(exc, StorageUnavailable):
        return 503, FAILED, {}
    return 502, FAILED, {}


def answer(payload: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(payload.model_dump(mode="json"), status_code=status, headers=headers)


def error_response(exc: MinpcodeError | BodyTooLarge, lang: str | None) -> JSONResponse:
    """``exc`` as the API's envelope, its text in the caller's language first."""
    status, code, headers = status_and_code(exc)
    if isinstance(exc, BodyTooLarge):
        text = bilingual(f"请求体最多 {exc.limit} 字节。", f"The body may have at most {exc.limit} bytes.", lang)
    else:
        text = exc.message.render(lang)
    return answer(ErrorAnswer(code=code, msg=text), status, headers)


__all__ = ["BAD_KEY", "BAD_SCENE", "EMPTY_PATH", "FAILED", "MAX_BODY", "NO_KEY", "OK", "CodeFailed", "EmptyPath",
           "KeyRefused", "MissingKey", "StillPending", "answer", "error_response", "status_and_code"]
