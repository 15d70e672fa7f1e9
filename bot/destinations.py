"""The rule for a live code's destination (bot/live/rules.py): a page path, its query allowed, 1024 characters."""

from __future__ import annotations

import re

from bot.errors import FieldError

DESTINATION_MAX = 1024  # page with its query: a GrowingIO tracking URL (pages/x?aid=…) fits
_BAD_TEXT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
RESERVED_QUERY_KEY = "scancode_time"  # WeChat refuses it in a code's path (bot/models.py)


def destination_errors(value: str | None, field: str = "page") -> list[FieldError]:
    """A live code's destination: a page path, its query allowed, up to 1024 characters."""
    page = (value or "").strip()
    if not page or page.startswith("?"):
        return [FieldError(field, "请填写活码要打开的页面，例如 pages/coupon/get?id=1。",
                           "Please give the page the live code opens, e.g. pages/coupon/get?id=1.")]
    if len(page) > DESTINATION_MAX:
        return [FieldError(field, f"活码的目标页面最多 {DESTINATION_MAX} 个字符（含参数），现在是 {len(page)} 个。",
                           f"A live code's destination may have at most {DESTINATION_MAX} characters (query "
                           f"included); it has {len(page)}.")]
    if any(ch.isspace() for ch in page) or _BAD_TEXT.search(page):
        return [FieldError(field, "目标页面不能包含空格或控制字符。",
                           "The destination cannot contain spaces or control characters.")]
    if RESERVED_QUERY_KEY in page:
        return [FieldError(field, "目标页面里不能有保留参数 scancode_time。",
                           "The destination cannot contain the reserved key scancode_time.")]
    return []


__all__ = ["DESTINATION_MAX", "destination_errors"]
