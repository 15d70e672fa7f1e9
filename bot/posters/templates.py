"""Poster templates: the page's physical size, its dpi, where the code and each text go.

A template is one pydantic model whether it is built in or a team's (``layout.py`` reads a team's
layout file into the same model), so rendering has one path. Geometry is in the template's
``unit``: millimetres for print (rendered at ``dpi``, 300 for the built-ins) or pixels for screens
(``dpi`` then only labels the PNG and sizes the PDF page). Font sizes are points (1/72 inch), so a
pixel template at 72 dpi sizes its fonts in pixels.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MM_PER_INCH = 25.4
PT_PER_INCH = 72.0
BLEED_MM = 3.0
PRINT_DPI = 300
HEX_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}\Z")
TEXT_FIELDS = ("title", "subtitle", "footer", "text")


def _colour(value: str) -> str:
    if not HEX_COLOUR.match(value):
        raise ValueError("colour must look like #RRGGBB")
    return value.upper()


Colour = Annotated[str, AfterValidator(_colour)]


class Box(BaseModel):
    """A rectangle on the page, in the template's unit, from the top-left corner of the trimmed page."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    x: float = Field(ge=0)
    y: float = Field(ge=0)
    w: float = Field(gt=0)
    h: float = Field(gt=0)


class CodeBox(BaseModel):
    """Where the code prints: a square of side ``size`` with its top-left corner at (x, y)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    x: float = Field(ge=0)
    y: float = Field(ge=0)
    size: float = Field(gt=0)


class Panel(BaseModel):
    """A filled rectangle drawn under the code and texts; one touching an edge runs into the bleed."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    box: Box
    colour: Colour = "#FFFFFF"
    radius: float = Field(default=0, ge=0)


class TextBox(BaseModel):
    """One line (or wrapped lines) of text: a poster field, or fixed ``text``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    field: Literal["title", "subtitle", "footer", "text"]
    box: Box
    size: float = Field(gt=0, le=400, description="largest font size, points")
    min_size: float | None = Field(default=None, gt=0, le=400, description="smallest size before wrapping; default 70%")
    colour: Colour = "#222222"
    align: Literal["left", "center", "right"] = "center"
    bold: bool = False
    text: str | None = Field(default=None, max_length=200, description="fixed text, for field=text")
    default: str | None = Field(default=None, max_length=200, description="used when the person gives no value")


class PosterTemplate(BaseModel):
    """A poster layout. ``background_image`` (PNG/JPEG bytes) is drawn over ``background`` when set."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    label_zh: str = ""
    label_en: str = ""
    kind: Literal["print", "screen"] = "print"
    unit: Literal["mm", "px"] = "mm"
    width: float = Field(gt=0)
    height: float = Field(gt=0)
    dpi: int = Field(default=PRINT_DPI, ge=72, le=1200)
    background: Colour = "#FFFFFF"
    code: CodeBox
    panels: tuple[Panel, ...] = ()
    texts: tuple[TextBox, ...] = ()
    team: bool = False
    background_image: bytes | None = Field(default=None, repr=False, exclude=True)

    # -- geometry ---------------------------------------------------------------------------------
    @property
    def px_per_unit(self) -> float:
        return self.dpi / MM_PER_INCH if self.unit == "mm" else 1.0

    def bleed_px(self, bleed: bool) -> int:
        return round(BLEED_MM * self.dpi / MM_PER_INCH) if bleed else 0

    def pixel_size(self, bleed: bool = False) -> tuple[int, int]:
        """Canvas size in pixels: A4 at 300 dpi is 2480×3508, with 3 mm bleed 2551×3579."""
        extra = 2 * self.bleed_px(bleed)
        return round(self.width * self.px_per_unit) + extra, round(self.height * self.px_per_unit) + extra

    def page_points(self, bleed: bool = False) -> tuple[float, float]:
        """The exact physical page size in points (A4: 595.28×841.89), bleed included when asked."""
        inches = self.width_inches + (2 * BLEED_MM / MM_PER_INCH if bleed else 0)
        tall = self.height_inches + (2 * BLEED_MM / MM_PER_INCH if bleed else 0)
        return inches * PT_PER_INCH, tall * PT_PER_INCH

    @property
    def width_inches(self) -> float:
        return self.width / MM_PER_INCH if self.unit == "mm" else self.width / self.dpi

    @property
    def height_inches(self) -> float:
        return self.height / MM_PER_INCH if self.unit == "mm" else self.height / self.dpi

    @property
    def code_inches(self) -> float:
        return self.code.size / MM_PER_INCH if self.unit == "mm" else self.code.size / self.dpi

    @property
    def code_px(self) -> int:
        """The code's printed side in canvas pixels."""
        return round(self.code.size * self.px_per_unit)

    def code_backdrop_white(self) -> bool:
        """True when what lies under the code box is plain white (no transparent code needed)."""
        if self.background_image is not None:
            return False
        c = self.code
        colour = self.background
        for panel in self.panels:  # the topmost panel covering the whole code box decides
            b = panel.box
            if b.x <= c.x and b.y <= c.y and b.x + b.w >= c.x + c.size and b.y + b.h >= c.y + c.size:
                colour = panel.colour
        return colour == "#FFFFFF"

    @property
    def wants_transparent_code(self) -> bool:
        """Ask WeChat for ``is_hyaline`` (A/B codes) when the code sits on something that is not white."""
        return not self.code_backdrop_white()

    def fingerprint(self) -> str:
        """Changes whenever anything that shapes the poster changes (layout or background)."""
        digest = hashlib.sha256(self.model_dump_json().encode("utf-8"))
        if self.background_image is not None:
            digest.update(hashlib.sha256(self.background_image).digest())
        return digest.hexdigest()

    def size_text(self) -> str:
        """``210×297 mm, 300 dpi, code 100 mm`` — what ``minpcode posters`` lists."""
        unit = self.unit
        w, h, c = (_num(self.width), _num(self.height), _num(self.code.size))
        px_w, px_h = self.pixel_size()
        if unit == "px":
            return f"{w}×{h} px, code {c} px"
        return f"{w}×{h} mm ({px_w}×{px_h} px at {self.dpi} dpi), code {c} mm"

    def code_pixels_needed(self) -> int:
        """Pixels across the code image must have to print at ≥ the template's dpi (300 for print)."""
        return math.ceil(self.code_inches * self.dpi - 1e-9)


def _num(value: float) -> str:
    return f"{value:g}"


def _a4() -> PosterTemplate:
    red, cream = "#D4372C", "#FFE8D2"
    return PosterTemplate(
        name="a4", label_zh="A4 海报", label_en="A4 poster", width=210, height=297, code=CodeBox(x=55, y=112, size=100),
        panels=(Panel(box=Box(x=0, y=0, w=210, h=96), colour=red),
                Panel(box=Box(x=0, y=287, w=210, h=10), colour=red)),
        texts=(TextBox(field="title", box=Box(x=14, y=16, w=182, h=44), size=80, colour="#FFFFFF", bold=True),
               TextBox(field="subtitle", box=Box(x=14, y=64, w=182, h=20), size=34, colour=cream),
               TextBox(field="text", text="微信扫一扫 · Scan with WeChat", box=Box(x=14, y=218, w=182, h=12),
                       size=20, colour="#8A8A8A"),
               TextBox(field="footer", box=Box(x=14, y=240, w=182, h=36), size=40, colour="#333333", bold=True)),
    )


def _a5_tent() -> PosterTemplate:
    # An A5 insert for the acrylic table stands (台卡) restaurants and shops use.
    red, cream = "#D4372C", "#FFE8D2"
    return PosterTemplate(
        name="a5-tent", label_zh="A5 台卡", label_en="A5 table tent", width=148, height=210,
        code=CodeBox(x=36, y=76, size=76),
        panels=(Panel(box=Box(x=0, y=0, w=148, h=66), colour=red),
                Panel(box=Box(x=0, y=203, w=148, h=7), colour=red)),
        texts=(TextBox(field="title", box=Box(x=10, y=10, w=128, h=32), size=56, colour="#FFFFFF", bold=True),
               TextBox(field="subtitle", box=Box(x=10, y=45, w=128, h=14), size=24, colour=cream),
               TextBox(field="text", text="微信扫一扫 · Scan with WeChat", box=Box(x=10, y=155, w=128, h=9),
                       size=15, colour="#8A8A8A"),
               TextBox(field="footer", box=Box(x=10, y=170, w=128, h=26), size=30, colour="#333333", bold=True)),
    )


def _sticker_60() -> PosterTemplate:
    return PosterTemplate(
        name="sticker-60", label_zh="60 mm 贴纸", label_en="60 mm sticker", width=60, height=60,
        code=CodeBox(x=13, y=12, size=34),
        panels=(Panel(box=Box(x=0, y=0, w=60, h=11), colour="#D4372C"),),
        texts=(TextBox(field="title", box=Box(x=3, y=1.5, w=54, h=8), size=16, colour="#FFFFFF", bold=True),
               TextBox(field="footer", box=Box(x=3, y=47, w=54, h=6), size=11, colour="#333333", bold=True),
               TextBox(field="subtitle", box=Box(x=3, y=53, w=54, h=5), size=8, colour="#666666")),
    )


def _moments() -> PosterTemplate:
    # A phone screen (WeChat Moments): pixels, labelled 72 dpi so font points are pixels.
    return PosterTemplate(
        name="moments", label_zh="朋友圈海报", label_en="WeChat Moments", kind="screen", unit="px",
        width=1080, height=1920, dpi=72, background="#FFF3E8", code=CodeBox(x=240, y=760, size=600),
        panels=(Panel(box=Box(x=0, y=0, w=1080, h=640), colour="#D4372C"),
                Panel(box=Box(x=180, y=700, w=720, h=800), colour="#FFFFFF", radius=36)),
        texts=(TextBox(field="title", box=Box(x=60, y=150, w=960, h=260), size=120, colour="#FFFFFF", bold=True),
               TextBox(field="subtitle", box=Box(x=60, y=430, w=960, h=120), size=56, colour="#FFE8D2"),
               TextBox(field="text", text="长按识别小程序码 · Press and hold to open", box=Box(x=200, y=1390, w=680, h=70),
                       size=34, colour="#8A8A8A"),
               TextBox(field="footer", box=Box(x=60, y=1580, w=960, h=200), size=64, colour="#333333", bold=True)),
    )


BUILTIN: dict[str, PosterTemplate] = {t.name: t for t in (_a4(), _a5_tent(), _sticker_60(), _moments())}
