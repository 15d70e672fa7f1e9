"""Reading sheets: encodings Excel writes, XLSX, pasted ranges, Chinese headers, limits and refusals."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook

from bot.batch.sheets import MAX_ROWS, SheetError, read_pasted, read_sheet
from bot.errors import InputError

CHINESE = "页面,类型,场景,名称,推广活动,推广渠道,媒介,内容,关键词,备注\n" \
          "pages/index/index,B,id=1,上海一店,,,,,,开业\n"


def has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@pytest.mark.parametrize(("encoding", "found"), [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"),
                                                 ("gbk", "gb18030"), ("gb18030", "gb18030")])
def test_csv_in_every_encoding_excel_writes_reads_the_same_rows(encoding: str, found: str) -> None:
    sheet = read_sheet(CHINESE.encode(encoding), "门店.csv")
    assert sheet.encoding == found
    assert sheet.columns == ["page", "type", "scene", "name", "campaign", "channel", "medium", "content", "term",
                             "comments"]
    assert sheet.rows[0].line == 2
    assert sheet.rows[0].fields == {"page": "pages/index/index", "type": "B", "scene": "id=1", "name": "上海一店",
                                    "comments": "开业"}


def test_xlsx_first_sheet_with_numbers_and_blank_rows() -> None:
    book = Workbook()
    first = book.active
    assert first is not None
    first.append(["Page", "类型", "scene", "名称", "width", "transparent"])
    first.append(["pages/index/index", "B", "id=7", "北京", 430, True])
    first.append([None, None, None, None, None, None])
    first.append(["pages/index/index", "B", "id=8", None, 280.0, "no"])
    book.create_sheet("ignored").append(["colour"])
    buffer = io.BytesIO()
    book.save(buffer)
    sheet = read_sheet(buffer.getvalue(), "stores.xlsx")
    assert sheet.encoding == "xlsx"
    assert [(r.line, r.fields) for r in sheet.rows] == [
        (2, {"page": "pages/index/index", "type": "B", "scene": "id=7", "name": "北京", "width": "430",
             "transparent": True}),
        (4, {"page": "pages/index/index", "type": "B", "scene": "id=8", "width": "280", "transparent": False}),
    ]


def test_pasted_rows_tab_or_comma_separated() -> None:
    tab = read_pasted("页面\t类型\t场景\npages/a/a\tB\tid=1\npages/b/b\tB\tid=2\n")
    comma = read_pasted("page,type,scene\npages/a/a,B,id=1\n")
    assert tab.encoding == comma.encoding == "text"
    assert [r.fields["page"] for r in tab.rows] == ["pages/a/a", "pages/b/b"]
    assert comma.rows[0].fields == {"page": "pages/a/a", "type": "B", "scene": "id=1"}


def test_refusals_are_bilingual_input_errors() -> None:
    cases = {
        "unknown": (b"page,colour\npages/a/a,red\n", "Unknown column(s): colour"),
        "no header": (b"pages/a/a,B,id=1\n", "no header"),
        "empty": (b"\n\n", "empty"),
        "encoding": (b"page\n\x80\xff\x80\xff\n", "encoding"),
        "twice": (b"page,\xe9\xa1\xb5\xe9\x9d\xa2\npages/a/a,pages/b/b\n", "more than once"),
        "xlsx": (b"not a zip", "damaged"),
    }
    for label, (data, words) in cases.items():
        with pytest.raises(SheetError) as caught:
            read_sheet(data, "x.xlsx" if label == "xlsx" else "x.csv")
        assert isinstance(caught.value, InputError)
        assert words in caught.value.en and has_cjk(caught.value.zh), label


def test_limits_are_refused_before_anything_is_read_further() -> None:
    rows = "page,type,scene\n" + "".join(f"pages/a/a,B,id={i}\n" for i in range(MAX_ROWS + 1))
    with pytest.raises(SheetError, match="5000"):
        read_sheet(rows.encode(), "big.csv")
    assert len(read_sheet(rows.rsplit("pages", 1)[0].encode(), "ok.csv").rows) == MAX_ROWS
    with pytest.raises(SheetError, match="5 MB"):
        read_sheet(b"page\n" + b"x" * (5 * 1024 * 1024), "huge.csv")
    with pytest.raises(SheetError, match="5 MB"):
        read_pasted("page\n" + "x" * (5 * 1024 * 1024))


def test_cell_problems_stay_on_their_row() -> None:
    sheet = read_sheet(b"page,type,transparent\npages/a/a,A,maybe\npages/b/b,A,yes,extra\n", "f.csv")
    assert "transparent: must be yes or no" in sheet.rows[0].errors[0][1]
    assert "more cells than the header" in sheet.rows[1].errors[0][1]
