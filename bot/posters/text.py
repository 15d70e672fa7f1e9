"""Setting a field in its box: shrink to fit on one line, then wrap, and never overflow.

Chinese breaks between any two characters; English only at spaces (a word longer than the box is
broken by characters as a last resort). Closing punctuation never starts a line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from PIL import ImageDraw, ImageFont

from bot.errors import FieldError
from bot.posters import fonts

LINE_SPACING = 1.25  # baseline to baseline, times the font size
# Ink of one line: CJK sits from 0.88 em above the baseline to 0.12 em below, Latin descenders to ~0.24.
ASCENT, LINE_BOX = 0.88, 1.12
BOLD_STROKE = 0.025  # the font ships one weight; bold is a stroke of this many em
SHRINK_FLOOR = 0.7  # one line down to 70% of the size before wrapping
WRAP_FLOOR = 0.35  # wrapped text down to 35%
STEP = 0.95
_TOKEN = re.compile(r"[A-Za-z0-9@#&%'’\-_.:/+]+|\s+|.", re.S)
_NO_LINE_START = set("，。！？；：、）》」』】,.!?;:)]}%")


@dataclass(frozen=True)
class Line:
    text: str
    width: float


@dataclass(frozen=True)
class Setting:
    """Where a text goes: font size in pixels, its lines, and the pixel box it stays inside."""

    size_px: int
    lines: tuple[Line, ...]
    box: tuple[int, int, int, int]  # left, top, right, bottom
    align: str

    @property
    def line_height(self) -> int:
        return math.ceil(self.size_px * LINE_SPACING)


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    for token in _TOKEN.findall(text):
        if out and token in _NO_LINE_START:
            out[-1] += token
        else:
            out.append(token)
    return out


def _wrap(text: str, face: ImageFont.FreeTypeFont, width: float) -> list[str] | None:
    lines: list[str] = []
    current = ""
    for token in _tokens(text):
        candidate = current + token
        if face.getlength(candidate.strip()) <= width:
            current = candidate
            continue
        if current.strip():
            lines.append(current.strip())
        current = token.lstrip()
        while face.getlength(current) > width:  # one word wider than the box: break it by characters
            cut = 1
            while cut < len(current) and face.getlength(current[:cut + 1]) <= width:
                cut += 1
            if face.getlength(current[:cut]) > width:
                return None
            lines.append(current[:cut])
            current = current[cut:]
    if current.strip():
        lines.append(current.strip())
    return lines


def _stroke(size: int, bold: bool) -> int:
    return max(1, round(size * BOLD_STROKE)) if bold else 0


def _block_height(size: int, lines: int) -> float:
    return size * LINE_BOX + (lines - 1) * math.ceil(size * LINE_SPACING)


def _fits(lines: list[str], face: ImageFont.FreeTypeFont, size: int, box_w: float, box_h: float,
          bold: bool) -> bool:
    pad = 2 * _stroke(size, bold)
    return (_block_height(size, len(lines)) + pad <= box_h
            and all(face.getlength(line) + pad <= box_w for line in lines))


def set_text(text: str, box: tuple[int, int, int, int], size_px: int, min_px: int | None, align: str,
             field: str = "title", bold: bool = False) -> Setting:
    """Choose the size and lines for ``text`` in ``box``; FieldError when even the smallest size overflows."""
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    one_line = [" ".join(text.split())]
    floor = min_px or max(1, round(size_px * SHRINK_FLOOR))
    size = min(size_px, math.floor(height / LINE_BOX))
    while size >= floor:
        face = fonts.font(size)
        if _fits(one_line, face, size, width, height, bold):
            return Setting(size, (Line(one_line[0], face.getlength(one_line[0])),), box, align)
        size = min(size - 1, math.floor(size * STEP))
    size = min(size_px, math.floor(height / LINE_BOX))
    while size >= max(1, round(size_px * WRAP_FLOOR)):
        face = fonts.font(size)
        wrapped = _wrap(one_line[0], face, width - 2 * _stroke(size, bold))
        if wrapped and _fits(wrapped, face, size, width, height, bold):
            return Setting(size, tuple(Line(t, face.getlength(t)) for t in wrapped), box, align)
        size = min(size - 1, math.floor(size * STEP))
    raise FieldError(field, f"「{text[:20]}…」太长，放不进这个模板的{field}区域，请缩短。",
                     f"The {field} {text[:30]!r}… is too long for this template's {field} box; shorten it.")


def draw_setting(draw: ImageDraw.ImageDraw, setting: Setting, colour: str, bold: bool) -> None:
    """Draw the lines centred vertically in the box, aligned left, centre or right."""
    size = setting.size_px
    face = fonts.font(size)
    stroke = _stroke(size, bold)
    left, top, right, bottom = setting.box
    baseline = top + (bottom - top - _block_height(size, len(setting.lines))) / 2 + size * ASCENT
    for line in setting.lines:
        if setting.align == "left":
            x, anchor = float(left + stroke), "ls"
        elif setting.align == "right":
            x, anchor = float(right - stroke), "rs"
        else:
            x, anchor = (left + right) / 2, "ms"
        draw.text((x, baseline), line.text, font=face, fill=colour, anchor=anchor,
                  stroke_width=stroke, stroke_fill=colour)
        baseline += setting.line_height
