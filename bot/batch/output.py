"""A batch's result: manifest rows, ``manifest.csv`` (UTF-8 with BOM, for Excel), ``manifest.xlsx``,
and a zip of the images named by each row's name (safe file names, Chinese kept, collisions numbered),
with each row's poster under ``posters/``, named the same way, as PNG or PDF. Every exported cell is text, never
a formula (:func:`csv_bytes`, :func:`xlsx_bytes`)."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel

from bot.batch.models import BatchRow, RowStatus

if TYPE_CHECKING:
    from bot.posters.service import Posters
    from storage import Storage

MANIFEST_COLUMNS = ("row", "id", "status", "name", "type", "page", "scene", "campaign", "channel",
                    "tracking_url", "link", "expires_at", "poster", "error")
POSTERS_DIR = "posters"
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')
_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


class ManifestRow(BaseModel):
    row: int
    id: str | None = None
    status: RowStatus
    name: str | None = None
    type: str | None = None
    page: str | None = None
    scene: str | None = None
    campaign: str | None = None
    channel: str | None = None
    tracking_url: str | None = None
    link: str | None = None
    expires_at: str | None = None  # when a link stops working (ISO 8601, UTC); empty for codes and lasting links
    poster: str | None = None  # the poster's file name in the zip's posters/ folder
    error: str | None = None
    image_sha256: str | None = None  # not a manifest column: where the zip finds the image
    poster_id: str | None = None  # not a manifest column: the stored poster

    def cells(self) -> list[str]:
        values = self.model_dump(include=set(MANIFEST_COLUMNS))
        return ["" if values[c] is None else str(values[c]) for c in MANIFEST_COLUMNS]


def manifest_rows(rows: list[BatchRow], storage: Storage) -> list[ManifestRow]:
    found = []
    for row in rows:
        record = storage.history.get(row.code_id) if row.code_id else None
        f = row.fields
        item = ManifestRow(row=row.line, status=row.status, name=f.get("name"), type=f.get("type"),
                           page=f.get("page"), scene=f.get("scene"), campaign=f.get("campaign"),
                           channel=f.get("channel"), error=(row.error or "").replace("\n", " / ") or None)
        if record is not None:
            item = item.model_copy(update={
                "id": record.id, "name": f.get("name") or record.name, "type": record.type.value,
                "page": record.page, "scene": record.scene, "campaign": record.campaign, "channel": record.channel,
                "tracking_url": record.tracking_url, "link": record.link,
                "expires_at": record.expires_at.isoformat() if record.expires_at else None,
                "image_sha256": record.image_sha256 if row.status in (RowStatus.DONE, RowStatus.REUSED) else None})
        found.append(item)
    return _with_poster_names(found, {r.line: r.poster_id for r in rows if r.poster_id}, storage)


def _with_poster_names(rows: list[ManifestRow], ids: dict[int, str], storage: Storage) -> list[ManifestRow]:
    formats: dict[int, str] = {}
    for line, poster_id in ids.items():
        stored = storage.posters.get(poster_id)
        if stored is not None:
            formats[line] = stored.format
    names = numbered([(r.row, safe_name(r.name or "", f"row-{r.row}"), formats[r.row]) for r in rows if r.row in formats],
                     by_stem=True)
    return [r.model_copy(update={"poster_id": ids[r.row], "poster": names[r.row]}) if r.row in names else r
            for r in rows]


def manifest_csv(rows: list[ManifestRow]) -> bytes:
    return csv_bytes(MANIFEST_COLUMNS, [r.cells() for r in rows])


def manifest_xlsx(rows: list[ManifestRow]) -> bytes:
    return xlsx_bytes("manifest", MANIFEST_COLUMNS, [[int(r.row), *r.cells()[1:]] for r in rows])


# A spreadsheet runs a cell that starts with one of these as a formula, and a sheet's name or scene
# may start with any of them (WeChat's scene alphabet has = + - @). OWASP's CSV Injection page
# (https://owasp.org/www-community/attacks/CSV_Injection) recommends prefixing such a cell with a
# single quote, which Excel and WPS take as "this is text" and which a person still reads past.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: str) -> str:
    """An exported CSV cell as inert text (OWASP's neutralisation); any other value as given."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def csv_bytes(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    """Every CSV export: UTF-8 with BOM, each cell through :func:`csv_text`."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow([csv_text(c) for c in columns])
    writer.writerows([csv_text(c) for c in row] for row in rows)
    return buffer.getvalue().encode("utf-8-sig")  # the BOM makes Excel read the Chinese as UTF-8


def xlsx_bytes(title: str, columns: Sequence[str], rows: Iterable[Sequence[str | int]]) -> bytes:
    """Every XLSX export: a string is a string cell, never a formula (openpyxl makes any ``=…`` a
    formula on assignment), so the cell keeps the person's text; those that would be formulas also
    get Excel's quote prefix, so editing the cell does not turn it into one."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title
    for r, values in enumerate([list(columns), *rows], start=1):
        for c, value in enumerate(values, start=1):
            cell = sheet.cell(row=r, column=c, value=value)
            if isinstance(value, str):
                cell.data_type = "s"
                cell.quotePrefix = value.startswith(FORMULA_STARTS)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def safe_name(name: str, fallback: str) -> str:
    """A file name every OS accepts: no separators or control characters; Chinese and spaces kept."""
    cleaned = _UNSAFE.sub("_", unicodedata.normalize("NFC", name)).strip(" ._")
    cleaned = cleaned[:80].rstrip(" .")
    if not cleaned or cleaned.casefold() in _RESERVED:
        return fallback
    return cleaned


def numbered(items: list[tuple[int, str, str]], *, by_stem: bool = False) -> dict[int, str]:
    """(row, base name, extension) -> row's file name; a second ``门店`` becomes ``门店-2`` (case-insensitively
    unique). ``by_stem``: names differing only in extension collide too (a PNG and a PDF poster)."""
    taken: set[str] = set()
    names: dict[int, str] = {}
    for row, base, ext in items:
        stem, n = base, 2
        while (stem if by_stem else f"{stem}.{ext}").casefold() in taken:
            stem, n = f"{base}-{n}", n + 1
        taken.add((stem if by_stem else f"{stem}.{ext}").casefold())
        names[row] = f"{stem}.{ext}"
    return names


def image_names(rows: list[ManifestRow], mimes: dict[str, str]) -> dict[int, str]:
    """Row -> image file name in the zip (:func:`numbered`)."""
    return numbered([(r.row, safe_name(r.name or "", f"row-{r.row}"), _EXT.get(mimes.get(r.image_sha256, ""), "jpg"))
                     for r in rows if r.image_sha256])


def result_zip(rows: list[ManifestRow], storage: Storage, posters: Posters) -> bytes:
    images: dict[str, tuple[bytes, str]] = {}
    for r in rows:
        if r.image_sha256 and r.image_sha256 not in images:
            got = storage.images.get(r.image_sha256)
            if got is not None:
                images[r.image_sha256] = got
    names = image_names([r for r in rows if r.image_sha256 in images], {k: v[1] for k, v in images.items()})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for r in rows:
            if r.row in names and r.image_sha256:
                # Already compressed images: stored, not deflated again.
                archive.writestr(zipfile.ZipInfo(names[r.row]), images[r.image_sha256][0],
                                 compress_type=zipfile.ZIP_STORED)
        for r in rows:
            if r.poster and r.poster_id:
                _, data = posters.get(r.poster_id)
                packed = zipfile.ZIP_STORED if r.poster.endswith(".png") else zipfile.ZIP_DEFLATED
                archive.writestr(zipfile.ZipInfo(f"{POSTERS_DIR}/{r.poster}"), data, compress_type=packed)
        archive.writestr("manifest.csv", manifest_csv(rows))
        archive.writestr("manifest.xlsx", manifest_xlsx(rows))
    return buffer.getvalue()


__all__ = ["FORMULA_STARTS", "MANIFEST_COLUMNS", "POSTERS_DIR", "ManifestRow", "csv_bytes", "csv_text", "image_names", "numbered",
           "manifest_csv", "manifest_rows", "manifest_xlsx", "result_zip", "safe_name", "xlsx_bytes"]
