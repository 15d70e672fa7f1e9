"""Body parsing and validation for the A/B/C mini-program code APIs: A is getQRCode
(https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/qrcode-link/qr-code/getQRCode.html),
B getUnlimitedQRCode
(https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/qrcode-link/qr-code/getUnlimitedQRCode.html),
C createQRCode
(https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/qrcode-link/qr-code/createQRCode.html).

Pure functions: a JSON body in, a :class:`CodeRequest` or a :class:`WeChatError` out. Checks run in
the order a careful server would: JSON shape and types (47001) first, then per-field rules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from bot.sandbox._wechat_errors import WeChatError

KINDS = ("A", "B", "C")
ENV_VERSIONS = ("release", "trial", "develop")
DEFAULT_WIDTH = 430
MIN_WIDTH, MAX_WIDTH = 280, 1280

# WeChat rejects unknown keys (a `check_page` typo gives 47001, doc S20). C officially takes only
# path + width; we let it take A's keys too and ignore colours/transparency (C is always a JPEG).
FIELDS: dict[str, frozenset[str]] = {
    "A": frozenset({"path", "width", "auto_color", "line_color", "is_hyaline", "env_version"}),
    "B": frozenset(
        {"scene", "page", "check_path", "env_version", "width", "auto_color", "line_color", "is_hyaline"}
    ),
    "C": frozenset({"path", "width", "auto_color", "line_color", "is_hyaline", "env_version"}),
}
SCENE_CHARS = re.compile(r"[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]+")
SCENE_MAX = 32
RESERVED = "scancode_time"


@dataclass(frozen=True)
class CodeRequest:
    kind: str
    path: str  # A/C: the path with its query; B: the page ("" = the app's home page)
    scene: str | None = None
    width: int = DEFAULT_WIDTH
    auto_color: bool = False
    line_color: tuple[int, int, int] = (0, 0, 0)
    is_hyaline: bool = False
    check_path: bool = True
    env_version: str = "release"

    @property
    def quota_key(self) -> tuple[object, ...]:
        """Same api + path + width + colours = the same code, which WeChat does not count twice
        (WeChat's answer in its developer community,
        https://developers.weixin.qq.com/community/develop/doc/000448546b4130283d09b7ca451400); which fields make the key
        is our assumption."""
        return (self.kind, self.path, self.width, self.auto_color, self.line_color, self.is_hyaline)

    @property
    def image_format(self) -> str:
        return "PNG" if self.is_hyaline and self.kind != "C" else "JPEG"


@dataclass(frozen=True)
class CodeRules:
    """The knobs of validation; each default says where it comes from."""

    path_max_bytes: int = 128  # C: createwxaqrcode's documented cap
    a_path_max_bytes: int = 1024  # A: the current wxacode.get reference (older texts: 128)
    strict_width: frozenset[str] = frozenset({"A"})  # kinds answering 40189; the others clamp
    pages: Collection[str] | None = None  # released pages; None = every page exists
    reject_ampersand_in_scene: bool = False  # a developers' report, not the reference: '&' gives 40129


def load_body(raw: bytes | dict[str, Any]) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WeChatError(47001) from None
    if not isinstance(body, dict):
        raise WeChatError(47001)
    return body


def _typed(body: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = body.get(key, default)
    # bool is an int in Python, but `"is_hyaline": 1` / `"width": true` are 47001 on WeChat.
    if value is default:
        return value
    if kind is bool and not isinstance(value, bool):
        raise WeChatError(47001)
    if kind is int and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise WeChatError(47001)
    if kind is str and not isinstance(value, str):
        raise WeChatError(47001)
    return value


def _line_color(value: Any) -> tuple[int, int, int]:
    if value is None:
        return (0, 0, 0)
    if not isinstance(value, dict):
        raise WeChatError(47001)
    channels = []
    for key in ("r", "g", "b"):
        part = value.get(key, 0)
        # The doc's own examples send strings ("0"), so decimal strings are accepted.
        if isinstance(part, str) and part.strip().isdigit():
            part = int(part)
        if isinstance(part, bool) or not isinstance(part, int) or not 0 <= part <= 255:
            raise WeChatError(47001)
        channels.append(part)
    return (channels[0], channels[1], channels[2])


def parse_code_request(kind: str, raw: bytes | dict[str, Any], rules: CodeRules) -> CodeRequest:
    body = load_body(raw)
    if set(body) - FIELDS[kind]:
        raise WeChatError(47001)
    width = _typed(body, "width", int, None)
    auto_color = _typed(body, "auto_color", bool, False)
    line_color = _line_color(body.get("line_color"))
    is_hyaline = _typed(body, "is_hyaline", bool, False)
    env_version = _typed(body, "env_version", str, "release")
    check_path = _typed(body, "check_path", bool, True)
    if kind == "B":
        scene = _typed(body, "scene", str, None)
        target = _typed(body, "page", str, "")
        _check_scene(scene, rules)
        _check_page(target, check_path, rules)
    else:
        scene = None
        target = _typed(body, "path", str, None)
        limit = rules.a_path_max_bytes if kind == "A" else rules.path_max_bytes
        if not target or len(target.encode("utf-8")) > limit:
            raise WeChatError(40159)
        if RESERVED in target:
            raise WeChatError(85096)
    if env_version not in ENV_VERSIONS:
        raise WeChatError(40097)
    return CodeRequest(
        kind=kind,
        path=target,
        scene=scene,
        width=_width(kind, width, rules),
        auto_color=auto_color,
        line_color=line_color,
        is_hyaline=is_hyaline,
        check_path=check_path,
        env_version=env_version,
    )


def _check_scene(scene: str | None, rules: CodeRules) -> None:
    if not scene or len(scene) > SCENE_MAX:
        raise WeChatError(40169)
    if not SCENE_CHARS.fullmatch(scene) or (rules.reject_ampersand_in_scene and "&" in scene):
        raise WeChatError(40129)


def _check_page(page: str, check_path: bool, rules: CodeRules) -> None:
    if RESERVED in page:
        raise WeChatError(85096)
    if page.startswith("/") or "?" in page:
        raise WeChatError(41030)
    if page and check_path and rules.pages is not None and page not in rules.pages:
        raise WeChatError(41030)


def _width(kind: str, width: int | float | None, rules: CodeRules) -> int:
    if width is None:
        return DEFAULT_WIDTH
    value = int(width)
    if MIN_WIDTH <= value <= MAX_WIDTH:
        return value
    if kind in rules.strict_width:
        raise WeChatError(40189)
    return max(MIN_WIDTH, min(MAX_WIDTH, value))
