"""Rendering one poster: background, panels, the code, the texts; PNG (with its dpi) or PDF bytes.

One poster at a time, built on one canvas that is released when the bytes are returned, so a batch
of 300 never holds more than the poster being drawn. The serving process draws with :func:`draw_poster`,
which runs :func:`render_poster` in a worker process within :data:`POSTER_BUDGET` (issue 22): the logo, the
background and the template's size are what people hand us, and drawing them in the serving process slowed
its event loop and kept hundreds of megabytes there.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping

from PIL import Image, ImageDraw

from bot import workers
from bot.errors import FieldError
from bot.models import CodeType
from bot.posters import fonts
from bot.posters.code import prepare_code
from bot.posters.images import open_image
from bot.posters.pdf import png_to_pdf
from bot.posters.request import PosterFields, PosterFormat
from bot.posters.templates import BLEED_MM, MM_PER_INCH, PT_PER_INCH, Box, PosterTemplate
from bot.posters.text import draw_setting, set_text
from bot.text import Text

PNG_COMPRESS_LEVEL = 6
# Measured in a worker: an A4 PDF with bleed takes 0.5 s and 310 MB of address space (the worker's own 200 MB
# included), 1.6 s and 430 MB with a 40 Mpx logo; the largest a person can ask for, an A3 team template with a
# 40 Mpx background and a 40 Mpx logo, 3.8 s and 810 MB. A team template of absurd size fails at once.
POSTER_BUDGET = workers.Budget(seconds=30, memory_mb=1024, what=Text(zh="海报绘制", en="drawing the poster"))


def _px(template: PosterTemplate, value: float, bleed: int) -> int:
    return round(value * template.px_per_unit) + bleed


def _box_px(template: PosterTemplate, box: Box, bleed: int) -> tuple[int, int, int, int]:
    return (_px(template, box.x, bleed), _px(template, box.y, bleed),
            _px(template, box.x + box.w, bleed), _px(template, box.y + box.h, bleed))


def _canvas(template: PosterTemplate, bleed: bool) -> Image.Image:
    size = template.pixel_size(bleed)
    canvas = Image.new("RGB", size, template.background)
    if template.background_image is not None:
        # A team's artwork covers the bleed too: it is scaled to the whole sheet.
        art = open_image(template.background_image, "background")
        canvas.paste(art.convert("RGB").resize(size, Image.Resampling.LANCZOS))
        art.close()
    pad = template.bleed_px(bleed)
    draw = ImageDraw.Draw(canvas)
    for panel in template.panels:
        left, top, right, bottom = _box_px(template, panel.box, pad)
        # A panel that touches the trim edge runs on into the bleed, so trimming leaves no white sliver.
        left = 0 if panel.box.x <= 0 else left
        top = 0 if panel.box.y <= 0 else top
        right = size[0] if panel.box.x + panel.box.w >= template.width else right
        bottom = size[1] if panel.box.y + panel.box.h >= template.height else bottom
        radius = round(panel.radius * template.px_per_unit)
        if radius:
            draw.rounded_rectangle((left, top, right - 1, bottom - 1), radius=radius, fill=panel.colour)
        else:
            draw.rectangle((left, top, right - 1, bottom - 1), fill=panel.colour)
    return canvas


def _texts(template: PosterTemplate, fields: Mapping[str, str | None]) -> list[tuple[int, str]]:
    out = []
    for index, box in enumerate(template.texts):
        value = box.text if box.field == "text" else (fields.get(box.field) or box.default)
        if value:
            out.append((index, value))
    given = {f for f, v in fields.items() if v}
    placed = {t.field for t in template.texts}
    for missing in sorted(given - placed):
        raise FieldError(missing, f"模板 {template.name} 没有放{missing}的位置。",
                         f"The template {template.name} has no place for a {missing}.")
    return out


def render_poster(code_image: bytes, code_type: CodeType, template: PosterTemplate, fields: PosterFields, *,
                  record_values: Mapping[str, str | None], logo: bytes | None = None, fmt: PosterFormat = "png",
                  bleed: bool = False) -> bytes:
    """The poster as PNG (dpi set) or PDF (exact physical page) bytes.

    Raises FieldError (bilingual) for an unknown placeholder, a text that cannot fit, an unreadable
    or SVG logo, a logo a square code cannot carry, or bleed on a screen template.
    """
    if bleed and template.kind != "print":
        raise FieldError("bleed", f"{template.name} 是屏幕模板，没有出血。",
                         f"{template.name} is a screen template; it has no bleed.")
    texts = _texts(template, fields.filled(record_values))
    logo_img = open_image(logo, "logo") if logo is not None else None
    if logo_img is not None and max(logo_img.size) > template.code_px:
        # A logo never prints wider than the code: shrunk at once, a 40 Mpx one is not converted and composited
        # at full size (2.3 s and 320 MB more, measured). Pillow shrinks a palette image only with NEAREST, so
        # such a logo (most PNG logos) becomes RGBA first, as it would be for drawing anyway.
        if logo_img.mode not in ("RGB", "RGBA", "L", "LA"):
            logo_img = logo_img.convert("RGBA")
        logo_img.thumbnail((template.code_px, template.code_px), Image.Resampling.LANCZOS)
    pad = template.bleed_px(bleed)
    settings = []
    for index, value in texts:  # set every text before drawing anything: a text that overflows fails fast
        box = template.texts[index]
        size = round(box.size * template.dpi / PT_PER_INCH)
        min_size = round(box.min_size * template.dpi / PT_PER_INCH) if box.min_size else None
        settings.append((box, set_text(value, _box_px(template, box.box, pad), size, min_size, box.align,
                                       field=box.field, bold=box.bold)))
    tile = prepare_code(code_image, code_type, template.code_px, logo_img)
    canvas = _canvas(template, bleed)
    spot = (_px(template, template.code.x, pad), _px(template, template.code.y, pad))
    if tile.mode == "RGBA":
        canvas.paste(tile, spot, tile)
    else:
        canvas.paste(tile, spot)
    tile.close()
    draw = ImageDraw.Draw(canvas)
    for box, setting in settings:
        draw_setting(draw, setting, box.colour, box.bold)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", dpi=(template.dpi, template.dpi), compress_level=PNG_COMPRESS_LEVEL)
    canvas.close()
    png = buffer.getvalue()
    if fmt == "png":
        return png
    bleed_pt = BLEED_MM / MM_PER_INCH * PT_PER_INCH if bleed else 0.0
    return png_to_pdf(png, template.page_points(bleed), bleed_pt, title=template.name)


async def draw_poster(code_image: bytes, code_type: CodeType, template: PosterTemplate, fields: PosterFields, *,
                      record_values: Mapping[str, str | None], logo: bytes | None = None,
                      fmt: PosterFormat = "png", bleed: bool = False) -> bytes:
    """:func:`render_poster` in a worker process within :data:`POSTER_BUDGET`, the event loop serving meanwhile."""
    face = await asyncio.to_thread(fonts.chosen)  # the first lookup reads the font files: not on the loop
    return await workers.run(_render_in_worker, face, code_image, code_type, template, fields, dict(record_values),
                             logo, fmt, bleed, budget=POSTER_BUDGET)


def _render_in_worker(face: tuple[str, int] | None, code_image: bytes, code_type: CodeType, template: PosterTemplate,
                      fields: PosterFields, record_values: dict[str, str | None], logo: bytes | None,
                      fmt: PosterFormat, bleed: bool) -> bytes:
    fonts.use_face(face)
    return render_poster(code_image, code_type, template, fields, record_values=record_values, logo=logo, fmt=fmt,
                         bleed=bleed)


workers.preload(__name__)
