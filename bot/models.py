"""The request and result models every front-end and the core share, with every field rule.

Rules come from WeChat's code and Short Link references and GrowingIO's tracking-link API; each
constant below names its page ("our assumption" where none says it). They are
checked here, before any upstream call, and every violation is a :class:`FieldError` naming the
field and saying, in Chinese and English, what to change. :meth:`CodeRequest.parse` gathers them
all into one :class:`InvalidRequest` so a form can show each error beside its field.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime
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
    SHORTLINK = "shortlink"  # genwxashortlink: a "#小程序://" link, no image

    @property
    def counts_against_cap(self) -> bool:
        return self in (CodeType.A, CodeType.C)


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
FREE_TEXT_MAX = 255
_BAD_TEXT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
RESERVED_QUERY_KEY = "scancode_time"


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


FRONT_ENDS = ("slack", "wecom", "cli", "api")
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
    chat: str = "cli"  # slack | wecom | console | cli | api
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
    # A live code (bot/live/rules.py): a B code for the router page whose scene is a key; ``destination`` is
    # where the key leads when the code is made (the page the person asked for), ``expires`` its last day.
    live: bool = False
    destination: str | None = None
    expires: date | None = None

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
                data["type"] = "shortlink" if raw.lower() in {"shortlink", "short", "短链"} else raw.upper()
            if isinstance(data.get("via"), str):
                data["via"] = data["via"].strip().lower()
            if data.get("live") is True and not data.get("type"):
                data["type"] = "B"  # a live code is a B code: no A/C quota, ever
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
        """B codes and Short Links always come from WeChat; A/C follow ``via`` (WeChat if unset)."""
        if self.type in (CodeType.B, CodeType.SHORTLINK):
            return Provider.WECHAT
        return self.via or Provider.WECHAT

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
            for field in ("campaign", "channel"):
                if getattr(self, field):
                    errors.append(FieldError(
                        field, f"{'B 码' if self.type is CodeType.B else '短链'}不是监测链接：推广活动和渠道只用于"
                        "经 GrowingIO 生成的 A/C 码。请去掉 campaign/channel，或改用 type=A。",
                        f"A {'B code' if self.type is CodeType.B else 'Short Link'} is no tracking link: campaign and "
                        "channel apply only to A/C codes made through GrowingIO. Leave them out, or use type=A."))
        for field in ("medium", "content", "term", "comments"):
            value = getattr(self, field)
            if value and len(value) > FREE_TEXT_MAX:
                errors.append(FieldError(
                    field, f"{field} 最多 {FREE_TEXT_MAX} 个字符。", f"{field} may have at most {FREE_TEXT_MAX} characters.",
                ))
        errors += self._live_errors()
        errors += self._version_errors()
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
        return destination_errors(self.destination)
    def _version_errors(self) -> list[FieldError]:
        """``env_version`` is an A/B parameter of WeChat's, ``check_path`` a B one: elsewhere they would be
        dropped silently, so asking for them there is an error."""
        errors = []
        if not self.check_path and self.type is not CodeType.B:
            errors.append(FieldError("check_path", "check=no 只适用于 B 码（A/C 码和短链不检查页面是否发布）。",
                                     "check=no applies to B codes only (A/C codes and Short Links have no page check)."))
        if self.env_version != "release" and (self.type not in (CodeType.A, CodeType.B) or self.provider is Provider.GIO):
            errors.append(FieldError("env_version", "env=trial/develop 只适用于微信直接生成的 A 码和 B 码。",
                                     "env=trial/develop applies only to A and B codes made by WeChat directly."))
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
        elif not page:
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
        kind = {CodeType.A: ("A 码", "an A code"), CodeType.B: ("B 码", "a B code"), CodeType.C: ("C 码", "a C code"),
                CodeType.SHORTLINK: ("短链", "a Short Link")}[self.type]
        unused: list[Text] = []
        if self.via is Provider.GIO and self.provider is not Provider.GIO:
            unused.append(Text(zh=f"via=gio 对{kind[0]}不起作用：{kind[0]}总是由微信生成，不是 GrowingIO 监测链接，已忽略。",
                               en=f"via=gio does not apply to {kind[1]}: it always comes from WeChat, no GrowingIO "
                                  "tracking link; ignored."))
        if self.transparent and self.type in (CodeType.C, CodeType.SHORTLINK):
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
        if self.transparent and self.type in (CodeType.C, CodeType.SHORTLINK):
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
        blob = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def suggested_name(self) -> str:
        """A GrowingIO-safe name from campaign, channel and page (the person may change it)."""
        page = self.destination if self.live and self.destination else self.page
        parts = [self.campaign, self.channel, page.split("?")[0].strip("/").replace("/", "_") or "home"]
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
    link: str | None = None  # Short Link
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
