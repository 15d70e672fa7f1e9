"""The request and result models every front-end and the core share, with every field rule.

Rules come from WeChat's code, Short Link, URL Link and URL Scheme references and GrowingIO's tracking-link API; each
constant below names its page ("our assumption" where none says it). They are
checked here, before any upstream call, and every violation is a :class:`FieldError` naming the
field and saying, in Chinese and English, what to change. :meth:`CodeRequest.parse` gathers them
all into one :class:`InvalidRequest` so a form can show each error beside its field.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.destinations import destination_errors, full_width_errors
from bot.errors import FieldError, InvalidRequest
from bot.text import Text
from bot.wording import field_errors, suggest_name


class CodeType(StrEnum):
    A = "A"  # getwxacode: round code, path with query, shares the 100k A+C cap
    B = "B"  # getwxacodeunlimit: page + scene, unlimited
    C = "C"  # createwxaqrcode: square QR, shares the 100k A+C cap
    SHORTLINK = "shortlink"  # genwxashortlink: a "#小程序://" link for inside WeChat, no image
    URLLINK = "urllink"  # generate_urllink: an https://wxaurl.cn/… link for SMS, email, web pages; no image
    SCHEME = "scheme"  # generatescheme (or the plain-text form): a weixin://dl/business/ link; no image

    @property
    def counts_against_cap(self) -> bool:
        return self in (CodeType.A, CodeType.C)

    @property
    def is_link(self) -> bool:
        """A link, not an image: nothing to print, download or put on a poster."""
        return self in (CodeType.SHORTLINK, CodeType.URLLINK, CodeType.SCHEME)

    @property
    def opens_outside(self) -> bool:
        """URL Link and URL Scheme: the links WeChat makes for opening the mini program from outside WeChat."""
        return self in (CodeType.URLLINK, CodeType.SCHEME)


# How people may spell a type (casefolded), besides A/B/C in either case.
TYPE_NAMES = {"shortlink": "shortlink", "short": "shortlink", "短链": "shortlink", "短链接": "shortlink",
              "urllink": "urllink", "url_link": "urllink", "url-link": "urllink",
              "scheme": "scheme", "urlscheme": "scheme", "url_scheme": "scheme", "url-scheme": "scheme"}
# The words a type is called in people's sentences (refusals that name it).
TYPE_WORDS = {CodeType.A: ("A 码", "an A code"), CodeType.B: ("B 码", "a B code"), CodeType.C: ("C 码", "a C code"),
              CodeType.SHORTLINK: ("短链", "a Short Link"), CodeType.URLLINK: ("URL Link", "a URL Link"),
              CodeType.SCHEME: ("URL Scheme", "a URL Scheme")}


class Provider(StrEnum):
    GIO = "gio"
    WECHAT = "wechat"


class Status(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    DELETED = "deleted"


# GrowingIO: "仅支持中英文数字-/_" and at most 50 characters (https://growingio.gitbook.io/old_docs/api/ads-tracking-api).
GIO_NAME_MAX = 50
GIO_NAME_RE = re.compile(r"^[\u4e00-\u9fa5A-Za-z0-9/_-]+\Z")  # \Z: "$" would let a trailing newline in
# WeChat B scene: 1-32 visible characters from this set (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/qrcode-link/qr-code/getUnlimitedQRCode.html).
SCENE_MAX = 32
SCENE_RE = re.compile(r"^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]+\Z")
# createwxaqrcode (C) takes a path of at most 128 bytes; getwxacode (A) up to 1024 (the current
# wxacode.get reference; older texts said 128). GrowingIO links keep 128 (our assumption: its minplinks page names no limit) and GrowingIO
# appends its id to the path: "?aid=<8>" in the create example, "?gio_link_id=<8>" in the list
# example, so the longer one is budgeted and a path we accept is never refused after the fact.
PATH_MAX_BYTES = 128
A_PATH_MAX_BYTES = 1024
GIO_LINK_SUFFIX = "?gio_link_id="
GIO_AID_SUFFIX_BYTES = len(GIO_LINK_SUFFIX) + 8
WIDTH_MIN, WIDTH_MAX = 280, 1280
SHORTLINK_URL_MAX = 1024
SHORTLINK_TITLE_MAX = 20
# A temporary Short Link lasts 30 days; at most 100,000 permanent ones per mini program, ever ("短期有效
# ShortLink 有效时间为 30天", "永久有效 ShortLink 上限为 10万个",
# https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/shortlink.html).
SHORTLINK_DAYS = 30
SHORTLINK_PERMANENT_CAP = 100_000
# URL Link and URL Scheme: "最长有效期为30天" / "最长间隔天数为30天"; query "最大1024个字符，只支持数字，大小写英文
# 以及部分特殊字符：!#$&'()*+,/:;=?@-._~%"; path "不可携带 query"
# (https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/url-link/api_generateurllink.html,
# https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/url-scheme/api_generatescheme). The
# plain-text scheme takes a query of at most 512 characters from the same set and a required path
# (https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/url-scheme.html).
LINK_DAYS_MAX = 30
LINK_QUERY_MAX = 1024
PLAIN_QUERY_MAX = 512
LINK_QUERY_RE = re.compile(r"^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~%]*\Z")
# Generating: "每天生成 URL Scheme（加密+明文）和 URL Link 的总数量上限为50万"
# (https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/url-link.html).
LINKS_PER_DAY = 500_000
FREE_TEXT_MAX = 255
_BAD_TEXT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
RESERVED_QUERY_KEY = "scancode_time"
# Tags (any code): short words a team groups codes by. The limits are ours (no platform sees a tag): enough
# for a store's name or a season, few enough that a list's column stays readable.
TAG_MAX = 20
TAGS_MAX = 10
_TAG_SPLIT = re.compile(r"[,，、;；]")


# How each front-end asks for parameters that do not fit a scene to be stored behind a key (bot/scenes.py).
LONG_SCENE_HINT = Text(
    zh="参数放不进 scene 时，可以让 minpcode 保存参数、码里只带一个 k= 短编号："
       "聊天里加 long=yes，命令行加 --long-scene，HTTP API 加 \"long_scene\": \"key\"。",
    en="To store parameters that do not fit and have the code carry a short k= key instead, add long=yes "
       "in the chat, --long-scene on the command line, or \"long_scene\": \"key\" in the HTTP API.",
)


def path_limit(kind: CodeType, via: Provider | None) -> int:
    """The most UTF-8 bytes an A/C path may have: 1024 for a WeChat A code, else 128 (less room for
    GrowingIO's suffix when GrowingIO makes it)."""
    if via is Provider.GIO:
        return PATH_MAX_BYTES - GIO_AID_SUFFIX_BYTES
    return A_PATH_MAX_BYTES if kind is CodeType.A else PATH_MAX_BYTES


def page_path(value: str) -> str:
    """A page as every request keeps it: without the leading ``/`` people type by habit. WeChat's
    getUnlimitedQRCode (B) says its ``page`` must not start with ``/`` ("根路径前不要填加 /",
    https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/qrcode-link/qr-code/getUnlimitedQRCode.html);
    getQRCode's (A) ``path`` sets no such rule
    (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/qrcode-link/qr-code/getQRCode.html), and
    both name the same page either way. One form for every front-end makes ``/pages/x`` and ``pages/x``
    the identical request: the same reuse key, the same code."""
    return value.strip().removeprefix("/")


def split_tags(value: object) -> list[str]:
    """Tags as every front-end keeps them: split on commas (half- and full-width, 、 and ;), trimmed, ASCII
    letters in lower case (``VIP`` and ``vip`` are one tag; Chinese is left as written), no repeats."""
    items = value if isinstance(value, list | tuple) else [value] if isinstance(value, str) else []
    found: list[str] = []
    for item in items:
        for part in _TAG_SPLIT.split(str(item)):
            tag = "".join(ch.lower() if ch.isascii() else ch for ch in part.strip())
            if tag and tag not in found:
                found.append(tag)
    return found


def tag_errors(tags: list[str], field: str = "tags") -> list[FieldError]:
    """Every problem of a code's tags, in both languages."""
    errors = []
    if len(tags) > TAGS_MAX:
        errors.append(FieldError(field, f"一个码最多 {TAGS_MAX} 个标签，现在是 {len(tags)} 个。",
                                 f"A code may carry at most {TAGS_MAX} tags; there are {len(tags)}."))
    for tag in tags:
        if len(tag) > TAG_MAX:
            errors.append(FieldError(field, f"标签「{tag}」太长：最多 {TAG_MAX} 个字符。",
                                     f"The tag '{tag}' is too long: at most {TAG_MAX} characters."))
        elif any(ch.isspace() for ch in tag) or "=" in tag or _BAD_TEXT.search(tag):
            errors.append(FieldError(field, f"标签「{tag}」不能包含空格、= 或控制字符。",
                                     f"The tag '{tag}' cannot contain spaces, = or control characters."))
    return errors


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def name_errors(field: str, value: str | None, *, required: bool, label_zh: str, label_en: str) -> list[FieldError]:
    """GrowingIO's rule for campaign, channel and link names."""
    if not value:
        if required:
            return [FieldError(field, f"请填写{label_zh}。", f"Please give the {label_en}.")]
        return []
    if len(value) > GIO_NAME_MAX:
        return [FieldError(
            field,
            f"{label_zh}最多 {GIO_NAME_MAX} 个字符，现在是 {len(value)} 个，请缩短。",
            f"The {label_en} may have at most {GIO_NAME_MAX} characters; it has {len(value)}. Shorten it.",
        )]
    if not GIO_NAME_RE.match(value):
        bad = "".join(dict.fromkeys(ch for ch in value if not GIO_NAME_RE.match(ch)))
        fixed = suggest_name(value, GIO_NAME_RE)
        return [FieldError(
            field,
            f"{label_zh}只能包含中文、英文字母、数字和 - / _，请去掉：{bad!r}（空格也不行）"
            + (f"，例如改成 {fixed}。" if fixed else "。"),
            f"The {label_en} may contain only Chinese, English letters, digits and - / _; "
            f"remove {bad!r} (spaces are not allowed either)" + (f"; for instance {fixed}." if fixed else "."),
        )]
    return []


def check_name(value: str, field: str = "name", label_zh: str = "名称", label_en: str = "name") -> str:
    """Raise the first name rule ``value`` breaks; return it unchanged otherwise."""
    errors = name_errors(field, value, required=True, label_zh=label_zh, label_en=label_en)
    if errors:
        raise errors[0]
    return value


def truncate_title(title: str) -> str:
    """WeChat cuts a Short Link title past 20 characters with '...'; show people what they will get."""
    return title if len(title) <= SHORTLINK_TITLE_MAX else title[:SHORTLINK_TITLE_MAX] + "..."


class LineColor(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    r: int = Field(0, ge=0, le=255)
    g: int = Field(0, ge=0, le=255)
    b: int = Field(0, ge=0, le=255)


FRONT_ENDS = ("slack", "wecom", "cli", "api", "mcp")
"""Where a person can ask from; a person is (front-end, id): the WeCom user ``cms`` is not the API key ``cms``.
The console chat is the CLI's: both are the terminal's login (``cli:<user>``)."""
_SAME_PERSON = {"console": "cli"}


class Requester(BaseModel):
    """Who asked, from where. Chat ids are opaque strings: the core knows no chat platform.

    ``user_id`` is the front-end's own id (what it needs to answer: a Slack user, a WeCom member);
    :attr:`key` (``slack:U0ADMIN``) is the person everywhere else — owner of codes, admin rights,
    history, the audit log.
    """

    model_config = ConfigDict(frozen=True)
    chat: str = "cli"  # slack | wecom | console | cli | api | mcp
    user_id: str = "local"
    user_name: str | None = None
    channel_id: str | None = None
    lang: Literal["zh", "en"] = "zh"

    @property
    def key(self) -> str:
        return requester_key(self.chat, self.user_id)

    @property
    def label(self) -> str:
        return self.user_name or self.user_id


def requester_key(front_end: str, user_id: str) -> str:
    """One person's id across front-ends: ``front-end:id``."""
    return f"{_SAME_PERSON.get(front_end, front_end)}:{user_id}"


class CodeRequest(BaseModel):
    """One code to make. ``page`` is the A/C path (query allowed), the B page, or the Short Link URL.

    ``via`` is None until the service decides the provider from the settings; GrowingIO-only rules
    (name, campaign, channel required; room for ``?aid=``) apply once it is ``gio``.
    """

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    type: CodeType = CodeType.A
    via: Provider | None = None
    app: str | None = None
    page: str = ""
    scene: str | None = None
    name: str | None = None
    campaign: str | None = None
    channel: str | None = None
    create_missing: bool = False
    medium: str | None = None
    content: str | None = None
    term: str | None = None
    comments: str | None = None
    width: int = 430
    auto_color: bool = False
    line_color: LineColor | None = None
    transparent: bool = False
    env_version: Literal["release", "trial", "develop"] = "release"
    check_path: bool = True
    title: str | None = None
    permanent: bool = False
    # URL Link and URL Scheme: days until the link expires (default and most: 30); ``plain`` asks for the
    # plain-text scheme, which needs no API call and never expires (declared by the admin beforehand).
    expire_days: int | None = None
    plain: bool = False
    # A live code (bot/live/rules.py): a B code for the router page whose scene is a key; ``destination`` is
    # where the key leads when the code is made (the page the person asked for), ``expires`` its last day.
    live: bool = False
    destination: str | None = None
    expires: date | None = None
    # Tags are kept beside the code (storage/tags.py), never part of what is made: not in the reuse key.
    tags: list[str] = []

    @classmethod
    def parse(cls, data: dict[str, Any]) -> CodeRequest:
        """Build from loose input (a form, a text command); every problem becomes one InvalidRequest."""
        cleaned = {k: (None if isinstance(v, str) and not v.strip() and k != "page" else v) for k, v in data.items()}
        try:
            return cls.model_validate(cleaned)
        except ValidationError as exc:
            raise _as_invalid_request(exc) from None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if isinstance(data.get("type"), str):
                raw = data["type"].strip()
                data["type"] = TYPE_NAMES.get(raw.casefold(), raw.upper())
            if isinstance(data.get("via"), str):
                data["via"] = data["via"].strip().lower()
            if data.get("live") is True and not data.get("type"):
                data["type"] = "B"  # a live code is a B code: no A/C quota, ever
            if "tags" in data:
                data["tags"] = split_tags(data["tags"])
            for field in ("page", "destination"):
                if isinstance(data.get(field), str):
                    data[field] = page_path(data[field])
            if isinstance(data.get("title"), str) and data["title"].strip():
                data["title"] = truncate_title(data["title"].strip())
        return data

    @model_validator(mode="after")
    def _rules(self) -> CodeRequest:
        errors = self.rule_errors()
        if errors:
            raise InvalidRequest(errors)
        return self

    @property
    def provider(self) -> Provider:
        """B codes and links always come from WeChat; A/C follow ``via`` (WeChat if unset)."""
        if not self.type.counts_against_cap:
            return Provider.WECHAT
        return self.via or Provider.WECHAT

    @property
    def link_days(self) -> int | None:
        """How many days the URL Link or (encrypted) URL Scheme lasts; None for everything else."""
        if not self.type.opens_outside or self.plain:
            return None
        return self.expire_days or LINK_DAYS_MAX

    @property
    def path_and_query(self) -> tuple[str, str]:
        """The page split as URL Link and URL Scheme take it: a path without query, and the query."""
        path, _, query = self.page.partition("?")
        return path, query

    def rule_errors(self) -> list[FieldError]:
        errors: list[FieldError] = self._text_errors()
        if errors:
            return errors
        errors += self._page_errors()
        errors += self._scene_errors()
        if not WIDTH_MIN <= self.width <= WIDTH_MAX:
            errors.append(FieldError(
                "width",
                f"宽度须在 {WIDTH_MIN} 到 {WIDTH_MAX} 像素之间，现在是 {self.width}。",
                f"Width must be between {WIDTH_MIN} and {WIDTH_MAX} pixels; it is {self.width}.",
            ))
        gio = self.type.counts_against_cap and self.via is Provider.GIO
        errors += name_errors("name", self.name, required=False, label_zh="名称", label_en="name")
        if gio:
            for field, zh, en in (("campaign", "推广活动", "campaign"), ("channel", "推广渠道", "channel")):
                value = getattr(self, field)
                if self.create_missing:
                    errors += name_errors(field, value, required=True, label_zh=zh, label_en=en)
                elif not value:
                    errors.append(FieldError(
                        field, f"GrowingIO 监测链接需要{zh}，请选择或填写（不要监测？加 via=wechat 生成普通码）。",
                        f"A GrowingIO tracking link needs a {en}; choose or type one (no tracking wanted? add "
                        "via=wechat for a plain code).",
                    ))
        elif not self.type.counts_against_cap:
            # Refused rather than kept as labels: a person who names them expects tracking, which B has not.
            word_zh, word_en = TYPE_WORDS[self.type]
            for field in ("campaign", "channel"):
                if getattr(self, field):
                    errors.append(FieldError(
                        field, f"{word_zh}不是监测链接：推广活动和渠道只用于"
                        "经 GrowingIO 生成的 A/C 码。请去掉 campaign/channel，或改用 type=A。",
                        f"{word_en[0].upper() + word_en[1:]} is no tracking link: campaign and "
                        "channel apply only to A/C codes made through GrowingIO. Leave them out, or use type=A."))
        for field in ("medium", "content", "term", "comments"):
            value = getattr(self, field)
            if value and len(value) > FREE_TEXT_MAX:
                errors.append(FieldError(
                    field, f"{field} 最多 {FREE_TEXT_MAX} 个字符。", f"{field} may have at most {FREE_TEXT_MAX} characters.",
                ))
        errors += self._live_errors()
        errors += tag_errors(self.tags)
        errors += self._version_errors()
        errors += self._link_errors()
        if self.scene is not None and self.type is not CodeType.B:
            errors.append(FieldError(
                "scene", "只有 B 码使用 scene 参数；A/C 码请把参数写进路径的 ?query。",
                "Only B codes take a scene; for A/C codes put parameters in the path's ?query.",
            ))
        return errors

    def _live_errors(self) -> list[FieldError]:
        if not self.live:
            if self.expires is not None:
                return [FieldError("expires", "只有活码可以设置到期日（加上 live=yes）。",
                                   "Only a live code takes an expiry date (add live=yes).")]
            return []
        if self.type is not CodeType.B:
            return [FieldError("type", "活码总是 B 码（不占 A/C 额度），请去掉 type 或写 type=B。",
                               "A live code is always a B code (no A/C quota); leave out type or write type=B.")]
        # No destination: a blank code (空码), printed now and bound later with repoint; it opens the fallback page.
        return destination_errors(self.destination) if self.destination else []

    @property
    def blank(self) -> bool:
        """A live code made without a destination (空码): it leads to the fallback page until re-pointed."""
        return self.live and not self.destination
    def _version_errors(self) -> list[FieldError]:
        """``env_version`` is an A/B (and URL Link/Scheme) parameter of WeChat's, ``check_path`` a B one: elsewhere
        they would be dropped silently, so asking for them there is an error. ``check_path=false`` holds for at most
        60,000 pages ("page 有数量上限（60000个）请勿滥用",
        https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/qrcode-link/qr-code/getUnlimitedQRCode.html)."""
        errors = []
        if not self.check_path and self.type is not CodeType.B:
            errors.append(FieldError("check_path", "check=no 只适用于 B 码（A/C 码和链接不能跳过页面检查）。",
                                     "check=no applies to B codes only (A/C codes and links cannot skip the page check)."))
        versioned = (CodeType.A, CodeType.B, CodeType.URLLINK, CodeType.SCHEME)
        if self.env_version != "release" and (self.type not in versioned or self.provider is Provider.GIO):
            errors.append(FieldError("env_version", "env=trial/develop 只适用于微信直接生成的 A 码、B 码、URL Link 和 URL Scheme。",
                                     "env=trial/develop applies only to A and B codes made by WeChat directly, URL "
                                     "Links and URL Schemes."))
        return errors

    def _link_errors(self) -> list[FieldError]:
        """URL Link and URL Scheme: their days, the plain-text form, and what they do not take."""
        errors = []
        if self.plain and self.type is not CodeType.SCHEME:
            errors.append(FieldError("plain", "plain=yes（明文）只适用于 type=scheme。",
                                     "plain=yes (plain text) applies to type=scheme only."))
        if self.expire_days is not None:
            if not self.type.opens_outside:
                more = ("短链的有效期是固定的：短期 30 天，或 permanent=yes 永久。" if self.type is CodeType.SHORTLINK
                        else "")
                more_en = (" A Short Link's is fixed: 30 days, or permanent=yes." if self.type is CodeType.SHORTLINK
                           else "")
                errors.append(FieldError("expire_days", "expire_days 只适用于 type=urllink 和 type=scheme。" + more,
                                         "expire_days applies to type=urllink and type=scheme only." + more_en))
            elif self.plain:
                errors.append(FieldError("expire_days", "明文 URL Scheme 不会过期，请去掉 expire_days。",
                                         "A plain-text URL Scheme never expires; leave out expire_days."))
            elif not 1 <= self.expire_days <= LINK_DAYS_MAX:
                errors.append(FieldError(
                    "expire_days", f"有效天数须在 1 到 {LINK_DAYS_MAX} 之间（微信最长 {LINK_DAYS_MAX} 天），现在是 {self.expire_days}。",
                    f"expire_days must be between 1 and {LINK_DAYS_MAX} (WeChat's longest is {LINK_DAYS_MAX} days); "
                    f"it is {self.expire_days}."))
        if self.type.opens_outside and self.permanent:
            errors.append(FieldError(
                "permanent", f"URL Link 和 URL Scheme 最长 {LINK_DAYS_MAX} 天，没有永久的。要长期有效：印小程序码，"
                "或用明文 URL Scheme（type=scheme plain=yes）。",
                f"URL Links and URL Schemes last {LINK_DAYS_MAX} days at most; none is permanent. For something "
                "lasting, print a mini-program code or use a plain-text URL Scheme (type=scheme plain=yes)."))
        return errors

    def _text_errors(self) -> list[FieldError]:
        """Control characters and lone surrogates: nothing upstream or in SQLite can hold them."""
        errors = []
        for field, value in self:
            if isinstance(value, str) and _BAD_TEXT.search(value):
                bad = "".join(sorted(set(_BAD_TEXT.findall(value))))
                errors.append(FieldError(field, f"{field} 含有控制字符或无效字符，请删除：{bad!r}。",
                                         f"{field} contains control or invalid characters; remove {bad!r}."))
        return errors

    def _page_errors(self) -> list[FieldError]:
        page = self.page
        if self.type is CodeType.B:
            if not page:
                return []  # WeChat opens the home page
            if page.startswith("/"):
                return [FieldError("page", "B 码的页面路径不能以 / 开头，例如 pages/index/index。",
                                   "A B code's page must not start with '/', e.g. pages/index/index.")]
            if "?" in page:
                return [FieldError("page", "B 码的页面路径不能带 ?参数，请把参数放进 scene。",
                                   "A B code's page cannot carry a ?query; put parameters in the scene.")]
        elif not page and not (self.type.opens_outside and not self.plain):
            return [FieldError("page", "请填写页面路径，例如 pages/index/index。",
                               "Please give the page path, e.g. pages/index/index.")]
        if any(ch.isspace() for ch in page):
            return [FieldError("page", "页面路径不能包含空格。", "The page path cannot contain spaces.")]
        full_width = full_width_errors(page)
        if full_width:
            return full_width
        if RESERVED_QUERY_KEY in page:
            return [FieldError("page", "路径里不能有保留参数 scancode_time。",
                               "The path cannot contain the reserved key scancode_time.")]
        if self.type.opens_outside:
            return self._link_page_errors()
        if self.type is CodeType.SHORTLINK:
            if len(page) > SHORTLINK_URL_MAX:
                return [FieldError("page", f"短链页面最多 {SHORTLINK_URL_MAX} 个字符，现在是 {len(page)} 个。",
                                   f"A Short Link page may have at most {SHORTLINK_URL_MAX} characters; it has {len(page)}.")]
            return []
        if self.type.counts_against_cap:
            limit = path_limit(self.type, self.via)
            size = _utf8_len(page)
            if size > limit:
                gio = self.via is Provider.GIO
                why_zh = f"（GrowingIO 还会追加 ?gio_link_id=8位ID，占 {GIO_AID_SUFFIX_BYTES} 字节）" if gio else ""
                why_en = f" (GrowingIO appends ?gio_link_id=<8-char id>, {GIO_AID_SUFFIX_BYTES} bytes)" if gio else ""
                return [FieldError(
                    "page",
                    f"路径最多 {limit} 字节{why_zh}，现在是 {size} 字节（中文每字 3 字节），请缩短参数或改用 B 码。",
                    f"The path may be at most {limit} bytes{why_en}; it is {size} (a Chinese character is 3 bytes). "
                    "Shorten the query or use a B code.",
                )]
        return []

    def _link_page_errors(self) -> list[FieldError]:
        """The page of a URL Link or URL Scheme: sent as a path without query (empty: the home page) and
        its query, each under WeChat's rules."""
        path, query = self.path_and_query
        errors = []
        if path.startswith("/"):  # page_path drops one; "//x" keeps the second
            errors.append(FieldError("page", "页面路径不能以 / 开头，例如 pages/index/index。",
                                     "The page path must not start with '/', e.g. pages/index/index."))
        if self.plain and not path:
            errors.append(FieldError("page", "明文 URL Scheme 必须写页面路径（微信要求），例如 pages/index/index。",
                                     "A plain-text URL Scheme needs the page path (WeChat requires it), e.g. "
                                     "pages/index/index."))
        limit = PLAIN_QUERY_MAX if self.plain else LINK_QUERY_MAX
        if len(query) > limit:
            errors.append(FieldError(
                "page", f"? 后面的参数（query）最多 {limit} 个字符，现在是 {len(query)} 个。",
                f"The query after '?' may have at most {limit} characters; it has {len(query)}."))
        elif not LINK_QUERY_RE.match(query):
            bad = "".join(dict.fromkeys(ch for ch in query if not LINK_QUERY_RE.match(ch)))
            errors.append(FieldError(
                "page", f"? 后面的参数只能用数字、英文字母和 !#$&'()*+,/:;=?@-._~%，请去掉或先做 URL 编码：{bad!r}"
                "（中文写成 %E4%B8%AD 这样）。",
                f"The query after '?' may use only digits, letters and !#$&'()*+,/:;=?@-._~%; remove or URL-encode "
                f"{bad!r} (Chinese as %E4%B8%AD and so on)."))
        return errors

    def _scene_errors(self) -> list[FieldError]:
        if self.type is not CodeType.B:
            return []
        scene = self.scene or ""
        if not scene:
            return [FieldError("scene", f"B 码需要 1 到 {SCENE_MAX} 个字符的 scene。",
                               f"A B code needs a scene of 1 to {SCENE_MAX} characters.")]
        if len(scene) > SCENE_MAX:
            return [FieldError(
                "scene", f"B 码需要 1 到 {SCENE_MAX} 个字符的 scene，现在是 {len(scene)} 个。{LONG_SCENE_HINT.zh}",
                f"A B code needs a scene of 1 to {SCENE_MAX} characters; it has {len(scene)}. {LONG_SCENE_HINT.en}",
            )]
        if not SCENE_RE.match(scene):
            bad = "".join(dict.fromkeys(ch for ch in scene if not SCENE_RE.match(ch)))  # in the order they appear
            return [FieldError(
                "scene",
                f"scene 只能用数字、英文字母和 !#$&'()*+,/:;=?@-._~，请去掉：{bad!r}（中文、空格和 % 都不行）。"
                f"{LONG_SCENE_HINT.zh}",
                f"The scene may use only digits, letters and !#$&'()*+,/:;=?@-._~; remove {bad!r} "
                f"(no Chinese, no spaces, no %). {LONG_SCENE_HINT.en}",
            )]
        return []

    def unused_options(self) -> list[Text]:
        """Options given that this code does not use: said in the answer, never dropped without a word
        (:meth:`without_unused` drops them, and :meth:`reuse_key` never counts them).

        - ``via=gio`` on a B code or Short Link: those always come from WeChat (:attr:`provider`).
        - ``transparent`` on a C code or Short Link: createQRCode takes only ``path`` and ``width``
          (https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/qr-code/api_createqrcode);
          ``is_hyaline`` is getwxacode's and getwxacodeunlimit's.
        - ``title`` on a code: it is the Short Link's ``page_title`` (genwxashortlink); with a poster, the
          front-ends take it as the poster's title before it gets here.
        """
        kind = TYPE_WORDS[self.type]
        unused: list[Text] = []
        if self.via is Provider.GIO and self.provider is not Provider.GIO:
            unused.append(Text(zh=f"via=gio 对{kind[0]}不起作用：{kind[0]}总是由微信生成，不是 GrowingIO 监测链接，已忽略。",
                               en=f"via=gio does not apply to {kind[1]}: it always comes from WeChat, no GrowingIO "
                                  "tracking link; ignored."))
        if self.transparent and (self.type is CodeType.C or self.type.is_link):
            unused.append(Text(zh=f"transparent=yes 对{kind[0]}不起作用（只有圆形的 A/B 码能有透明底），已忽略。",
                               en=f"transparent=yes does not apply to {kind[1]} (only round A/B codes can have a "
                                  "transparent background); ignored."))
        if self.title and self.type is not CodeType.SHORTLINK:
            unused.append(Text(zh=f"title 是短链的页面标题（加 poster= 时是海报标题），{kind[0]}用不到，已忽略。",
                               en=f"title is a Short Link's page title (with poster=, the poster's title); {kind[1]} "
                                  "has no use for it, so it was ignored."))
        return unused

    def without_unused(self) -> CodeRequest:
        """This request without the options :meth:`unused_options` names (what is stored and made)."""
        drop: dict[str, Any] = {}
        if self.via is Provider.GIO and self.provider is not Provider.GIO:
            drop["via"] = None
        if self.transparent and (self.type is CodeType.C or self.type.is_link):
            drop["transparent"] = False
        if self.title and self.type is not CodeType.SHORTLINK:
            drop["title"] = None
        return self.model_copy(update=drop) if drop else self

    def reuse_key(self) -> str:
        """Same app, type, provider, page, scene, campaign, channel, UTM values, size and colours → same key.

        The name, comments and who asked are not part of it: the same code under another name is a reuse;
        nor is an option the code does not use (:meth:`unused_options`).
        """
        fields = self.without_unused().model_dump(
            mode="json",
            include={"type", "app", "page", "scene", "campaign", "channel", "medium", "content", "term",
                     "width", "auto_color", "line_color", "transparent", "env_version", "check_path",
                     "title", "permanent"},
        )
        fields["provider"] = self.provider.value
        if self.type.opens_outside:
            # Only for these types: every other code keeps the key it always had (and so its reuse).
            fields["plain"] = self.plain
            fields["expire_days"] = self.link_days
        blob = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def suggested_name(self) -> str:
        """A GrowingIO-safe name from campaign, channel and page (the person may change it)."""
        page = self.destination if self.live and self.destination else self.page
        parts = [self.campaign, self.channel, "blank" if self.blank else page.split("?")[0].strip("/").replace("/", "_") or "home"]
        if self.live:
            parts.append("live")
        elif self.scene:
            parts.append(self.scene)
        raw = "-".join(p for p in parts if p)
        safe = "".join(ch if GIO_NAME_RE.match(ch) else "_" for ch in raw).strip("_-") or "code"
        return safe[:GIO_NAME_MAX]


def _as_invalid_request(exc: ValidationError) -> InvalidRequest:
    return InvalidRequest(field_errors(exc))


class UpstreamResult(BaseModel):
    """What the shared client brings back for one request."""

    provider: Provider
    image: bytes | None = None
    mime: str | None = None
    link: str | None = None  # Short Link, URL Link, URL Scheme
    expires_at: datetime | None = None  # when that link stops working (None: it never does)
    tracking_url: str | None = None
    link_id: str | None = None
    campaign_id: str | None = None
    campaign_name: str | None = None
    channel_id: str | None = None
    channel_name: str | None = None
    num_used: int | None = None  # WeChat's Num-Used header on A codes


class CodeRecord(BaseModel):
    """One row of history as every front-end sees it."""

    id: str
    type: CodeType
    provider: Provider
    status: Status
    page: str
    scene: str | None = None
    name: str | None = None
    app: str | None = None
    campaign: str | None = None
    campaign_id: str | None = None
    channel: str | None = None
    channel_id: str | None = None
    medium: str | None = None
    content: str | None = None
    term: str | None = None
    comments: str | None = None
    width: int = 430
    transparent: bool = False
    title: str | None = None
    link: str | None = None
    expires_at: datetime | None = None  # a Short Link, URL Link or URL Scheme stops working then (None: never)
    tracking_url: str | None = None
    link_id: str | None = None
    image_sha256: str | None = None
    image_mime: str | None = None
    error_code: str | None = None  # the upstream's own code, or a stable name of ours (bot/errors.py)
    error_zh: str | None = None
    error_en: str | None = None
    error_raw: str | None = None  # the upstream's answer as received (redacted, at most 500 characters)
    requested_by: str
    requested_by_name: str | None = None
    chat: str | None = None
    chat_channel: str | None = None
    sandbox: bool = False
    request_key: str
    created_at: datetime
    updated_at: datetime
    request: dict[str, Any] = Field(default_factory=dict)
    copy_of: str | None = None  # the code this one is a sharper copy of, made for a poster (bot/posters)

    @property
    def permanent(self) -> bool:
        """A link that never expires: a permanent Short Link, or a plain-text URL Scheme."""
        if self.type is CodeType.SHORTLINK:
            return bool(self.request.get("permanent"))
        return self.type is CodeType.SCHEME and bool(self.request.get("plain"))

    @property
    def plain(self) -> bool:
        """A plain-text URL Scheme (made without calling WeChat)."""
        return self.type is CodeType.SCHEME and bool(self.request.get("plain"))

    def expired(self, now: datetime | None = None) -> bool:
        """Whether this link has stopped working (codes and permanent links never do)."""
        return self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC))

    @property
    def error_message(self) -> Text | None:
        """Why the code failed, in both languages (None unless it failed)."""
        if not (self.error_zh or self.error_en):
            return None
        zh = self.error_zh or self.error_en or ""
        return Text(zh=zh, en=self.error_en or zh)

    @property
    def error(self) -> str | None:
        """The failure as one ``"zh\nen"`` string: kept only for the ``error`` field of the CLI's and the
        HTTP API's JSON outputs, whose readers expect it. Code reads :attr:`error_message`."""
        message = self.error_message
        return message.render(None) if message else None

    def code_request(self) -> CodeRequest:
        return CodeRequest.model_validate(self.request)
