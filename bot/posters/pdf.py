"""A one-page PDF of exactly the template's physical size, holding the poster's PNG losslessly.

Pillow's PDF writer derives the page from whole pixels and a dpi (A4 at 300 dpi comes out 595.2 pt
wide, not 595.28), so the page is written here: MediaBox from the millimetres, TrimBox and BleedBox
when there is bleed, and the PNG's own compressed rows as a FlateDecode image with the PNG predictor
(no second compression, so a PDF costs about what its PNG does).
"""

from __future__ import annotations

import struct

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_rows(png: bytes) -> tuple[int, int, bytes]:
    """Width, height and the concatenated IDAT data of an 8-bit RGB, non-interlaced PNG."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG")
    pos, idat, header = len(PNG_SIGNATURE), bytearray(), None
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise ValueError("PNG without IHDR")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour != 2 or interlace != 0:
        raise ValueError("the PDF page needs an 8-bit RGB non-interlaced PNG")
    return width, height, bytes(idat)


def _num(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


def png_to_pdf(png: bytes, page_pt: tuple[float, float], bleed_pt: float = 0.0, *, title: str = "") -> bytes:
    """The PNG filling a page of ``page_pt`` points (bleed included); TrimBox inset by ``bleed_pt``."""
    width, height, rows = _png_rows(png)
    page_w, page_h = page_pt
    media = f"[0 0 {_num(page_w)} {_num(page_h)}]"
    boxes = f"/MediaBox {media} /CropBox {media}"
    if bleed_pt:
        trim = f"[{_num(bleed_pt)} {_num(bleed_pt)} {_num(page_w - bleed_pt)} {_num(page_h - bleed_pt)}]"
        boxes += f" /BleedBox {media} /TrimBox {trim}"
    content = f"q {_num(page_w)} 0 0 {_num(page_h)} 0 0 cm /Im0 Do Q".encode("ascii")
    safe_title = "".join(ch for ch in title if ch.isascii() and ch.isprintable() and ch not in "()\\")
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R {boxes} /Resources << /XObject << /Im0 4 0 R >> >> "
        f"/Contents 5 0 R >>".encode("ascii"),
        f"<< /Type /XObject /Subtype /Image /Width {width} /Height {height} /ColorSpace /DeviceRGB "
        f"/BitsPerComponent 8 /Filter /FlateDecode /DecodeParms << /Predictor 15 /Colors 3 "
        f"/BitsPerComponent 8 /Columns {width} >> /Length {len(rows)} >>\nstream\n".encode("ascii")
        + rows + b"\nendstream",
        f"<< /Length {len(content)} >>\nstream\n".encode("ascii") + content + b"\nendstream",
        f"<< /Producer (minpcode) /Title ({safe_title}) >>".encode("ascii"),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode("ascii") + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode("ascii")
    out += b"".join(f"{offset:010d} 00000 n \n".encode("ascii") for offset in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {len(objects)} 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode("ascii")
    return bytes(out)


__all__ = ["png_to_pdf"]
