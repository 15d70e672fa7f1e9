"""The request fields a person can name, with their Chinese aliases: one table for text commands and sheets.

A leaf module: ``handlers/grammar.py`` (``key=value`` commands) and ``bot/batch/sheets.py`` (sheet
headers and cells) both read it, so a field is spelled, and means, the same everywhere. It lives in the
core rather than beside the grammar because the core's sheet reader needs it and ``bot/`` may not
import ``handlers/`` (docs/architecture.md, the first wall); the grammar owns the commands, this module
the words both of them share.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from bot.errors import FieldError

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
    "expire_days": ("有效天数",),
    "plain": ("明文",),
    "transparent": ("透明",),
    "live": ("活码",),
    "expires": ("到期",),
    "tag": ("标签",),
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
    "tag": ("tags",),
}


# A sheet carries every field a ``new`` command does, the poster's too (``poster`` names the template;
# with it, ``title`` is the poster's title, as in the command).
POSTER_TEXTS = ("subtitle", "footer", "format")
POSTER_FIELDS = ("poster", *POSTER_TEXTS, "sharp")
SHEET_FIELDS = tuple(ALIASES)


def field_key(name: str, names: Mapping[str, str]) -> str | None:
    """The field ``name`` (casefolded) names in ``names``; a hyphen stands for an underscore (``expire-days``)."""
    return names.get(name) or names.get(name.replace("-", "_"))


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
FLAGS = ("create", "transparent", "permanent", "plain", "live", "check", "long", "sharp")

# Words whose CodeRequest field (or service switch) has another name; every other word is its field's name.
REQUEST_NAMES = {"tag": "tags", "create": "create_missing", "check": "check_path", "env": "env_version", "long": "long_scene"}


def request_name(key: str) -> str:
    """The CodeRequest input name of the word ``key`` (``create`` -> ``create_missing``)."""
    return REQUEST_NAMES.get(key, key)


def loose_poster_words(named: Mapping[str, Any]) -> list[str]:
    """The poster's words given without a ``poster`` template, refused rather than silently dropped: the
    one rule of a text command (handlers/grammar.py) and a sheet row (bot/batch/posters.py). ``sharp`` counts
    whatever its value: ``sharp=no`` is as much a poster's word as ``sharp=yes``."""
    if named.get("poster") is not None:
        return []
    return [k for k in (*POSTER_TEXTS, "sharp") if k in named]


class PosterAsk(BaseModel):
    """The poster asked for with a new code: PosterRequest input, and the answer about a sharper A/C copy
    (``sharp``: True makes one, False prints the current image, None has not said)."""

    data: dict[str, Any]
    sharper: bool | None = None


class CodeAsk(BaseModel):
    """One new code as a person asked for it, read once from a text command, a form or a sheet row.

    ``long_scene`` and the poster are not CodeRequest fields: they are the service's switches
    (``Service.prepare(..., long_scene=...)``, ``service.posters.for_new``), so they ride beside the
    fields rather than inside them.
    """

    fields: dict[str, Any]  # CodeRequest input; the models check every rule later
    long_scene: bool = False  # a B scene that does not fit is kept behind a key (bot/scenes.py)
    poster: PosterAsk | None = None

    @classmethod
    def read(cls, named: Mapping[str, Any]) -> CodeAsk:
        """From input keyed by request names (:func:`request_name`), as a sheet row stores its cells: the
        switch ``long_scene`` and the poster's words (``poster``, its texts, ``sharp``, and ``title`` when a
        poster is asked: then it is the poster's title) are taken out of the fields."""
        loose = loose_poster_words(named)
        if loose:  # callers say it in their own words first (a command's usage, a sheet's column)
            raise FieldError("poster", f"{', '.join(loose)} 是海报的参数，请同时给出海报模板（poster）。",
                             f"{', '.join(loose)} belong to a poster; name its template (poster) too.")
        rest = dict(named)
        long_scene = bool(rest.pop("long_scene", False))
        template = rest.pop("poster", None)
        texts = {k: rest.pop(k) for k in POSTER_TEXTS if k in rest}
        sharp = rest.pop("sharp", None)
        sharper = None if sharp is None else bool(sharp)
        if template is None:
            return cls(fields=rest, long_scene=long_scene)
        data: dict[str, Any] = {"template": template, **texts}
        if "title" in rest:
            data["title"] = rest.pop("title")
        return cls(fields=rest, long_scene=long_scene, poster=PosterAsk(data=data, sharper=sharper))


__all__ = ["ALIASES", "CodeAsk", "field_key", "PosterAsk", "loose_poster_words", "FLAGS", "HEADER_ALIASES", "POSTER_FIELDS", "POSTER_TEXTS", "REQUEST_NAMES", "SHEET_FIELDS", "header_names",
           "request_name"]
