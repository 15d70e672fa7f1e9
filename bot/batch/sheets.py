"""Reading a sheet of code requests: CSV (UTF-8, UTF-8 with BOM, GBK/GB18030), XLSX, or pasted rows.

Everything here is pure: bytes or text in, a :class:`Sheet` out, or a bilingual :class:`SheetError`
(an :class:`~bot.errors.InputError`) before anything is stored. Values are kept as the person wrote
them; the field rules are the service's (``Service.prepare``), applied by the engine.

A file a person sends is read with :func:`load_sheet` (or :func:`load_sheet_sync`), and pasted rows with
:func:`load_pasted`, never :func:`read_sheet` or :func:`read_pasted` on the event loop: a few kilobytes of XLSX can ask for minutes and gigabytes (issue 22).
It runs :func:`read_sheet` in a worker process within :data:`BUDGET`, and :func:`read_sheet` refuses a
bomb from the zip's directory and a streamed count before openpyxl builds anything: the uncompressed
size of the parts, the shared strings, and the cells the rows actually span (the declared
``<dimension>`` is ignored).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Iterator
from typing import IO, Any
from xml.etree.ElementTree import ParseError, iterparse

from pydantic import BaseModel

from bot import workers
from bot.errors import InputError
from bot.fields import FLAGS, SHEET_FIELDS, field_key, header_names, request_name
from bot.text import Text

MAX_ROWS = 5_000
MAX_BYTES = 5 * 1024 * 1024
# What an XLSX may hold, far above any real sheet of MAX_ROWS rows and far below what hurts.
MAX_XLSX_TOTAL = 50 * 1024 * 1024  # all parts, uncompressed, as the zip's directory declares them
MAX_XLSX_PART = 25 * 1024 * 1024  # one part, uncompressed
MAX_XLSX_PARTS = 1_000
MAX_SHARED_STRINGS = 200_000
MAX_ROWS_PRESENT = 20 * MAX_ROWS  # <row> elements, blank ones included
MAX_CELLS = 1_000_000  # the cells the rows span, from column A to each row's last cell
BUDGET = workers.Budget(seconds=10, memory_mb=512, what=Text(zh="表格解析", en="reading the sheet"))
# ``blank`` (空码) is a sheet's own column: a row with blank=N stands for N blank live codes (no page yet, bound
# later with repoint), named after the row's name as a prefix: <name>-001, <name>-002, ….
BLANK = "blank"
BLANK_NAMES = {"blank": BLANK, "空码": BLANK}
COLUMNS = (*SHEET_FIELDS, BLANK)
_YES = {"yes", "y", "true", "1", "是", "on"}
_NO = {"no", "n", "false", "0", "否", "off", ""}


class SheetError(InputError):
    """The sheet as a whole cannot be read (encoding, no header, unknown columns, over the limits)."""


class SheetRow(BaseModel):
    line: int  # the line (CSV, pasted text) or row number (XLSX) a person sees in their editor
    fields: dict[str, Any]
    errors: list[tuple[str, str]] = []  # (zh, en) problems found while reading the cells


class Sheet(BaseModel):
    filename: str
    sha256: str
    encoding: str  # utf-8 | utf-8-sig | gb18030 | xlsx | text
    columns: list[str]
    rows: list[SheetRow]


def _too_big(size: int) -> SheetError:
    return SheetError(f"文件太大（{size / 1048576:.1f} MB），最多 5 MB。请拆成几个表。",
                      f"The file is too large ({size / 1048576:.1f} MB); the limit is 5 MB. Split it into several sheets.")


def _too_many(count: int) -> SheetError:
    return SheetError(f"表里有 {count} 行，一次最多 {MAX_ROWS} 行。请拆成几个表。",
                      f"The sheet has {count} rows; at most {MAX_ROWS} at a time. Split it into several sheets.")


def decode(raw: bytes) -> tuple[str, str]:
    """The text and the encoding it was found in: UTF-8 (BOM or not) first, then GB18030 (a superset of GBK)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw.decode("utf-8-sig"), "utf-8-sig"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        raise SheetError("无法读取文件的编码：CSV 须是 UTF-8 或 GBK/GB18030 编码（Excel 另存为 CSV UTF-8 即可）。",
                         "The file's encoding cannot be read: a CSV must be UTF-8 or GBK/GB18030 "
                         "(in Excel, save as 'CSV UTF-8').") from None


def _damaged() -> SheetError:
    return SheetError("这个 .xlsx 文件已损坏或不是 Excel 表格。", "This .xlsx file is damaged or not an Excel workbook.")


def _over(zh: str, en: str) -> SheetError:
    return SheetError(f"{zh}，这不像一张码表。请检查文件或拆成几个表。",
                      f"{en}; this does not look like a sheet of codes. Check the file or split it.")


async def load_sheet(data: bytes, filename: str) -> Sheet:
    """:func:`read_sheet` in a worker process within :data:`BUDGET`, the event loop serving meanwhile."""
    return await workers.run(read_sheet, data, filename, budget=BUDGET)


def load_sheet_sync(data: bytes, filename: str) -> Sheet:
    """:func:`load_sheet` for a caller without an event loop: the same worker and budgets."""
    return workers.run_sync(read_sheet, data, filename, budget=BUDGET)


async def load_pasted(text: str, filename: str = "pasted.txt") -> Sheet:
    """:func:`read_pasted` in a worker within :data:`BUDGET`: 5 MB of commas is a second and 150 MB of cells."""
    return await workers.run(read_pasted, text, filename, budget=BUDGET)


def read_sheet(data: bytes, filename: str) -> Sheet:
    """A CSV or XLSX file (chosen by its content, not only its name), in this process: see :func:`load_sheet`."""
    if len(data) > MAX_BYTES:
        raise _too_big(len(data))
    digest = hashlib.sha256(data).hexdigest()
    if data.startswith(b"PK\x03\x04"):
        cells = _xlsx_cells(data)
        return _build(cells, filename, digest, "xlsx", first_line=1)
    if filename.lower().endswith((".xlsx", ".xlsm")):
        raise _damaged()
    text, encoding = decode(data)
    return _build(_csv_cells(text, delimiter=","), filename, digest, encoding, first_line=1)


def read_pasted(text: str, filename: str = "pasted.txt") -> Sheet:
    """Rows pasted in a chat: a header line, then one line per code, comma or tab separated."""
    raw = text.encode("utf-8")
    if len(raw) > MAX_BYTES:
        raise _too_big(len(raw))
    lines = text.strip("\n").splitlines()
    head = lines[0] if lines else ""
    delimiter = "\t" if "\t" in head else ","  # a range copied from Excel pastes tab separated
    return _build(_csv_cells(text.lstrip("\ufeff"), delimiter=delimiter), filename,
                  hashlib.sha256(raw).hexdigest(), "text", first_line=1)


def _csv_cells(text: str, delimiter: str) -> list[list[str]]:
    rows: list[list[str]] = []
    filled = cells = 0
    try:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            cells += len(row)
            if cells > MAX_CELLS:  # one line of five million commas is a sheet of empty columns, not of codes
                raise _too_many_cells()
            rows.append(row)
            filled += any(c.strip() for c in row)
            if filled > MAX_ROWS + 1:
                break  # the header and one row too many: enough to refuse it
    except csv.Error as exc:
        raise SheetError(f"CSV 格式有误：{exc}。", f"The CSV is malformed: {exc}.") from None
    return rows


def _xlsx_cells(data: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        _check_parts(archive)
        _check_strings(archive)
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except SheetError:
        raise
    except Exception:  # openpyxl reports a broken part with whatever its parser raised
        raise _damaged() from None
    try:
        sheet = book.worksheets[0]
        if not hasattr(sheet, "_get_source"):  # a chartsheet first
            raise _damaged()
        with sheet._get_source() as source:
            _check_rows(source)
        sheet.reset_dimensions()  # never pad rows to the declared <dimension> (A1:XFD1048576 is a bomb)
        rows: list[list[str]] = []
        filled = 0
        for values in sheet.iter_rows(values_only=True):
            row = [_cell_text(v) for v in values]
            rows.append(row if any(c.strip() for c in row) else [])
            filled += bool(row)
            if filled > MAX_ROWS + 1:
                break  # the header and one row too many: enough to refuse it
        return rows
    except SheetError:
        raise
    except Exception:
        raise _damaged() from None
    finally:
        book.close()


def _check_parts(archive: zipfile.ZipFile) -> None:
    """The sizes the zip's directory declares, before anything is inflated (zipfile stops at the declared size)."""
    parts = archive.infolist()
    if len(parts) > MAX_XLSX_PARTS:
        raise _over(f"XLSX 里有 {len(parts)} 个部件，最多 {MAX_XLSX_PARTS} 个",
                    f"The XLSX holds {len(parts)} parts; the limit is {MAX_XLSX_PARTS}")
    total = sum(p.file_size for p in parts)
    if total > MAX_XLSX_TOTAL:
        raise _over(f"XLSX 解压后有 {total / 1048576:.0f} MB，最多 {MAX_XLSX_TOTAL // 1048576} MB",
                    f"The XLSX holds {total / 1048576:.0f} MB uncompressed; the limit is "
                    f"{MAX_XLSX_TOTAL // 1048576} MB uncompressed")
    for part in parts:
        if part.file_size > MAX_XLSX_PART:
            raise _over(f"XLSX 的 {part.filename} 解压后有 {part.file_size / 1048576:.0f} MB，"
                        f"一个部件最多 {MAX_XLSX_PART // 1048576} MB",
                        f"The XLSX part {part.filename} is {part.file_size / 1048576:.0f} MB uncompressed; "
                        f"the limit is {MAX_XLSX_PART // 1048576} MB a part")


def _elements(source: IO[bytes], *names: str) -> Iterator[Any]:
    """The start of each element named (any namespace), streamed: nothing is kept."""
    try:
        for _, element in iterparse(source, events=("start",)):
            if element.tag.rpartition("}")[2] in names:
                yield element
    except ParseError:
        raise _damaged() from None


def _check_strings(archive: zipfile.ZipFile) -> None:
    """Shared strings are read whole before any row, so they are counted first, in whichever part holds them."""
    for name in archive.namelist():
        if not name.lower().endswith(".xml") or "sharedstrings" not in name.lower():
            continue
        with archive.open(name) as source:
            for count, _ in enumerate(_elements(source, "si"), start=1):
                if count > MAX_SHARED_STRINGS:
                    raise _over(f"XLSX 的共享字符串超过 {MAX_SHARED_STRINGS} 个",
                                f"The XLSX has more than {MAX_SHARED_STRINGS:,} shared strings; the limit is "
                                f"{MAX_SHARED_STRINGS:,}")


_COLUMN = re.compile(r"[A-Za-z]{1,3}")


def _column(ref: str) -> int:
    letters = _COLUMN.match(ref)
    number = 0
    for ch in letters.group().upper() if letters else "":
        number = number * 26 + ord(ch) - 64
    return number


def _check_rows(source: IO[bytes]) -> None:
    """The rows present and the cells they span (what openpyxl fills in), streamed before it reads them."""
    rows = cells = width = 0
    for element in _elements(source, "row", "c"):
        if element.tag.endswith("row"):
            rows += 1
            cells += width
            width = 0
            if rows > MAX_ROWS_PRESENT:
                raise _over(f"表里有超过 {MAX_ROWS_PRESENT} 行（含空行）",
                            f"The sheet has more than {MAX_ROWS_PRESENT:,} rows, blank ones included; the limit "
                            f"is {MAX_ROWS_PRESENT:,}")
        else:
            width = max(width + 1, _column(element.get("r", "")))
        if cells + width > MAX_CELLS:
            raise _too_many_cells()


def _too_many_cells() -> SheetError:
    return _over(f"表里的行跨过超过 {MAX_CELLS} 个格子",
                 f"The sheet's rows span more than {MAX_CELLS:,} cells; the limit is {MAX_CELLS:,} cells")


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores 430 as 430.0
    return str(value)


def _build(cells: list[list[str]], filename: str, digest: str, encoding: str, first_line: int) -> Sheet:
    while cells and not any(c.strip() for c in cells[0]):
        cells = cells[1:]
        first_line += 1
    if not cells:
        raise SheetError("表是空的：第一行应是列名，如 page,type,scene。",
                         "The sheet is empty; its first line names the columns, e.g. page,type,scene.")
    names = header_names() | BLANK_NAMES
    header = [c.strip().lstrip("\ufeff").casefold() for c in cells[0]]
    while header and not header[-1]:
        header.pop()
    known = [field_key(h, names) for h in header]
    unknown = [cells[0][i].strip() for i, key in enumerate(known) if key is None]
    if not any(known):  # a header of columns we do not know, or a first line that is a row: name what it says
        shown = ", ".join(u for u in unknown if u) or "-"
        raise SheetError(f"第一行（表头）应是列名，但没有一个是认识的列：{shown}。可用的列：{', '.join(COLUMNS)}"
                         "（或中文列名，如 页面,类型,场景）。",
                         f"The first line (the header) should name the columns, but names none we know: {shown}. Columns: "
                         f"{', '.join(COLUMNS)} (or the Chinese names, e.g. 页面,类型,场景).")
    if unknown:
        raise SheetError(f"不认识的列：{', '.join(unknown)}。可用的列：{', '.join(COLUMNS)}（或中文列名）。",
                         f"Unknown column(s): {', '.join(unknown)}. Columns: {', '.join(COLUMNS)} (or the Chinese names).")
    keys = [k for k in known if k is not None]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise SheetError(f"这些列出现了不止一次：{', '.join(twice)}。", f"These columns appear more than once: {', '.join(twice)}.")
    body = [(first_line + 1 + i, row) for i, row in enumerate(cells[1:]) if any(c.strip() for c in row)]
    if len(body) > MAX_ROWS:
        raise _too_many(len(body))
    rows = _blanks([_row(line, keys, values) for line, values in body])
    if len(rows) > MAX_ROWS:
        raise _too_many(len(rows))
    return Sheet(filename=filename, sha256=digest, encoding=encoding, columns=keys, rows=rows)


def _blanks(rows: list[SheetRow]) -> list[SheetRow]:
    """Each row with blank=N becomes N live-code rows without a page, named ``<name>-001`` and on. Their lines
    follow the sheet's last line (each line of the sheet keeps its own number in the report); the first of
    them keeps the row's own line."""
    if not any(BLANK in r.fields for r in rows):
        return rows
    out: list[SheetRow] = []
    spare = max(r.line for r in rows) + 1
    for row in rows:
        raw = row.fields.pop(BLANK, None)
        if raw is None:
            out.append(row)
            continue
        count = str(raw).strip()
        if not (count.isascii() and count.isdecimal() and 1 <= int(count) <= MAX_ROWS):
            row.errors.append((f"blank（空码）须是 1 到 {MAX_ROWS} 之间的整数，现在是「{raw}」。",
                               f"blank must be a whole number from 1 to {MAX_ROWS}, not {raw!r}."))
            out.append(row)
            continue
        if row.fields.get("page") or row.fields.get("live") is False:
            row.errors.append(("blank（空码）的行不填页面、不写 live=no：空码以后用 repoint 绑定页面。",
                               "A blank row takes no page and no live=no: blank codes are bound later with repoint."))
            out.append(row)
            continue
        prefix = str(row.fields.get("name") or "blank")
        width = max(3, len(count))
        for n in range(1, int(count) + 1):
            fields = row.fields | {"live": True, "name": f"{prefix}-{n:0{width}d}"}
            line = row.line if n == 1 else spare
            spare += n > 1
            out.append(SheetRow(line=line, fields=fields, errors=list(row.errors)))
    return out


def _row(line: int, keys: list[str], values: list[str]) -> SheetRow:
    row = SheetRow(line=line, fields={})
    if any(v.strip() for v in values[len(keys):]):
        row.errors.append(("这一行的格子比表头多。", "This line has more cells than the header."))
    for key, value in zip(keys, values, strict=False):
        value = value.strip()
        if key in FLAGS:
            if value.casefold() not in _YES | _NO:
                row.errors.append((f"{key}: 只能填 yes 或 no，现在是「{value}」。", f"{key}: must be yes or no, not {value!r}."))
            if value:  # an empty cell keeps the field's default (check_path is on unless check=no)
                row.fields[request_name(key)] = value.casefold() in _YES
        elif value:
            row.fields[request_name(key)] = value
    return row


# What the chats link as a sample sheet (UTF-8 with BOM, so Excel shows the Chinese headers).
SAMPLE_CSV = ("\ufeff页面,类型,场景,名称,推广活动,推广渠道\r\n"
              "pages/index/index,B,store=001,上海一店,,\r\n"
              "pages/index/index,B,store=002,上海二店,,\r\n").encode()


workers.preload(__name__, "openpyxl")


__all__ = ["BUDGET", "COLUMNS", "SAMPLE_CSV", "MAX_BYTES", "MAX_CELLS", "MAX_ROWS", "MAX_SHARED_STRINGS",
           "MAX_XLSX_PART", "MAX_XLSX_TOTAL", "Sheet", "SheetError", "SheetRow", "decode", "load_sheet",
           "load_pasted", "load_sheet_sync", "read_pasted", "read_sheet"]
