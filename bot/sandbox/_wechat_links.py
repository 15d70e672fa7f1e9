"""Short Link (``/wxa/genwxashortlink``,
https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/qrcode-link/short-link/generateShortLink.html): body parsing and the link text."""

from __future__ import annotations

import secrets
import string
from collections.abc import Collection
from dataclasses import dataclass

from bot.sandbox._wechat_codes import load_body
from bot.sandbox._wechat_errors import WeChatError

FIELDS = frozenset({"page_url", "page_title", "is_permanent"})
PAGE_URL_MAX = 1024
TITLE_MAX = 20
# "No illegal content" is WeChat's own judgement; the emulator stands in with a small, documented
# list so tests can provoke 40225 on purpose.
TITLE_BLOCKLIST: tuple[str, ...] = ("赌博", "色情", "毒品", "枪支", "代开发票", "casino", "illegal")
_TOKEN_CHARS = string.ascii_letters + string.digits


@dataclass(frozen=True)
class ShortLinkRequest:
    page_url: str
    title: str  # already truncated; "" when none was given
    is_permanent: bool


def parse_short_link(raw: bytes, pages: Collection[str] | None, blocklist: Collection[str]) -> ShortLinkRequest:
    body = load_body(raw)
    if set(body) - FIELDS:
        raise WeChatError(47001)
    page_url = body.get("page_url")
    title = body.get("page_title") or ""
    permanent = body.get("is_permanent", False)
    if page_url is not None and not isinstance(page_url, str):
        raise WeChatError(47001)
    if not isinstance(title, str) or not isinstance(permanent, bool):
        raise WeChatError(47001)
    if not page_url or len(page_url) > PAGE_URL_MAX:
        raise WeChatError(40066)
    page = page_url.split("?", 1)[0].lstrip("/")
    if not page or (pages is not None and page not in pages):
        raise WeChatError(40066)
    if any(word in title.lower() for word in blocklist):
        raise WeChatError(40225)
    if len(title) > TITLE_MAX:
        # WeChat's generateShortLink: a page_title over 20 characters is cut and ends in "...", never refused
        # (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/qrcode-link/short-link/generateShortLink.html).
        title = title[:TITLE_MAX] + "..."
    return ShortLinkRequest(page_url=page_url, title=title, is_permanent=permanent)


def short_link(app_name: str, title: str) -> str:
    """``#小程序://<app name>/<title>/<token>``; the title segment is left out when there is none."""
    token = "".join(secrets.choice(_TOKEN_CHARS) for _ in range(15))
    middle = f"{title}/" if title else ""
    return f"#小程序://{app_name}/{middle}{token}"
