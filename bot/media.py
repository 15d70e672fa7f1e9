"""Image types: told by the bytes, named by one mime ↔ extension table (a leaf)."""

from __future__ import annotations

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PDF_MAGIC = b"%PDF-"

EXTENSIONS: dict[str, str] = {
    "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp",
    "application/pdf": "pdf", "application/zip": "zip",
}
MIMES: dict[str, str] = {ext: mime for mime, ext in EXTENSIONS.items()} | {"jpeg": "image/jpeg"}


def sniff(content: bytes) -> str | None:
    """The type told by the bytes themselves; Content-Type headers are not trusted."""
    if content.startswith(JPEG_MAGIC):
        return "image/jpeg"
    if content.startswith(PNG_MAGIC):
        return "image/png"
    if content.startswith(PDF_MAGIC):
        return "application/pdf"
    return None


def extension(mime: str | None, default: str = "jpg") -> str:
    return EXTENSIONS.get(mime or "", default)


def mime_for(extension_or_name: str) -> str | None:
    return MIMES.get(extension_or_name.rsplit(".", 1)[-1].lower())


__all__ = ["EXTENSIONS", "JPEG_MAGIC", "MIMES", "PDF_MAGIC", "PNG_MAGIC", "extension", "mime_for", "sniff"]
