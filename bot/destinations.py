"""The rules for a page people type: a live code's destination (bot/live/rules.py: a page path, its query
allowed, 1024 characters), and the full-width punctuation no page may hold (every code's page, bot/models.py)."""

from __future__ import annotations

import re

from bot.errors import FieldError

DESTINATION_MAX = 1024  # page with its query: a GrowingIO tracking URL (pages/x?aid=…) fits
_BAD_TEXT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
RESERVED_QUERY_KEY = "scancode_time"  # WeChat refuses it in a code's path (bot/models.py)

# Our rule (no WeChat page names one): a Chinese keyboard types these where a path needs ASCII. WeChat takes
# "pages/goods/detail？id=1" as a page of that name, which does not exist, so a page holding one is refused,
# naming it and its half-width form, before anything is spent. The chats' grammar (handlers/grammar.py)
# also reads an unquoted "，" between words as a separator, as a Chinese writer means it.
FULL_WIDTH = {"？": "?", "＆": "&", "／": "/", "＝": "=", "：": ":", "，": ","}


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
    full_width = full_width_errors(page, field)
    if full_width:
        return full_width
    if RESERVED_QUERY_KEY in page:
        return [FieldError(field, "目标页面里不能有保留参数 scancode_time。",
                           "The destination cannot contain the reserved key scancode_time.")]
    return []


def full_width_errors(page: str, field: str = "page") -> list[FieldError]:
    """A page holding full-width ``？ ＆ ／ ＝ ： ，``: refused, naming each and its half-width form."""
    found = list(dict.fromkeys(ch for ch in page if ch in FULL_WIDTH))
    if not found:
        return []
    swaps = [ch for ch in found if ch != "，"]
    fixed = "".join(FULL_WIDTH.get(ch, ch) for ch in page) if "，" not in found else None
    zh = f"页面路径里有全角符号{''.join(f'「{ch}」' for ch in found)}，微信不会把它们当作分隔符。"
    en = f"The page path holds the full-width {' '.join(found)}, which WeChat does not read as separators."
    if swaps:
        halves = " ".join(FULL_WIDTH[ch] for ch in swaps)
        zh += f"请改用半角 {halves}" + (f"，即 {fixed}" if fixed else "") + "。"
        en += f" Use the half-width {halves}" + (f": {fixed}" if fixed else "") + "."
    if "，" in found:
        zh += "选项之间请用空格分开，路径里的参数用半角 & 连接。"
        en += " Separate options with spaces; join a path's parameters with a half-width &."
    return [FieldError(field, zh, en)]


__all__ = ["DESTINATION_MAX", "FULL_WIDTH", "destination_errors", "full_width_errors"]
