"""URL Link (``/wxa/generate_urllink``,
https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/url-link/api_generateurllink.html) and
URL Scheme (``/wxa/generatescheme``,
https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/url-scheme/api_generatescheme): body
parsing, the rules of the two pages, and the links handed out.

What the pages say and this module keeps: the page is a released page without query (``path`` empty: the home
page); the query is at most 1024 characters of ``0-9A-Za-z!#$&'()*+,/:;=?@-._~%``; ``env_version`` is release,
trial or develop; ``expire_type`` 0 takes ``expire_time`` (a Unix time) and 1 takes ``expire_interval`` (days),
either at most 30 days away. The errcodes are those of the pages' tables: 40165 path, 40212 query, 85401 expiry
("时间间隔大于1分钟且小于30天"), 85402 env_version, 85079 no released version, 40002 no permission (personal
mini programs), 44990 over 100 a second, 44993 over 500,000 a day for URL Link and URL Scheme together.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from bot.sandbox._wechat_codes import load_body
from bot.sandbox._wechat_errors import WeChatError

URLLINK_PATH = "/wxa/generate_urllink"
SCHEME_PATH = "/wxa/generatescheme"
ENV_VERSIONS = ("release", "trial", "develop")
QUERY_MAX = 1024
QUERY_CHARS = re.compile(r"[0-9A-Za-z!#$&'()*+,/:;=?@\-._~%]*")
DAYS_MAX = 30
MIN_SECONDS = 60  # 85401's "大于1分钟"
# is_expire is the old switch (every link expires since 2022-04-11); the pages' own examples still send it,
# so it is taken and ignored. Refusing unknown keys (47001) is our assumption, as for the codes.
URLLINK_FIELDS = frozenset({"path", "query", "env_version", "expire_type", "expire_time", "expire_interval",
                            "cloud_base", "is_expire"})
SCHEME_FIELDS = frozenset({"jump_wxa", "expire_type", "expire_time", "expire_interval", "is_expire"})
JUMP_FIELDS = frozenset({"path", "query", "env_version"})
_TICKET_CHARS = string.ascii_letters + string.digits


@dataclass(frozen=True)
class LinkRequest:
    path: str
    query: str
    env_version: str
    expires_at: float  # the Unix time the link stops working


def _typed(body: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = body.get(key, default)
    if value is default:
        return value
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise WeChatError(47001)
    if kind is str and not isinstance(value, str):
        raise WeChatError(47001)
    if kind is bool and not isinstance(value, bool):
        raise WeChatError(47001)
    return value


def _target(body: dict[str, Any], pages: Collection[str] | None) -> tuple[str, str, str]:
    path = _typed(body, "path", str, "")
    query = _typed(body, "query", str, "")
    env_version = _typed(body, "env_version", str, "release")
    # "必须是已经发布的小程序存在的页面，不可携带 query": a leading "/" names the same page (WeChat's own
    # community answers suggest it is taken; our assumption), a "?" is refused.
    page = path.lstrip("/")
    if "?" in path or (page and pages is not None and page not in pages):
        raise WeChatError(40165)
    if len(query) > QUERY_MAX or not QUERY_CHARS.fullmatch(query):
        raise WeChatError(40212)
    if env_version not in ENV_VERSIONS:
        raise WeChatError(85402)
    return page, query, env_version


def _expiry(body: dict[str, Any], now: float) -> float:
    _typed(body, "is_expire", bool, None)
    expire_type = _typed(body, "expire_type", int, 0)
    if expire_type not in (0, 1):
        raise WeChatError(40097)  # which errcode an unknown expire_type gets: our assumption
    if expire_type == 0:
        when = _typed(body, "expire_time", int, None)
        if when is None or not now + MIN_SECONDS < when <= now + DAYS_MAX * 86400:
            raise WeChatError(85401)
        return float(when)
    days = _typed(body, "expire_interval", int, None)
    if days is None or not 1 <= days <= DAYS_MAX:
        raise WeChatError(85401)
    return now + days * 86400


def parse_url_link(raw: bytes, now: float, pages: Collection[str] | None) -> LinkRequest:
    body = load_body(raw)
    if set(body) - URLLINK_FIELDS:
        raise WeChatError(47001)
    if "cloud_base" in body and not isinstance(body["cloud_base"], dict):
        raise WeChatError(47001)
    path, query, env_version = _target(body, pages)
    return LinkRequest(path, query, env_version, _expiry(body, now))


def parse_scheme(raw: bytes, now: float, pages: Collection[str] | None) -> LinkRequest:
    body = load_body(raw)
    if set(body) - SCHEME_FIELDS:
        raise WeChatError(47001)
    jump = body.get("jump_wxa", {})
    if not isinstance(jump, dict) or set(jump) - JUMP_FIELDS:
        raise WeChatError(47001)
    path, query, env_version = _target(jump, pages)
    return LinkRequest(path, query, env_version, _expiry(body, now))


def ticket() -> str:
    return "".join(secrets.choice(_TICKET_CHARS) for _ in range(11))


def url_link() -> str:
    """``https://wxaurl.cn/*TICKET*`` (the page also names wxmpurl.cn; the emulator hands out the first)."""
    return f"https://wxaurl.cn/{ticket()}"


def url_scheme() -> str:
    """``weixin://dl/business/?t=*TICKET*``."""
    return f"weixin://dl/business/?t={ticket()}"


__all__ = ["SCHEME_PATH", "URLLINK_PATH", "LinkRequest", "parse_scheme", "parse_url_link", "url_link", "url_scheme"]
