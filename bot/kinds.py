"""The kinds of code a person can choose (type + how it is made), one table for every front-end.

A kind's ``id`` is what forms put in their option values (WeCom cards, Slack selects). Older
spellings (``gio:A``, ``wechat:B``) are still accepted by :func:`kind_of`, because a form opened before
an upgrade may be submitted after it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.text import Text


@dataclass(frozen=True, slots=True)
class Kind:
    id: str
    type: str           # CodeType value: A, B, C, shortlink, urllink, scheme
    via: str | None     # "gio", "wechat", or None when only WeChat can make it
    label: Text
    live: bool = False  # a live code (bot/live/rules.py): the page is its destination, the scene our key

    @property
    def gio(self) -> bool:
        return self.via == "gio"


KINDS: dict[str, Kind] = {k.id: k for k in (
    Kind("gio-A", "A", "gio", Text(zh="GrowingIO 监测链接 · A 码", en="tracking link · A code")),
    Kind("gio-C", "C", "gio", Text(zh="GrowingIO 监测链接 · C 码", en="tracking link · C code")),
    Kind("wx-B", "B", None, Text(zh="小程序码 B（scene，不限量）", en="code B (scene, unlimited)")),
    Kind("wx-A", "A", "wechat", Text(zh="微信小程序码 A", en="WeChat code A")),
    Kind("wx-C", "C", "wechat", Text(zh="微信二维码 C", en="WeChat QR code C")),
    Kind("wx-shortlink", "shortlink", None, Text(zh="小程序短链（微信内打开）", en="Short Link (opens inside WeChat)")),
    Kind("wx-urllink", "urllink", None, Text(zh="URL Link（短信、邮件、网页打开）", en="URL Link (SMS, email, web pages)")),
    Kind("wx-scheme", "scheme", None, Text(zh="URL Scheme（短信、网页打开）", en="URL Scheme (SMS, web pages)")),
    Kind("wx-live", "B", None, Text(zh="活码（B 码，可改指向、统计扫码）", en="live code (B; re-point later, scans counted)"),
         live=True),
)}
_LEGACY = {"gio:A": "gio-A", "gio:C": "gio-C", "wechat:A": "wx-A", "wechat:B": "wx-B", "wechat:C": "wx-C",
           "wechat:shortlink": "wx-shortlink"}


def kind_of(value: str) -> Kind | None:
    """The kind an option value names (current or older spelling), or None."""
    return KINDS.get(_LEGACY.get(value, value))


def offered(gio: bool, *, live: bool = False) -> list[Kind]:
    """The kinds a form offers: GrowingIO tracking links first when GrowingIO is configured; live codes
    only for forms that ask for their destination (Slack's; WeCom's card flow asks for a scene)."""
    return [k for k in KINDS.values() if (gio or not k.gio) and (live or not k.live)]


def default_kind(gio: bool) -> Kind:
    return KINDS["gio-A"] if gio else KINDS["wx-A"]


__all__ = ["KINDS", "Kind", "default_kind", "kind_of", "offered"]
