"""GrowingIO validation and its error bodies.

GIO documents the rules (https://growingio.gitbook.io/old_docs/api/ads-tracking-api,
https://help.growingio.com/v3/developer-manual/api-reference/query-productid/definition/minp-api)
but not the error answers for campaigns, channels or minplinks (docs/growingio.md). So the emulator
invents no typed codes: it answers a plain status (400 for every validation failure: OUR ASSUMPTION)
and a human message, in one of three shapes (which GrowingIO sends where is OUR ASSUMPTION too),
chosen by ``shape``:

    "errors"  {"message": "<English>", "errors": [{"code": "bad_request", "message": "<中文>"}]}
    "status"  {"status": "fail", "message": "<中文> / <English>"}      (project-management endpoints)
    "text"    <中文> / <English>  as text/plain                          (a proxy or gateway in between)

A client must read the words, not a code; several broken rules are listed in one message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse, PlainTextResponse, Response

NAME_MAX = 50  # counted in characters (GrowingIO says 50; characters, not bytes: our assumption)
NAME_CHARS = re.compile(r"[\u4e00-\u9fa5A-Za-z0-9/_-]+")
TRACKING_URL_MAX_BYTES = 128  # WeChat's code parameter cap; the tracking URL is what gets encoded
# A page path with an optional query: no scheme, no leading '/', no empty segments, no spaces/'#'.
REDIRECT_URL = re.compile(r"[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-.]+)*(\?[^\s#]*)?")
CODE_TYPES = ("A", "C")


@dataclass(frozen=True)
class Problem:
    field: str
    code: str
    en: str
    zh: str

    def as_json(self) -> dict[str, str]:
        # ``code`` is one generic "bad_request" (our assumption: the GrowingIO pages we cite name no error
        # codes); ours stay inside.
        return {"code": "bad_request", "message": f"{self.field}: {self.zh}"}


SHAPES = ("errors", "status", "text")


@dataclass
class GioError(Exception):
    """Any non-2xx answer of the GIO emulator."""

    status: int
    message: str
    errors: list[dict[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def response(self, shape: str = "errors") -> Response:
        zh = "；".join(e["message"] for e in self.errors if e.get("message"))
        if shape == "status":
            both = f"{zh} / {self.message}" if zh else self.message
            return JSONResponse({"status": "fail", "message": both}, self.status, self.headers)
        if shape == "text":
            return PlainTextResponse(f"{zh} / {self.message}" if zh else self.message, self.status, self.headers)
        return JSONResponse({"message": self.message, "errors": self.errors}, self.status, self.headers)


def invalid(problems: list[Problem]) -> GioError:
    return GioError(400, "; ".join(f"{p.field}: {p.en}" for p in problems), [p.as_json() for p in problems])


def bad_request(en: str, zh: str, code: str = "bad_request") -> GioError:
    return GioError(400, en, [{"code": code, "message": zh}])


def required(body: dict[str, Any], key: str, kind: type, problems: list[Problem]) -> Any:
    """The value of a required field, or None after recording why it is missing / mistyped."""
    value = body.get(key)
    if value is None or value == "":
        problems.append(Problem(key, "required", "is required", f"{key} 为必填项"))
        return None
    if not isinstance(value, kind):
        problems.append(Problem(key, "invalid_type", f"must be a {kind.__name__}", f"{key} 类型错误"))
        return None
    return value


def optional_str(body: dict[str, Any], key: str, problems: list[Problem]) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        problems.append(Problem(key, "invalid_type", "must be a string", f"{key} 类型错误"))
        return None
    return value


def check_name(name: str, taken: set[str], what_en: str, what_zh: str, problems: list[Problem]) -> None:
    if len(name) > NAME_MAX:
        problems.append(Problem("name", "name_too_long", f"{what_en} name is longer than {NAME_MAX} characters",
                                f"{what_zh}名称不能超过{NAME_MAX}个字符"))
    elif not NAME_CHARS.fullmatch(name):
        problems.append(Problem("name", "invalid_name",
                                f"{what_en} name may only contain Chinese, letters, digits, '-', '/', '_'",
                                f"{what_zh}名称仅支持中英文、数字及 -/_"))
    elif name in taken:
        problems.append(Problem("name", "duplicate_name", f"a {what_en} named {name!r} already exists",
                                f"同项目下已存在同名{what_zh}：{name}"))


def tracking_url(redirect_url: str, link_id: str) -> str:
    joiner = "&" if "?" in redirect_url else "?"
    return f"{redirect_url}{joiner}aid={link_id}"


def check_redirect(redirect_url: str, problems: list[Problem]) -> None:
    if not REDIRECT_URL.fullmatch(redirect_url):
        problems.append(Problem("redirectUrl", "invalid_redirect_url",
                                "must be a mini-program page path such as pages/list/list",
                                "跳转地址格式不正确，应为小程序页面路径，例如 pages/list/list"))
        return
    # Every link id has the same length, so a placeholder gives the exact byte count.
    size = len(tracking_url(redirect_url, "x" * 8).encode("utf-8"))
    if size > TRACKING_URL_MAX_BYTES:
        problems.append(Problem("redirectUrl", "url_too_long",
                                f"the tracking URL would be {size} bytes, over {TRACKING_URL_MAX_BYTES}",
                                f"监测链接长度 {size} 字节，超过 {TRACKING_URL_MAX_BYTES} 字节上限"))
