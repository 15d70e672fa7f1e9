"""Rendering one poster: background, panels, the code, the texts; PNG (with its dpi) or PDF bytes.

One poster at a time, built on one canvas that is released when the bytes are returned, so a batch
of 300 never holds more than the poster being drawn.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

from PIL import Image, ImageDraw

from bot.errors import FieldError
from bot.models import CodeType
from bot.posters.code import prepare_code
from bot.posters.images import open_image
from bot.posters.pdf import png_to_pdf
from bot.posters.request import PosterFields, PosterFormat
from bot.posters.templates import BLEED_MM, MM_PER_INCH, PT_PER_INCH, Box, PosterTemplate
from bot.posters.text import draw_setting, set_text

PNG_COMPRESS_LEVEL = 6


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
