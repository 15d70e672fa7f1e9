"""The code on the poster: sharp at its printed size, and a logo that keeps it scannable.

Round A/B codes are never upscaled with smoothing (NEAREST only, and :func:`sharpness` tells the
caller when a sharper copy from WeChat is needed). A square C/QR code is read with zxing and redrawn
from its modules at a whole number of pixels per module, so it is crisp at any size.
"""

from __future__ import annotations

import io
import math

import numpy as np
import zxingcpp
from PIL import Image, ImageDraw
from pydantic import BaseModel

from bot.errors import FieldError
from bot.models import WIDTH_MAX, WIDTH_MIN, CodeType
from bot.posters.images import open_image
from bot.posters.templates import PosterTemplate

AVATAR_SHARE = 0.44  # WeChat's avatar disc spans about 44% of a round code's width
LOGO_IN_DISC = 0.9  # the logo inside its white disc, leaving a white ring
QUIET_MODULES = 4
# Share of the QR symbol's side a centred logo may cover, by error-correction level; each is tried
# and checked with zxing, then smaller ones, so a code that does not survive never ships.
LOGO_SHARE = {"H": 0.30, "Q": 0.26, "M": 0.22, "L": 0.14}
SUPERSAMPLE = 4
QR_ONLY = zxingcpp.BarcodeFormats([zxingcpp.BarcodeFormat.QRCode])


class Sharpness(BaseModel):
    """How sharp a code prints on a template, and what to ask WeChat for to be sharp enough."""

    printed_inches: float
    pixels_needed: int  # across the code, for the template's dpi
    wechat_width: int  # the ``width`` to ask for (280–1280)
    best_dpi: float  # the dpi WeChat's largest image (1280 px) reaches at this size
    image_pixels: int | None = None
    image_dpi: float | None = None  # what the given image reaches
    enough: bool | None = None  # the given image prints at the template's dpi (None: no image given)


def image_width(image: bytes) -> int:
    with Image.open(io.BytesIO(image)) as img:
        return int(img.width)


def sharpness(template: PosterTemplate, code_image: bytes | None = None, *,
              code_type: CodeType | None = None) -> Sharpness:
    """Which WeChat width this template needs, and the dpi a given code image reaches on it.

    A square C code is redrawn from its modules, so any image zxing can read is sharp enough.
    """
    inches = template.code_inches
    needed = template.code_pixels_needed()
    wechat = min(WIDTH_MAX, max(WIDTH_MIN, needed))
    result = Sharpness(printed_inches=inches, pixels_needed=needed, wechat_width=wechat,
                       best_dpi=round(WIDTH_MAX / inches, 1))
    if code_image is None:
        return result
    pixels = image_width(code_image)
    dpi = round(pixels / inches, 1)
    enough = pixels >= needed or (code_type is CodeType.C and _read(open_image(code_image, "code")) is not None)
    return result.model_copy(update={"image_pixels": pixels, "image_dpi": dpi, "enough": enough})


def _read(img: Image.Image) -> zxingcpp.Barcode | None:
    found = [b for b in zxingcpp.read_barcodes(img, formats=QR_ONLY) if b.valid]
    return found[0] if len(found) == 1 else None


def _on_white(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "P"):
        rgba = img.convert("RGBA")
        base = Image.new("RGBA", rgba.size, "white")
        return Image.alpha_composite(base, rgba).convert("RGB")
    return img.convert("RGB")


def _redraw_qr(code: zxingcpp.Barcode, side: int) -> Image.Image | None:
    """The QR's modules at the largest whole number of pixels per module that fits ``side``, on white."""
    modules = np.asarray(code.to_image(scale=1, add_quiet_zones=False))
    count = int(modules.shape[0])
    scale = side // (count + 2 * QUIET_MODULES)
    if scale < 1:
        return None
    matrix = Image.fromarray(modules).convert("L")
    drawn = matrix.resize((count * scale, count * scale), Image.Resampling.NEAREST)
    tile = Image.new("RGB", (side, side), "white")
    offset = (side - drawn.width) // 2
    tile.paste(drawn.convert("RGB"), (offset, offset))
    return tile


def _fit_round(img: Image.Image, side: int) -> Image.Image:
    """Fit into ``side``×``side``: shrink with Lanczos, grow only with NEAREST (never smoothed)."""
    ratio = side / max(img.width, img.height)
    size = (max(1, round(img.width * ratio)), max(1, round(img.height * ratio)))
    method = Image.Resampling.LANCZOS if ratio < 1 else Image.Resampling.NEAREST
    return img.resize(size, method) if size != img.size else img


def _circle_mask(diameter: int) -> Image.Image:
    """An antialiased disc: drawn large and shrunk, so the edge is smooth without any rim."""
    big = Image.new("L", (diameter * SUPERSAMPLE, diameter * SUPERSAMPLE), 0)
    ImageDraw.Draw(big).ellipse((0, 0, big.width - 1, big.height - 1), fill=255)
    return big.resize((diameter, diameter), Image.Resampling.LANCZOS)


def _square_crop(img: Image.Image, side: int) -> Image.Image:
    edge = min(img.width, img.height)
    left, top = (img.width - edge) // 2, (img.height - edge) // 2
    return img.crop((left, top, left + edge, top + edge)).resize((side, side), Image.Resampling.LANCZOS)


def place_round_logo(code: Image.Image, logo: Image.Image) -> Image.Image:
    """Cover the avatar of a round code: a white disc ≤ 44% of the width, the logo circle-cropped inside."""
    out = code.convert("RGBA")
    disc = math.floor(min(out.width, out.height) * AVATAR_SHARE)
    inner = round(disc * LOGO_IN_DISC)
    centre = (out.width // 2, out.height // 2)
    white = Image.new("RGBA", (disc, disc), (255, 255, 255, 255))
    out.paste(white, (centre[0] - disc // 2, centre[1] - disc // 2), _circle_mask(disc))
    face = _square_crop(_on_white(logo), inner)
    out.paste(face, (centre[0] - inner // 2, centre[1] - inner // 2), _circle_mask(inner))
    return out if code.mode == "RGBA" else out.convert("RGB")


def _square_logo(tile: Image.Image, logo: Image.Image, symbol_px: int, share: float) -> Image.Image:
    side = max(4, round(symbol_px * share))
    pad = max(2, side // 12)
    out = tile.copy()
    plate = Image.new("RGB", (side, side), "white")
    plate.paste(_square_crop(_on_white(logo), side - 2 * pad), (pad, pad))
    mask = Image.new("L", (side * SUPERSAMPLE, side * SUPERSAMPLE), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, mask.width - 1, mask.height - 1), radius=side * SUPERSAMPLE // 6,
                                           fill=255)
    out.paste(plate, ((out.width - side) // 2, (out.height - side) // 2),
              mask.resize((side, side), Image.Resampling.LANCZOS))
    return out


def place_square_logo(tile: Image.Image, logo: Image.Image, text: str, ec_level: str, symbol_px: int) -> Image.Image:
    """A small logo in the centre of a QR, as large as its error correction survives (checked with zxing)."""
    share = LOGO_SHARE.get(ec_level.upper()[:1], LOGO_SHARE["L"])
    while share >= 0.08:
        candidate = _square_logo(tile, logo, symbol_px, share)
        found = _read(candidate)
        if found is not None and found.text == text:
            return candidate
        share -= 0.03
    raise FieldError("logo", "这个方形码的纠错能力不够放下标志：放上标志后无法扫描，请不加标志或改用圆形 A/B 码。",
                     "This square code's error correction cannot carry a logo: with one it no longer scans. "
                     "Leave the logo out or use a round A/B code.")


def prepare_code(code_image: bytes, code_type: CodeType, side: int, logo: Image.Image | None) -> Image.Image:
    """The code as it goes on the poster: ``side`` pixels square (RGBA when it came transparent)."""
    img = open_image(code_image, "code")
    if code_type is CodeType.C:
        found = _read(_on_white(img))
        tile = _redraw_qr(found, side) if found is not None else None
        if found is not None and tile is not None:
            if logo is not None:
                count = int(np.asarray(found.to_image(scale=1, add_quiet_zones=False)).shape[0])
                symbol_px = count * (side // (count + 2 * QUIET_MODULES))
                tile = place_square_logo(tile, logo, found.text, found.ec_level or "L", symbol_px)
            return tile
        if logo is not None:
            raise FieldError("logo", "读不出这个方形码，无法确认加标志后仍能扫描，请不加标志。",
                             "This square code could not be read, so a logo cannot be checked to keep it scannable; "
                             "leave the logo out.")
        return _centre(_fit_round(_on_white(img), side), side, transparent=False)
    if code_type.is_link:
        raise FieldError("type", "链接没有图片，不能做海报。", "A link has no image, so it cannot go on a poster.")
    transparent = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    base = img.convert("RGBA") if transparent else img.convert("RGB")
    fitted = _fit_round(base, side)
    if logo is not None:  # on the fitted code, so the logo is drawn at print resolution
        fitted = place_round_logo(fitted, logo)
    return _centre(fitted, side, transparent=transparent)


def _centre(img: Image.Image, side: int, *, transparent: bool) -> Image.Image:
    if img.size == (side, side):
        return img
    tile = Image.new("RGBA" if transparent else "RGB", (side, side), (255, 255, 255, 0) if transparent else "white")
    tile.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
    return tile
