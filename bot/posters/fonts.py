"""Pillow fonts for posters, from the one CJK font lookup in ``bot.chart`` (env, package, system).

The Noto Sans CJK collection holds JP/KR/SC/TC/HK faces; posters use the Simplified Chinese face
(its Latin glyphs cover English too). Fonts are cached per pixel size and thread: a 300-row batch opens
each size once.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

from PIL import ImageFont

from bot.chart import SC_FACES, cjk_font
from bot.errors import MinpcodeError

PREFERRED_FACES = SC_FACES
MAX_FACES = 16  # a .ttc holds a handful; stop looking well after


class FontMissing(MinpcodeError):
    """No CJK font is installed: a poster in Chinese cannot be set."""

    def __init__(self) -> None:
        super().__init__("找不到中文字体，无法生成海报：请安装 noto-cjk-sans-otc（pip install noto-cjk-sans-otc）或设置 MINPCODE_CJK_FONT。",
                         "No CJK font is installed, so no poster can be set: install noto-cjk-sans-otc "
                         "(pip install noto-cjk-sans-otc) or set MINPCODE_CJK_FONT.")


@functools.lru_cache(maxsize=1)
def _face() -> tuple[str, int]:
    found = cjk_font()
    if found is None:
        raise FontMissing()
    path: Path = found[1]
    if path.suffix.lower() not in (".ttc", ".otc"):
        return str(path), 0
    names: list[str] = []
    for index in range(MAX_FACES):
        try:
            names.append(ImageFont.truetype(str(path), 12, index=index).getname()[0] or "")
        except OSError:  # past the last face of the collection
            break
    for wanted in PREFERRED_FACES:
        if wanted in names:
            return str(path), names.index(wanted)
    return str(path), 0


_local = threading.local()  # a FreeType face is not safe to share between threads: one set per thread
MAX_SIZES = 64
_given: tuple[str, int] | None = None  # in a worker process: the face the serving process chose


def chosen() -> tuple[str, int] | None:
    """(file, index in the collection) of the face posters are set in; None when no CJK font is installed."""
    try:
        return _given or _face()
    except FontMissing:
        return None


def use_face(face: tuple[str, int] | None) -> None:
    """In a worker process (bot/workers.py): set posters in the face the serving process chose, so the
    operator's ``MINPCODE_CJK_FONT`` holds there too and no child looks for fonts again (a second each)."""
    global _given
    _given = face
    _local.__dict__.pop("fonts", None)


def font(size_px: int) -> ImageFont.FreeTypeFont:
    cache: dict[int, ImageFont.FreeTypeFont] = _local.__dict__.setdefault("fonts", {})
    size = max(1, size_px)
    found = cache.get(size)
    if found is None:
        if len(cache) >= MAX_SIZES:
            cache.clear()
        path, index = _given or _face()
        found = cache[size] = ImageFont.truetype(path, size, index=index)
    return found


def reset() -> None:
    """Forget the chosen face and this thread's sizes (tests that change ``MINPCODE_CJK_FONT``)."""
    global _given
    _given = None
    _face.cache_clear()
    _local.__dict__.pop("fonts", None)
