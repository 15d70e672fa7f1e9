"""Routes: one printed live code, several destinations (by share, by phone, by date).

    routes = parse_routes(["pages/a=70", "pages/b=30"], {}, zone)     # a 70/30 share (an A/B test)
    routes = parse_routes([], {"ios": "pages/x", "android": "pages/y"}, zone)
    routes = parse_routes(["pages/sale"], {"from": "2026-12-12", "until": "2026-12-13"}, zone)
    page = routes.pick(default, key=key, visitor=visitor, platform="ios", now=time.time())

Which route a scan takes, first match wins: a **date window** holding the scan's time (days in
MINPCODE_TIMEZONE, ``until`` its last day), then a **platform** rule for the phone the router page reports,
then the **share** (weights summing to 100), then the code's default destination.

A share is sticky when the router page sends its anonymous visitor id: the visitor's bucket is a hash of
the code's key and the id, mod 100, so the same visitor lands on the same page scan after scan. Without an
id each scan draws at random. Routes are stored as JSON beside the destination (storage/live.py) and
parsed once per text (:func:`routes_from_json`, cached): the resolver pays a dict lookup, not a parse.

The platform is what the router page reads from ``wx.getDeviceInfo().platform`` (or the older
``wx.getSystemInfoSync().platform``): ``ios``, ``android``, ``ohos``, ``ohos_pc``, ``windows``, ``mac``,
``devtools`` … (https://developers.weixin.qq.com/miniprogram/dev/api/base/system/wx.getDeviceInfo.html).
A rule names ``ios``, ``android``, ``ohos`` or ``other`` (any other platform reported). A scan that reports
no platform takes no platform rule: a router page that predates routes still gets the share or default.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from bot.destinations import destination_errors
from bot.errors import FieldError, InvalidRequest
from bot.models import page_path

PLATFORMS = ("ios", "android", "ohos", "other")  # what a platform rule may name
OTHER = "other"
PLATFORM_MAX = 16      # characters of a reported platform kept
_PLATFORM_RE = re.compile(r"[a-z0-9_]{1,16}")
_WEIGHT_RE = re.compile(r"^(?P<page>.+)=(?P<weight>\d{1,3})$")
WINDOW_KEYS = ("from", "until")


def reported_platform(value: str | None) -> str | None:
    """The platform a router page reported, as kept on a scan: lower case, ``other`` for anything that is not
    a short word (the value comes from the phone, so it is never trusted as free text)."""
    if not value:
        return None
    value = value.strip().lower()[:PLATFORM_MAX]
    return value if _PLATFORM_RE.fullmatch(value) else OTHER


@dataclass(frozen=True)
class Window:
    """A dated route: ``page`` from the start of ``first`` to the end of ``last`` (either may be open)."""

    page: str
    first: date | None
    last: date | None
    start: float | None = field(default=None, compare=False)   # Unix seconds, from the team's zone
    end: float | None = field(default=None, compare=False)

    def holds(self, now: float) -> bool:
        return (self.start is None or now >= self.start) and (self.end is None or now < self.end)


@dataclass(frozen=True)
class Routes:
    shares: tuple[tuple[str, int], ...] = ()       # (page, weight), weights summing to 100
    platforms: tuple[tuple[str, str], ...] = ()    # (platform, page)
    window: Window | None = None

    def __bool__(self) -> bool:
        return bool(self.shares or self.platforms or self.window)

    def pick(self, default: str, *, key: str, visitor: str | None, platform: str | None, now: float) -> str:
        """Where one scan goes: window, then platform, then share, then ``default``."""
        window = self.window
        if window is not None and window.holds(now):
            return window.page
        if platform is not None and self.platforms:
            rules = dict(self.platforms)
            page = rules.get(platform) or (rules.get(OTHER) if platform not in rules else None)
            if page is not None:
                return page
        if self.shares:
            bucket = (int.from_bytes(hashlib.blake2b(f"{key}\0{visitor}".encode("utf-8", "replace"),
                                                     digest_size=8).digest(), "big") % 100
                      if visitor else random.randrange(100))
            for page, weight in self.shares:
                if bucket < weight:
                    return page
                bucket -= weight
        return default

    def pages(self) -> list[str]:
        """Every page a route names, once each, in the order written."""
        seen = [p for p, _ in self.shares] + [p for _, p in self.platforms] + ([self.window.page] if self.window else [])
        return list(dict.fromkeys(seen))

    def to_json(self) -> str | None:
        if not self:
            return None
        data: dict[str, object] = {}
        if self.shares:
            data["share"] = [[p, w] for p, w in self.shares]
        if self.platforms:
            data["platform"] = dict(self.platforms)
        if self.window is not None:
            w = self.window
            data["window"] = {"page": w.page, "from": w.first.isoformat() if w.first else None,
                              "until": w.last.isoformat() if w.last else None}
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    def describe(self, lang: str) -> list[str]:
        """One line per kind of route, in ``lang``."""
        zh = lang == "zh"
        lines = []
        if self.window is not None:
            w = self.window
            span = f"{w.first.isoformat() if w.first else '…'} – {w.last.isoformat() if w.last else '…'}"
            lines.append(f"按日期: {span} 打开 {w.page}，之后回到其余路由" if zh
                         else f"By date: {span} opens {w.page}, then back to the other routes")
        if self.platforms:
            rules = "，".join(f"{p}→{page}" for p, page in self.platforms) if zh else ", ".join(
                f"{p} → {page}" for p, page in self.platforms)
            lines.append(("按手机: " if zh else "By phone: ") + rules)
        if self.shares:
            split = (" / " if zh else " / ").join(f"{page} {w}%" for page, w in self.shares)
            lines.append(("按比例: " if zh else "By share: ") + split)
        return lines


def bounds(first: date | None, last: date | None, zone: ZoneInfo) -> tuple[float | None, float | None]:
    """A window's days as Unix seconds: the start of ``first`` and the end of ``last`` in ``zone``."""
    start = datetime.combine(first, datetime.min.time(), zone).timestamp() if first else None
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), zone).timestamp() if last else None
    return start, end


@lru_cache(maxsize=4096)
def routes_from_json(text: str | None, zone: ZoneInfo) -> Routes:
    """Routes as stored (JSON, :meth:`Routes.to_json`); cached by text, so each is parsed once."""
    if not text:
        return Routes()
    data = json.loads(text)
    window = None
    if data.get("window"):
        w = data["window"]
        first = date.fromisoformat(w["from"]) if w.get("from") else None
        last = date.fromisoformat(w["until"]) if w.get("until") else None
        start, end = bounds(first, last, zone)
        window = Window(str(w["page"]), first, last, start, end)
    return Routes(shares=tuple((str(p), int(n)) for p, n in data.get("share") or ()),
                  platforms=tuple((str(k), str(v)) for k, v in (data.get("platform") or {}).items()),
                  window=window)


@dataclass(frozen=True)
class RouteChange:
    """What one repoint asks: a new default destination (or None: keep it) and the routes to store.

    ``keep_routes`` (a dated repoint) keeps the code's other routes and sets only the window."""

    default: str | None
    routes: Routes
    keep_routes: bool = False


def _split_weight(word: str) -> tuple[str, int | None]:
    """``pages/a=70`` → (``pages/a``, 70). A trailing ``=N`` that ends a query's value (``pages/a?id=70``) is
    the query's, not a weight: write ``pages/a?id=70=30`` to weigh that page."""
    match = _WEIGHT_RE.match(word)
    if match is None:
        return word, None
    head = match.group("page")
    # the full-width ？ and ＆ count as query marks here, so such a page is refused naming them (bot/destinations.py)
    if re.search(r"[?？]", head) and "=" not in re.split(r"[?&？＆]", head)[-1]:
        return word, None  # "…?id=70": the value of id
    return head, int(match.group("weight"))


def _page(value: str, field_name: str) -> str:
    page = page_path(value)
    errors = destination_errors(page, field_name)
    if errors:
        raise errors[0]
    return page


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise FieldError(name, f"{name} 的日期「{value}」不对，请写成 2026-12-12 这样。",
                         f"{name}={value!r} is not a date; write it like 2026-12-12.") from None


def parse_routes(words: list[str], options: dict[str, str], zone: ZoneInfo, *, today: date | None = None) -> RouteChange:
    """The routes a repoint's words ask for (``words``: pages, ``page=weight`` shares; ``options``: ``ios=``,
    ``android=``, ``ohos=``, ``other=``, ``from=``, ``until=``). Raises :class:`InvalidRequest` (bilingual)."""
    split = [_split_weight(w) for w in words]
    return build_routes([p for p, n in split if n is None], [(p, n) for p, n in split if n is not None], options,
                        zone, today=today)


def build_routes(plain: list[str], weighted: list[tuple[str, int]], options: dict[str, str], zone: ZoneInfo, *,
                 today: date | None = None) -> RouteChange:
    """:func:`parse_routes` from parts already apart (the API's fields): plain pages, weighted pages, options."""
    problems: list[FieldError] = []
    unknown = [k for k in options if k not in PLATFORMS and k not in WINDOW_KEYS]
    if unknown:
        problems.append(FieldError("platform", f"不认识的手机平台：{', '.join(unknown)}。可用：{', '.join(PLATFORMS)}。",
                                   f"Unknown platform: {', '.join(unknown)}. Use one of: {', '.join(PLATFORMS)}."))
    try:
        if "from" in options or "until" in options:
            first = _day(options["from"], "from") if "from" in options else None
            last = _day(options["until"], "until") if "until" in options else None
            if first and last and last < first:
                raise FieldError("until", f"until（{last}）早于 from（{first}）。",
                                 f"until ({last}) is before from ({first}).")
            if last is not None and last < (today or datetime.now(zone).date()):
                raise FieldError("until", f"until（{last}）已经过去了。", f"until ({last}) has already passed.")
            if len(plain) != 1 or weighted or any(k in PLATFORMS for k in options):
                raise FieldError("page", "按日期改指向只写一个页面：repoint <id> pages/sale from=2026-12-12 until=2026-12-13。",
                                 "A dated repoint names one page: repoint <id> pages/sale from=2026-12-12 "
                                 "until=2026-12-13.")
            start, end = bounds(first, last, zone)
            window = Window(_page(plain[0], "page"), first, last, start, end)
            if problems:
                raise InvalidRequest(problems)
            return RouteChange(None, Routes(window=window), keep_routes=True)
        if weighted and plain:
            raise FieldError("page", "按比例分流时每个页面都要写比例，例如 pages/a=70 pages/b=30。",
                             "In a share every page needs its weight, e.g. pages/a=70 pages/b=30.")
        if len(plain) > 1:
            raise FieldError("page", "只能写一个默认页面；要分流请写比例，例如 pages/a=70 pages/b=30。",
                             "Give one default page; to split scans give weights, e.g. pages/a=70 pages/b=30.")
        shares = tuple((_page(p, "page"), n) for p, n in weighted)
        if shares:
            total = sum(n for _, n in shares)
            if total != 100 or any(n == 0 for _, n in shares) or len(shares) < 2:
                raise FieldError("weight", f"比例之和须为 100（每个大于 0，至少两个页面），现在是 {total}。",
                                 f"The weights must add up to 100 (each above 0, two pages at least); they add up "
                                 f"to {total}.")
            if len({p for p, _ in shares}) != len(shares):
                raise FieldError("page", "同一个页面写了两次。", "A page is given twice.")
        platforms = tuple((k, _page(v, k)) for k, v in options.items() if k in PLATFORMS)
    except FieldError as exc:
        problems.append(exc)
        raise InvalidRequest(problems) from None
    if problems:
        raise InvalidRequest(problems)
    default = _page(plain[0], "page") if plain else (max(shares, key=lambda s: s[1])[0] if shares else None)
    if default is None and not platforms:
        raise InvalidRequest([FieldError("page", "请给出新的目标页面。", "Give the new destination page.")])
    return RouteChange(default, Routes(shares=shares, platforms=platforms))


__all__ = ["OTHER", "PLATFORMS", "RouteChange", "Routes", "Window", "bounds", "build_routes", "parse_routes", "reported_platform",
           "routes_from_json"]
