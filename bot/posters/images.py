"""Opening images people hand us (code, logo, background) safely, with a clear bilingual refusal.

A logo a person sends is checked with :func:`load_logo`, never :func:`checked_logo` on the event loop: a
1.4 KB SVG can keep cairosvg busy for a minute, and a 150 KB PNG decodes to 160 MB (issue 22). It runs
:func:`checked_logo` in a worker process within :data:`LOGO_BUDGET`.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError

from bot import workers
from bot.errors import FieldError
from bot.text import Text

MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 300 dpi A3 sheet is ~17.5 Mpx; past this it is a mistake or a bomb
FORMATS = ("PNG", "JPEG")
# Measured in a worker: a 1024 px logo is checked in 10 ms, a 40 Mpx one (MAX_PIXELS) in 0.7 s and 350 MB of
# address space (the worker's own 200 MB included), several times that on a busy 2-core machine; an SVG <use>
# fan-out 16 deep keeps cairosvg busy 55 s, 17 deep minutes.
LOGO_BUDGET = workers.Budget(seconds=10, memory_mb=512, what=Text(zh="标志处理", en="reading the logo"))
_LABELS = {"logo": ("标志", "logo"), "background": ("背景图", "background image"), "code": ("码图片", "code image")}


def is_svg(data: bytes) -> bool:
    head = data[:512].lstrip().lower()
    return head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:4096].lower())


SVG_PIXELS = 1024  # an SVG logo is drawn this wide: sharper than any logo's spot on a 300 dpi poster


def svg_to_png(data: bytes, field: str = "logo") -> bytes:
    """An SVG drawn to a transparent PNG ``SVG_PIXELS`` wide; FieldError when it cannot be drawn."""
    zh, en = _LABELS.get(field, (field, field))
    if len(data) > MAX_BYTES:
        raise FieldError(field, f"{zh}太大，最多 20 MB。", f"The {en} is too large; at most 20 MB.")
    # loads the system's libcairo: in a worker only, where the fork server has done it (see bot/posters/svg.py)
    from bot.posters.svg import cairosvg

    if cairosvg is None:
        raise FieldError(field, f"这台服务器不能读 SVG，请把{zh}导出为 PNG 或 JPEG。",
                         f"This server cannot read SVG; export the {en} as PNG or JPEG.")
    try:
        # unsafe=False (cairosvg >= 2.7): no XML entities, no outside files or URLs: drawn from its own bytes
        png = cairosvg.svg2png(bytestring=data, output_width=SVG_PIXELS, unsafe=False)
    except Exception:  # cairosvg raises many kinds for a broken or hostile file: each means "cannot draw it"
        raise FieldError(field, f"{zh}是无法绘制的 SVG（格式有误，或引用了外部文件），请导出为 PNG。",
                         f"The {en} is an SVG that cannot be drawn (malformed); "
                         "export it as PNG.") from None
    if not isinstance(png, bytes) or not png:
        raise FieldError(field, f"{zh}是空白的 SVG。", f"The {en} is an empty SVG.")
    return png


def open_image(data: bytes, field: str) -> Image.Image:
    """A loaded PNG or JPEG; FieldError for SVG, other formats, broken files and oversized images."""
    zh, en = _LABELS.get(field, (field, field))
    if is_svg(data):
        raise FieldError(field, f"{zh}暂不支持 SVG，请导出为 PNG（可带透明背景）或 JPEG 再上传。",
                         f"SVG is not supported for the {en}; export it as PNG (transparency is fine) or JPEG.")
    if len(data) > MAX_BYTES:
        raise FieldError(field, f"{zh}太大（{len(data) // 1024 // 1024} MB），最多 20 MB。",
                         f"The {en} is too large ({len(data) // 1024 // 1024} MB); at most 20 MB.")
    try:
        img = Image.open(io.BytesIO(data))
        if img.format not in FORMATS:
            raise FieldError(field, f"{zh}须为 PNG 或 JPEG，收到的是 {img.format}。",
                             f"The {en} must be PNG or JPEG; this is {img.format}.")
        if img.width * img.height > MAX_PIXELS:
            raise FieldError(field, f"{zh}像素太多（{img.width}×{img.height}），请缩小后再上传。",
                             f"The {en} has too many pixels ({img.width}×{img.height}); scale it down.")
        img.load()
    except FieldError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise FieldError(field, f"{zh}不是可读的 PNG 或 JPEG 图片。",
                         f"The {en} is not a readable PNG or JPEG image.") from None
    if field != "code":
        # a phone photo of a logo is stored sideways with an EXIF turn; draw it the way people see it (in place:
        # a copy of a 40 Mpx image is another 160 MB)
        ImageOps.exif_transpose(img, in_place=True)
    return img


def checked_logo(data: bytes) -> bytes:
    """The logo as it is kept (an SVG drawn to PNG, a PNG or JPEG as given), in this process: see :func:`load_logo`.

    FieldError when it is not a PNG, JPEG or SVG that can be drawn, or is over :data:`MAX_PIXELS`.
    """
    png = svg_to_png(data) if is_svg(data) else data
    open_image(png, "logo").close()
    return png


async def load_logo(data: bytes) -> bytes:
    """:func:`checked_logo` in a worker process within :data:`LOGO_BUDGET`, the event loop serving meanwhile."""
    return await workers.run(checked_logo, data, budget=LOGO_BUDGET)


workers.preload(__name__, "bot.posters.svg")
