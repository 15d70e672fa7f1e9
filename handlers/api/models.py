"""The API's wire models: what it reads and answers; they are also the OpenAPI document's schemas."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bot import scenes
from bot.models import LINK_DAYS_MAX, SCENE_MAX, WIDTH_MAX, WIDTH_MIN, CodeType, Status

LIST_MAX = 100
LOGO_B64_MAX = 1_400_000  # 1 MB of logo, base64
OFFSET_MAX = 1_000_000


class QRCodeRequest(BaseModel):
    """A code's page and scene (as WeChat takes them), plus width, live, env_version and the opt-ins; or, with
    ``type``, a link that opens the mini program from outside WeChat."""

    model_config = ConfigDict(extra="forbid", title="QRCodeRequest")
    type: Literal["urllink", "scheme"] | None = Field(
        None, description="Omit for a code image (A without a scene, B with one). `urllink`: a URL Link "
                          "(`https://wxaurl.cn/…`, opens from SMS, email, web pages and inside WeChat); `scheme`: a URL "
                          "Scheme (`weixin://dl/business/?t=…`, SMS on iOS and web pages). Either lasts `expire_days`; "
                          "`data` is then the link, not an image URL.")
    expire_days: int | None = Field(None, ge=1, le=LINK_DAYS_MAX,
                                    description="urllink/scheme: days the link stays valid, 1-30 (default 30)")
    plain: bool = Field(False, description="scheme: the plain-text URL Scheme (`weixin://dl/business/?appid=…&path=…`): "
                                           "no WeChat call, never expires; needs MINPCODE_PLAIN_SCHEME=1, i.e. the page "
                                           "declared in the mini program's admin console (明文 scheme 拉起此小程序)")
    path: str = Field(
        "", description="Mini-program page, e.g. `/pages/product/detail` (one leading `/` is dropped). "
                    "Without a scene it may carry a `?query` (A code, at most 1024 bytes; 107 when "
                    "GrowingIO makes it). Required, except for a blank live code (`live` without a path: 空码, "
                    "it opens the fallback page until bound with POST /api/codes/{id}/destination).",
        examples=["/pages/product/detail"],
    )
    scene: str | None = Field(
        None, max_length=scenes.PARAMS_MAX,
        description=f"Parameters for a B code. Up to {SCENE_MAX} characters from WeChat's set go as they are; "
                    f"longer ones or other characters (Chinese, spaces, %) are refused with code 3002 unless "
                    f"`long_scene` is `\"key\"`. Omit (or empty) for an A code.",
        examples=["product_id=123"],
    )
    width: int = Field(430, ge=WIDTH_MIN, le=WIDTH_MAX, description="Image width in pixels.")
    live: bool = Field(False, description="A live code (活码): a B code for the router page whose destination, "
                                          "`path` with its `?query` (up to 1024 characters), can be changed later "
                                          "with POST /api/codes/{id}/destination. No scene with it.")
    expires: date | None = Field(None, description="A live code's last day (in MINPCODE_TIMEZONE); scans go to the "
                                                   "fallback page after it")
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
    check_path: bool = Field(
        True, description="B codes: false skips WeChat's check that the page exists (WeChat takes at most 60,000 "
                          "pages so). While it is on, WeChat checks the released version whatever env_version says "
                          "(errcode 41030).")


class PosterApiRequest(BaseModel):
    """A poster of a code: the code's id, or the code's fields as for /api/weapp/qrcode (made or reused)."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(None, max_length=64, description="An existing code's id; or give path (and scene)")
    path: str | None = Field(None, description="The code's page, as for /api/weapp/qrcode", examples=["pages/shop/index"])
    scene: str | None = Field(None, max_length=scenes.PARAMS_MAX, description="The code's scene (a B code)")
    width: int | None = Field(None, ge=WIDTH_MIN, le=WIDTH_MAX, description="Default: what the template needs")
    template: str = Field("a4", max_length=40, description="a4, a5-tent, sticker-60, moments or a team template")
    title: str | None = Field(None, description="Placeholders {name} {campaign} {channel} {page} {scene} are filled")
    subtitle: str | None = None
    footer: str | None = None
    format: Literal["png", "pdf"] = "png"
    bleed: bool = Field(False, description="3 mm bleed (print templates)")
    sharper: bool | None = Field(None, description="When the stored image of an A/C code is too small for the "
                                 "template: true spends one A/C code on a sharper copy, false prints the current "
                                 "image; unset, the poster is refused saying what the copy costs (B codes get a "
                                 "copy free; a screen template such as moments takes the current image)")
    logo: str | None = Field(None, max_length=LOGO_B64_MAX, description="A PNG, JPEG or SVG logo, base64 (≤ 1 MB); "
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
    blank: bool | None = Field(None, description="A blank live code (空码): no destination yet; scans open the "
                                                 "fallback page until it is bound")
    tags: list[str] = Field([], description="The code's tags")


class DestinationRequest(BaseModel):
    """A live code's new destination, and/or whether it is paused."""

    model_config = ConfigDict(extra="forbid", title="DestinationRequest")
    page: str | None = Field(None, max_length=2048, description="The new destination: page with its ?query",
                             examples=["pages/coupon/get?id=2&from=poster"])
    paused: bool | None = Field(None, description="true pauses (scans go to the fallback page), false resumes")


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


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    q: str | None = Field(None, max_length=200, description="Full-text search (name, page, scene, campaign, comments ...)")
    type: CodeType | None = None
    status: Status | None = None
    requested_by: str | None = Field(None, max_length=200, description="Only codes this person asked for, named with their front-end: api:<key name>, mcp:<name>, slack:<user id>, wecom:<userid> or cli:<login>")
    mine: bool = Field(False, description="Only codes asked for with this API key's name")
    limit: int = Field(20, ge=1, le=LIST_MAX)
    offset: int = Field(0, ge=0, le=OFFSET_MAX)


class Health(BaseModel):
    ok: bool
    sandbox: bool
    pending: int


class NotFoundAnswer(BaseModel):
    error: str


__all__ = ["LIST_MAX", "OFFSET_MAX", "CodeAnswer", "CodeListAnswer", "CodePage", "CodeView", "Envelope", "ErrorAnswer",
           "Health", "ListQuery", "NotFoundAnswer", "PosterAnswer", "PosterApiRequest", "QRCodeAnswer", "QRCodeRequest", "SceneAnswer", "SceneView"]
