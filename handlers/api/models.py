"""The API's wire models: what it reads and answers; they are also the OpenAPI document's schemas."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt
from pydantic_core import PydanticCustomError

from bot import scenes
from bot.destinations import DESTINATION_MAX, FULL_WIDTH, RESERVED_QUERY_KEY
from bot.live import RoutesView
from bot.live.routes import PLATFORMS
from bot.models import LINK_DAYS_MAX, SCENE_MAX, WIDTH_MAX, WIDTH_MIN, CodeType, Status

LIST_MAX = 100
LOGO_B64_MAX = 1_400_000  # 1 MB of logo, base64
OFFSET_MAX = 1_000_000

# The rules a body's text must keep, said once: pydantic enforces each ``pattern`` and writes it into the
# OpenAPI document, so the document and the server cannot disagree on them. Every pattern is in the syntax
# that ECMA-262 (JSON Schema's) and pydantic's Rust engine read alike: no lookaround, and ``$`` is the very end
# of the text (Python's ``re`` would also let a final newline through, so it does not judge them).
#
# Control characters (Unicode category Cc: C0, DEL, C1) are in no page, scene or title WeChat takes, and no
# text a person means; lone surrogates cannot be stored (pydantic refuses them as invalid text).
CONTROL = r"\x00-\x1f\x7f-\x9f"
TEXT_PATTERN = rf"^[^{CONTROL}]*$"
# The characters ``str.strip()`` removes that are not control characters (str.isspace, minus Cc).
SPACE = r" \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# A page path: no control characters, and something besides spaces and slashes (one leading "/" is dropped:
# bot.models.page_path), else it is empty (3001).
PATH_PATTERN = rf"^[^{CONTROL}]*[^{CONTROL}{SPACE}/][^{CONTROL}]*$"
_BAD_TEXT = re.compile(f"[{CONTROL}\ud800-\udfff]")


def bad_text(value: str) -> bool:
    """Control characters (Cc) or lone surrogates: what TEXT_PATTERN refuses, for the texts no model reads (ids
    in a URL)."""
    return _BAD_TEXT.search(value) is not None


# What base64.b64decode(validate=True) reads (its padding is checked by the server only).
BASE64_PATTERN = r"^[A-Za-z0-9+/]*={0,2}$"


def _full_date(value: object) -> object:
    """A date as the document's ``format: date`` says (RFC 3339 full-date, ``2027-01-31``): pydantic alone would
    also take a Unix time or a datetime at midnight."""
    if value is None or isinstance(value, str) and _FULL_DATE.fullmatch(value):
        return value
    raise PydanticCustomError("date_type", "Input should be a date as YYYY-MM-DD")


_FULL_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class QRCodeRequest(BaseModel):
    """A code's page and scene (as WeChat takes them), plus width, live, env_version and the opt-ins; or, with
    ``type``, a link that opens the mini program from outside WeChat."""

    model_config = ConfigDict(extra="forbid", title="QRCodeRequest")
    type: Literal["urllink", "scheme"] | None = Field(
        None, description="Omit for a code image (A without a scene, B with one). `urllink`: a URL Link "
                          "(`https://wxaurl.cn/…`, opens from SMS, email, web pages and inside WeChat); `scheme`: a URL "
                          "Scheme (`weixin://dl/business/?t=…`, SMS on iOS and web pages). Either lasts `expire_days`; "
                          "`data` is then the link, not an image URL.")
    expire_days: StrictInt | None = Field(None, ge=1, le=LINK_DAYS_MAX,
                                    description="urllink/scheme: days the link stays valid, 1-30 (default 30)")
    plain: StrictBool = Field(False, description="scheme: the plain-text URL Scheme (`weixin://dl/business/?appid=…&path=…`): "
                                           "no WeChat call, never expires; needs MINPCODE_PLAIN_SCHEME=1, i.e. the page "
                                           "declared in the mini program's admin console (明文 scheme 拉起此小程序)")
    path: str = Field(
        "", description="Mini-program page, e.g. `/pages/product/detail` (one leading `/` is dropped). "
                    "Without a scene it may carry a `?query` (A code, at most 1024 bytes; 107 when "
                    "GrowingIO makes it). Nothing but spaces and `/` is an empty path (code 3001); no control "
                    "characters. Required, except for a blank live code (`live` without a path: 空码, "
                    "it opens the fallback page until bound with POST /api/codes/{id}/destination).",
        pattern=PATH_PATTERN, examples=["/pages/product/detail"],
    )
    scene: str | None = Field(
        None, max_length=scenes.PARAMS_MAX, pattern=TEXT_PATTERN,
        description=f"Parameters for a B code. Up to {SCENE_MAX} characters from WeChat's set go as they are; "
                    f"longer ones or other characters (Chinese, spaces, %) are refused with code 3002 unless "
                    f"`long_scene` is `\"key\"`. Omit (or empty) for an A code.",
        examples=["product_id=123"],
    )
    width: StrictInt = Field(430, ge=WIDTH_MIN, le=WIDTH_MAX, description="Image width in pixels.")
    live: StrictBool = Field(False, description="A live code (活码): a B code for the router page whose destination, "
                                          "`path` with its `?query` (up to 1024 characters), can be changed later "
                                          "with POST /api/codes/{id}/destination. No scene with it.")
    expires: Annotated[date, BeforeValidator(_full_date)] | None = Field(
        None, description="A live code's last day, `YYYY-MM-DD` (in MINPCODE_TIMEZONE); scans go to the fallback page "
                          "after it")
    tags: list[str] | str | None = Field(None, description="Tags for the new code: a list, or one string with commas "
                                                         "(`\"门店,春节\"`); ASCII letters are kept in lower case",
                                         examples=[["门店", "春节"]])
    long_scene: Literal["key"] | None = Field(
        None,
        description="By default a scene WeChat would refuse (over 32 characters, Chinese, spaces, "
                    "`%`...) is answered with code 3002. `\"key\"` stores such parameters instead and the code "
                    "carries `k=<10 letters/digits>` (resolve it with GET /api/scenes/{key}); your mini program "
                    "must then know our keys.",
        examples=["key"],
    )
    env_version: Literal["release", "trial", "develop"] = Field(
        "release", description="Which version of the mini program a scan (or a link) opens (a WeChat A or B code, "
                               "urllink, scheme).")
    check_path: StrictBool = Field(
        True, description="B codes: false skips WeChat's check that the page exists (WeChat takes at most 60,000 "
                          "pages so). While it is on, WeChat checks the released version whatever env_version says "
                          "(errcode 41030).")


class PosterApiRequest(BaseModel):
    """A poster of a code: the code's id, or the code's fields as for /api/weapp/qrcode (made or reused)."""

    # The route (handlers/api/routes.py, Api.poster) uses a non-empty `id`, else `path` (a missing one is an
    # empty path, 3001): the document says one of them is needed, exactly as the route reads them.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": ["id"], "properties": {"id": {"type": "string", "minLength": 1}}},
        {"required": ["path"], "properties": {"path": {"type": "string"}}},
    ]})
    id: str | None = Field(None, max_length=64, pattern=TEXT_PATTERN,
                           description="An existing code's id (used when not empty); or give path (and scene)")
    path: str | None = Field(None, pattern=PATH_PATTERN, description="The code's page, as for /api/weapp/qrcode",
                             examples=["pages/shop/index"])
    scene: str | None = Field(None, max_length=scenes.PARAMS_MAX, pattern=TEXT_PATTERN,
                              description="The code's scene (a B code)")
    width: StrictInt | None = Field(None, ge=WIDTH_MIN, le=WIDTH_MAX, description="Default: what the template needs")
    template: str = Field("a4", max_length=40, pattern=TEXT_PATTERN,
                          description="a4, a5-tent, sticker-60, moments or a team template")
    title: str | None = Field(None, pattern=TEXT_PATTERN,
                              description="Placeholders {name} {campaign} {channel} {page} {scene} are filled")
    subtitle: str | None = Field(None, pattern=TEXT_PATTERN)
    footer: str | None = Field(None, pattern=TEXT_PATTERN)
    format: Literal["png", "pdf"] = "png"
    bleed: StrictBool = Field(False, description="3 mm bleed (print templates)")
    sharper: StrictBool | None = Field(None, description="When the stored image of an A/C code is too small for the "
                                 "template: true spends one A/C code on a sharper copy, false prints the current "
                                 "image; unset, the poster is refused saying what the copy costs (B codes get a "
                                 "copy free; a screen template such as moments takes the current image)")
    logo: str | None = Field(None, max_length=LOGO_B64_MAX, pattern=BASE64_PATTERN, description="A PNG, JPEG or SVG logo, base64 (≤ 1 MB); "
                                                                        "default: the team's default logo")


class Envelope(BaseModel):
    """Every answer's envelope: `code` (0 is success) and `msg`."""

    code: int = Field(description="0 ok, -1 failed (msg says why), 1001 no key, 1002 key not allowed, "
                                  "3001 empty path, 3002 bad scene")
    msg: str = Field(description="Why it failed, Chinese and English (empty on success)")


class ErrorAnswer(Envelope):
    data: None = None


class QRCodeAnswer(Envelope):
    data: str | None = Field(description="The image URL (code 0), or the link itself for `type` urllink/scheme; "
                                         "else null")
    id: str | None = Field(None, description="The code's id (for GET /api/codes/{id})")
    link: str | None = Field(None, description="urllink/scheme: the link")
    expires_at: datetime | None = Field(None, description="urllink/scheme: when the link stops working (null: never, "
                                                          "a plain-text scheme)")
    scene: str | None = Field(None, description="The scene the code carries (a `k=...` key for stored parameters)")
    reused: bool = Field(False, description="True when an identical code already existed and nothing new was made")
    notices: list[str] = Field(default_factory=list, description="Heads-ups (quota nearly used, sandbox code)")


class PosterAnswer(Envelope):
    data: str | None = Field(description="The poster's URL (code 0), else null")
    id: str | None = Field(None, description="The poster's id")
    code_id: str | None = None
    template: str | None = None
    format: str | None = None
    mime: str | None = None
    width_px: int | None = None
    height_px: int | None = None
    dpi: int | None = None
    size: int | None = Field(None, description="Bytes")
    reused: bool = Field(False, description="Served from the store: made before with the same code, template, texts and logo")
    sharper_copy: str | None = Field(None, description="The id of the sharper copy of the code printed on the poster")
    notices: list[str] = Field(default_factory=list)


class CodeView(BaseModel):
    """One history record."""

    id: str
    type: CodeType
    provider: str
    status: Status
    page: str
    scene: str | None = None
    scene_params: str | None = Field(None, description="The parameters behind a stored-scene key")
    name: str | None = None
    app: str | None = None
    campaign: str | None = None
    channel: str | None = None
    width: int
    comments: str | None = None
    link: str | None = Field(None, description="A Short Link, URL Link or URL Scheme")
    expires_at: datetime | None = Field(None, description="When that link stops working (null: a code, or a link "
                                                          "that never expires)")
    permanent: bool | None = Field(None, description="Links: true for a permanent Short Link or a plain-text URL "
                                                     "Scheme; null for codes")
    plain: bool = Field(False, description="A plain-text URL Scheme")
    tracking_url: str | None = None
    image_url: str | None = None
    error_code: str | None = None
    error: str | None = None
    requested_by: str
    chat: str | None = None
    sandbox: bool
    created_at: datetime
    updated_at: datetime
    live: bool = Field(False, description="A live code (活码): its destination can change")
    destination: str | None = Field(None, description="A live code's current destination (page?query)")
    paused: bool | None = Field(None, description="A live code leads to the fallback page while paused")
    scans: int | None = Field(None, description="A live code's scans, in all")
    routes: RoutesView | None = Field(None, description="A live code's routes (by date, then phone, then share); "
                                                        "null: every scan goes to `destination`")

    blank: bool | None = Field(None, description="A blank live code (空码): no destination yet; scans open the "
                                                 "fallback page until it is bound")
    tags: list[str] = Field([], description="The code's tags")


class ShareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    page: str = Field(max_length=2048, examples=["pages/a/index"])
    weight: int = Field(ge=1, le=99, description="Percent of scans; the weights add up to 100")


# A live code's destination as the service checks it (LiveRules.repoint: bot.models.page_path, then
# bot.destinations.destination_errors, whose messages a person reads), restated for the document: spaces around it,
# one leading "/" (and spaces after it), then 1 to 1024 characters with no spaces, control or full-width
# characters, not starting with "?", and never the reserved key. tests/api/test_fuzz.py holds the two together.
_NOT_IN_PAGE = CONTROL + SPACE + "".join(FULL_WIDTH)
_DESTINATION_SCHEMA: dict[str, Any] = {"allOf": [
    {"pattern": rf"^[{SPACE}]*(?:/[{SPACE}]*[^{_NOT_IN_PAGE}?]|[^{_NOT_IN_PAGE}?/])[^{_NOT_IN_PAGE}]"
                rf"{{0,{DESTINATION_MAX - 1}}}[{SPACE}]*$"},
    {"not": {"type": "string", "pattern": RESERVED_QUERY_KEY}},
]}


class DestinationRequest(BaseModel):
    """A live code's new destination or routes, and/or whether it is paused.

    `page` alone sends every scan there (routes cleared); `shares` split scans (a visitor who sends its id stays
    on one page); `platforms` send scans by phone (`ios`, `android`, `ohos`, `other`); `from`/`until` with `page`
    send scans there on those days (the team's time zone, `until` its last day) and leave the other routes as
    they are."""

    # The route (Api.destination) refuses a body with none of page, routes or paused (400): the document says so.
    model_config = ConfigDict(extra="forbid", title="DestinationRequest", populate_by_name=True,
                              json_schema_extra={"anyOf": [
                                  {"required": ["page"], "properties": {"page": {"type": "string"}}},
                                  {"required": ["paused"], "properties": {"paused": {"type": "boolean"}}},
                                  {"required": ["shares"], "properties": {"shares": {"type": "array", "minItems": 1}}},
                                  {"required": ["platforms"],
                                   "properties": {"platforms": {"type": "object", "minProperties": 1}}},
                              ], "dependentRequired": {"from": ["page"], "until": ["page"]}})
    page: str | None = Field(None, max_length=2048, pattern=TEXT_PATTERN, json_schema_extra=_DESTINATION_SCHEMA,
                             description=f"The new destination: page with its ?query (at most {DESTINATION_MAX} "
                                         "characters, one leading `/` dropped, no spaces or full-width ？＆／＝：，, not "
                                         f"`{RESERVED_QUERY_KEY}`)",
                             examples=["pages/coupon/get?id=2&from=poster"])
    shares: list[ShareIn] | None = Field(None, max_length=10, description="Split scans by weight (an A/B test)")
    platforms: dict[str, str] | None = Field(None, description="Page per platform: ios, android, ohos, other",
                                             json_schema_extra={"propertyNames": {"enum": list(PLATFORMS)}},
                                             examples=[{"ios": "pages/x/ios", "android": "pages/x/android"}])
    from_day: Annotated[date, BeforeValidator(_full_date)] | None = Field(
        None, alias="from", description="A dated route's first day, `YYYY-MM-DD` (with `page`)")
    until_day: Annotated[date, BeforeValidator(_full_date)] | None = Field(
        None, alias="until", description="A dated route's last day, `YYYY-MM-DD`, included")
    paused: StrictBool | None = Field(None, description="true pauses (scans go to the fallback page), false resumes")

    def routed(self) -> bool:
        return bool(self.shares or self.platforms or self.from_day or self.until_day)


class CodeAnswer(Envelope):
    data: CodeView


class CodePage(BaseModel):
    items: list[CodeView]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page, null on the last one")


class CodeListAnswer(Envelope):
    data: CodePage


class SceneView(BaseModel):
    key: str = Field(examples=["k=3fZq9LmA0x"])
    scene: str = Field(description="The original parameters, exactly as given")
    query: dict[str, str] = Field(description="The parameters split as `a=1&b=2` (literally, no URL-decoding; "
                                             "the last of repeated names wins)")
    page: str | None = Field(None, description="Live codes: the page to open now (the fallback page while paused "
                                               "or expired); null for stored parameters")
    live: bool = Field(False, description="A live code (活码): redirect to `page` with `query`")
    paused: bool = Field(False, description="A live code that is paused or expired (`page` is the fallback page)")


class SceneAnswer(Envelope):
    data: SceneView


def _query_bool(value: object) -> object:
    """A boolean in a query string as OpenAPI writes it (style form): ``true`` or ``false``; ``yes`` or ``1``
    is refused as the document's ``boolean`` says."""
    return {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    q: str | None = Field(None, max_length=200, pattern=TEXT_PATTERN,
                          description="Full-text search (name, page, scene, campaign, comments ...)")
    type: CodeType | None = None
    status: Status | None = None
    requested_by: str | None = Field(None, max_length=200, pattern=TEXT_PATTERN, description="Only codes this person asked for, named with their front-end: api:<key name>, mcp:<name>, slack:<user id>, wecom:<userid> or cli:<login>")
    mine: Annotated[StrictBool, BeforeValidator(_query_bool)] = Field(
        False, description="Only codes asked for with this API key's name (`true` or `false`)")
    limit: int = Field(20, ge=1, le=LIST_MAX)
    offset: int = Field(0, ge=0, le=OFFSET_MAX)


class Health(BaseModel):
    ok: bool
    version: str
    commit: str | None = Field(None, description="The commit this build was made from, when the installation knows it")
    sandbox: bool
    pending: int


class NotFoundAnswer(BaseModel):
    error: str


__all__ = ["LIST_MAX", "OFFSET_MAX", "PATH_PATTERN", "TEXT_PATTERN", "bad_text", "CodeAnswer", "CodeListAnswer", "CodePage", "CodeView", "Envelope", "ErrorAnswer",
           "Health", "ListQuery", "NotFoundAnswer", "PosterAnswer", "PosterApiRequest", "QRCodeAnswer", "QRCodeRequest", "SceneAnswer", "SceneView"]
