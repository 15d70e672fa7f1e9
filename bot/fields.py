"""The request fields a person can name, with their Chinese aliases: one table for text commands and sheets.

A leaf module: ``handlers/grammar.py`` (``key=value`` commands) and ``bot/batch/sheets.py`` (sheet
headers and cells) both read it, so a field is spelled, and means, the same everywhere. It lives in the
core rather than beside the grammar because the core's sheet reader needs it and ``bot/`` may not
import ``handlers/`` (docs/architecture.md, the first wall); the grammar owns the commands, this module
the words both of them share.
"""

from __future__ import annotations

ALIASES: dict[str, tuple[str, ...]] = {
    "page": ("页面",),
    "type": ("类型",),
    "via": (),
    "scene": ("场景",),
    "name": ("名称",),
    "campaign": ("活动", "utm_campaign"),
    "channel": ("渠道", "utm_source"),
    "medium": ("媒介", "utm_medium"),
    "content": ("内容", "utm_content"),
    "term": ("关键词", "utm_term"),
    "comments": ("备注",),
    "create": ("创建",),
    "width": ("宽度",),
    "title": ("标题",),
    "permanent": ("永久",),
    "transparent": ("透明",),
    "live": ("活码",),
    "expires": ("到期",),
    "env": ("版本",),
    "check": ("检查",),
    "long": ("长参数",),
    "poster": ("海报",),
    "subtitle": ("副标题",),
    "footer": ("底部文字", "页脚"),
    "format": ("格式",),
    "sharp": ("清晰",),
}
"""Field key -> its aliases in text commands (``页面=…``), in help order."""

# Column titles people write in sheets (GrowingIO's console calls them 推广活动/推广渠道) that would be
# too long or ambiguous as command keys; accepted only as headers.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "campaign": ("推广活动",),
    "channel": ("推广渠道",),
    "via": ("方式",),
    "name": ("名字",),
    "comments": ("说明",),
}


# A sheet carries every field a ``new`` command does, the poster's too (``poster`` names the template;
# with it, ``title`` is the poster's title, as in the command).
POSTER_TEXTS = ("subtitle", "footer", "format")
POSTER_FIELDS = ("poster", *POSTER_TEXTS, "sharp")
SHEET_FIELDS = tuple(ALIASES)


def header_names() -> dict[str, str]:
    """Every accepted header spelling (casefolded) -> its field key."""
    names: dict[str, str] = {}
    for key in SHEET_FIELDS:
        aliases = ALIASES[key]
        for name in (key, *aliases, *HEADER_ALIASES.get(key, ())):
            names[name.casefold()] = key
    return names


# The words that take yes or no, in the order help lists them. ``long`` and ``sharp`` are not request fields:
# ``long`` is the service's switch to keep a long scene behind a key, ``sharp`` the poster's consent to a
# sharper A/C copy.
FLAGS = ("create", "transparent", "permanent", "live", "check", "long", "sharp")

# Words whose CodeRequest field (or service switch) has another name; every other word is its field's name.
REQUEST_NAMES = {"create": "create_missing", "check": "check_path", "env": "env_version", "long": "long_scene"}


def request_name(key: str) -> str:
    """The CodeRequest input name of the word ``key`` (``create`` -> ``create_missing``)."""
    return REQUEST_NAMES.get(key, key)


__all__ = ["ALIASES", "FLAGS", "HEADER_ALIASES", "POSTER_FIELDS", "POSTER_TEXTS", "REQUEST_NAMES", "SHEET_FIELDS", "header_names",
           "request_name"]
