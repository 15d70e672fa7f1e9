"""What the MCP tools take and answer: the HTTP API's wire models, extended where a tool offers more.

The arguments are the API's fields under the API's names (``path``, ``scene``, ``width``, ``live``, ``type`` …,
docs/api.md), so an assistant that learnt one speaks the other; ``make_code`` adds the fields only the CLI
and the chats had (every code type, GrowingIO's campaign and channel, a Short Link's title …) under the
CLI's option names. Answers reuse the API's ``CodeView``; a refusal is a :class:`ToolFailure`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bot import scenes
from bot.history import HistoryPage
from bot.live import LiveView
from bot.live.rules import DayScans
from bot.models import GIO_NAME_MAX
from bot.quota import QuotaStatus
from bot.summary import MAX_DAYS
from bot.text import Text
from handlers.api.models import CodePage, CodeView, ListQuery, PosterApiRequest, QRCodeRequest
from handlers.mcp.descriptions import SCENE

CodeTypeName = Literal["A", "B", "C", "shortlink", "urllink", "scheme"]


class MakeCodeArgs(QRCodeRequest):
    """``POST /api/weapp/qrcode``'s body, with every code type and the GrowingIO fields."""

    model_config = ConfigDict(extra="forbid", title="make_code")
    type: CodeTypeName | None = Field(  # type: ignore[assignment]  # the API's two link types and the rest
        None, description="A: a mini-program code for any page with its ?query (counts against the 100,000 A+C codes "
                          "a mini program may ever make). B: a mini-program code for a published page plus a scene "
                          "(unlimited). C: the older square QR code (same 100,000 cap as A). shortlink: a link that "
                          "opens only inside WeChat. urllink / scheme: links that open the mini program from SMS, "
                          "email and web pages. Omitted: B when a scene is given (or live), else A.")
    # The API's words for these name its answer codes (3002) and routes; said here for a tool's caller.
    scene: str | None = Field(None, max_length=scenes.PARAMS_MAX, description=SCENE, examples=["product_id=123"])
    long_scene: Literal["key"] | None = Field(
        None, description="'key' stores a scene WeChat would refuse (over 32 characters, Chinese, spaces, %) and the "
                          "code carries k=<10 letters/digits> instead; the mini program must then resolve our keys")
    live: bool = Field(False, description="A live code (活码): a B code whose destination, path with its ?query, can "
                                          "be changed later with repoint_live_code. No scene with it.")
    via: Literal["gio", "wechat"] | None = Field(
        None, description="A/C only: gio makes a GrowingIO tracking link (campaign and channel required), wechat a plain "
                          "WeChat code. Omitted: GrowingIO when it is configured and a campaign or channel is given.")
    name: str | None = Field(None, max_length=GIO_NAME_MAX, description="A name to find the code by later (Chinese, "
                                                                       "letters, digits, - / _; no spaces)")
    campaign: str | None = Field(None, description="GrowingIO campaign (推广活动), by name or id")
    channel: str | None = Field(None, description="GrowingIO channel (推广渠道), by name or id")
    medium: str | None = Field(None, description="GrowingIO UTM medium")
    content: str | None = Field(None, description="GrowingIO UTM content")
    term: str | None = Field(None, description="GrowingIO UTM term")
    comments: str | None = Field(None, description="Free comments, kept with the code")
    create_missing: bool = Field(False, description="Create a campaign or channel that does not exist yet")
    title: str | None = Field(None, description="shortlink: the page title WeChat shows (cut to 20 characters)")
    permanent: bool = Field(False, description="shortlink: never expires (100,000 per mini program, ever); "
                                               "else it lasts 30 days")
    transparent: bool = Field(False, description="A/B: a transparent background")
    include_image: bool = Field(False, description="Also return the code's image (PNG) as image content; "
                                                   "image_url links to it in any case")


class FindCodesArgs(ListQuery):
    """``GET /api/codes``'s query."""

    model_config = ConfigDict(extra="forbid", title="find_codes")


class CodeIdArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", title="show_code")
    id: str = Field(max_length=64, description="The code's id, as make_code or find_codes answered it")


class MakePosterArgs(PosterApiRequest):
    """``POST /api/posters``'s body."""

    model_config = ConfigDict(extra="forbid", title="make_poster")


class RepointArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", title="repoint_live_code")
    id: str = Field(max_length=64, description="The live code's id")
    page: str = Field(max_length=2048, description="The new destination: a page with its ?query",
                      examples=["pages/coupon/get?id=2&from=poster"])


class PauseArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", title="pause_live_code")
    id: str = Field(max_length=64, description="The live code's id")
    paused: bool = Field(True, description="true pauses (scans open the fallback page), false resumes")


class StatsArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", title="code_stats")
    id: str = Field(max_length=64, description="The live code's id")
    days: int = Field(30, ge=1, le=MAX_DAYS, description="How many days of per-day counts")


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", title="quota")


# -- answers --------------------------------------------------------------------------------------------------
class MadeCode(BaseModel):
    code: CodeView
    reused: bool = Field(description="True when an identical code existed and nothing new was made (no quota spent)")
    original_by: str | None = Field(None, description="Who made the reused code")
    notices: list[Text] = Field(default_factory=list, description="Heads-ups, Chinese and English")


class FoundCodes(CodePage):
    """A page of history, newest first (``HistoryPage`` with each record as the API shows it)."""

    @classmethod
    def of(cls, page: HistoryPage, items: list[CodeView]) -> FoundCodes:
        return cls(items=items, limit=page.limit, offset=page.offset, next_offset=page.next_offset)


class ShownCode(BaseModel):
    code: CodeView
    live_code: LiveView | None = Field(None, description="A live code's destinations, pause and scans")


class MadePoster(BaseModel):
    id: str
    code_id: str
    url: str = Field(description="The poster's link (under MINPCODE_PUBLIC_URL)")
    template: str
    format: str
    mime: str
    width_px: int
    height_px: int
    dpi: int
    size: int = Field(description="Bytes")
    reused: bool
    sharper_copy: str | None = Field(None, description="The sharper copy of the code printed on the poster")
    notices: list[Text] = Field(default_factory=list)


class LiveChanged(BaseModel):
    live_code: LiveView


class CodeStats(BaseModel):
    live_code: LiveView
    days: list[DayScans] = Field(description="Scans per local day (MINPCODE_TIMEZONE), oldest first")


class Quotas(BaseModel):
    apps: list[QuotaStatus] = Field(description="Per mini program: A+C codes used of the cap, URL Links and Schemes "
                                                "made today, permanent Short Links made")
    notices: list[Text] = Field(default_factory=list)


class FieldProblem(BaseModel):
    field: str = Field(description="The argument to change")
    zh: str
    en: str


class ToolFailure(BaseModel):
    """A refusal: the error's stable name, both languages, and each field to change."""

    error: str = Field(description="Stable name: invalid_field, invalid_request, not_found, permission_denied, "
                                   "quota_exhausted, pending, failed, or the upstream's own code")
    message: Text
    fields: list[FieldProblem] = Field(default_factory=list)


__all__ = ["CodeIdArgs", "CodeStats", "FieldProblem", "FindCodesArgs", "FoundCodes", "LiveChanged", "MadeCode",
           "MadePoster", "MakeCodeArgs", "MakePosterArgs", "NoArgs", "PauseArgs", "Quotas", "RepointArgs",
           "ShownCode", "StatsArgs", "ToolFailure"]
