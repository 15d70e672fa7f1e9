"""What a sandbox code says when scanned, and real QR image bytes for it.

A sandbox image is a real QR code (segno) whose text is a URL naming the app, the code kind, the
page and the scene, so a test can decode it and check it is the code that was asked for:

    https://wxa.sandbox.minpcode/<appid>/<kind>?page=<page or path>&scene=<scene>

``kind`` is ``A``, ``B`` or ``C``; ``page`` is the path with its query for A/C, the page for B.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

import segno
from PIL import Image

SANDBOX_HOST = "wxa.sandbox.minpcode"


@dataclass(frozen=True)
class ScannedCode:
    appid: str
    kind: str
    page: str
    scene: str | None


def code_url(appid: str, kind: str, page: str, scene: str | None = None) -> str:
    url = f"https://{SANDBOX_HOST}/{appid}/{kind}?page={quote(page, safe='')}"
    if scene is not None:
        url += f"&scene={quote(scene, safe='')}"
    return url


def parse_code_url(text: str) -> ScannedCode:
    """The inverse of :func:`code_url`; ValueError for any other text."""
    parts = urlsplit(text)
    if parts.hostname != SANDBOX_HOST:
        raise ValueError(f"not a sandbox code: {text!r}")
    appid, kind = parts.path.strip("/").split("/", 1)
    query = parse_qs(parts.query, keep_blank_values=True)
    scene = query["scene"][0] if "scene" in query else None
    return ScannedCode(appid=appid, kind=kind, page=query.get("page", [""])[0], scene=scene)


def render(text: str, width: int = 430, fmt: str = "JPEG", transparent: bool = False) -> bytes:
    """A square QR image close to ``width`` pixels, as JPEG or PNG bytes."""
    qr = segno.make(text, error="m")
    modules = qr.symbol_size(scale=1, border=4)[0]
    scale = max(2, width // modules)
    buf = io.BytesIO()
    qr.save(buf, kind="png", scale=scale, border=4, light=None if transparent else "white")
    drawn = Image.open(io.BytesIO(buf.getvalue())).convert("RGBA")
    if drawn.width > width:  # a dense code at a small width: whole pixels per module cannot fit
        drawn = drawn.resize((width, width), Image.Resampling.NEAREST)
    # WeChat answers an image of about the width asked; ours is exactly that wide, the code centred.
    image = Image.new("RGBA", (width, width), (255, 255, 255, 0) if transparent else "white")
    offset = (width - drawn.width) // 2
    image.alpha_composite(drawn, (offset, offset))
    out = io.BytesIO()
    if fmt.upper() == "PNG":
        image.convert("RGBA" if transparent else "RGB").save(out, format="PNG")
    else:
        image.convert("RGB").save(out, format="JPEG", quality=90)
    return out.getvalue()
