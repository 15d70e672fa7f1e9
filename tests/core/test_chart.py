"""The summary chart: a real PNG, Chinese names drawn with a CJK font, graceful without one."""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from PIL import Image

from bot import chart
from bot.chart import HEIGHT_PX, WIDTH_PX, cjk_font, daily_chart, limit_series, package_font_path

DAYS = [date(2025, 3, 3) + timedelta(days=i) for i in range(7)]
SERIES = {"双十一推广": [1, 2, 0, 3, 4, 0, 1], "新品上市": [0, 1, 1, 0, 2, 3, 0], "spring-sale": [2, 0, 0, 1, 0, 0, 0]}


@pytest.fixture(autouse=True)
def _fresh_font() -> Iterator[None]:
    chart.reset_font_cache()
    yield
    chart.reset_font_cache()


def draw(series: dict[str, list[int]] = SERIES, days: list[date] = DAYS) -> bytes:
    return daily_chart(days, series, title="每日生成的码 · 2025-03-03 – 2025-03-09", ylabel="码数",
                       legend_title="按推广活动", other_label="其他")


def test_the_chart_is_a_png_of_the_expected_size() -> None:
    png = draw()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size == (WIDTH_PX, HEIGHT_PX)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000) or []
    assert len(colours) > 10  # bars, text and a legend were drawn, not a blank canvas


def test_chinese_names_are_drawn_with_the_shipped_cjk_font(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chart, "_operator_font", None)
    packaged = package_font_path()
    assert packaged is not None, "the CJK font package is not installed: pip install noto-cjk-sans-otc"
    found = cjk_font()
    assert found is not None and found[1] == packaged and "CJK" in found[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        draw()
    missing = [str(w.message) for w in caught if "missing from" in str(w.message)]
    assert not missing, missing  # matplotlib warns "Glyph … missing from font(s)" for every box it draws


def test_chinese_is_drawn_with_the_simplified_chinese_face_as_posters_are(monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib import font_manager
    from PIL import ImageFont

    from bot.posters import fonts

    monkeypatch.setattr(chart, "_operator_font", None)
    found = cjk_font()
    assert found is not None and found[1].suffix.lower() == ".ttc"  # a collection: the JP face comes first
    resolved = font_manager.findfont(font_manager.FontProperties(family=found[0]), fallback_to_default=False)
    index = int(getattr(resolved, "face_index", 0))
    assert ImageFont.truetype(str(found[1]), 12, index=index).getname()[0] == "Noto Sans CJK SC"
    assert ImageFont.truetype(str(found[1]), 12, index=0).getname()[0] == "Noto Sans CJK JP"  # what charts drew
    fonts.reset()
    assert fonts._face() == (str(found[1]), index)  # the posters' face: one choice for both


def test_the_cjk_font_has_every_glyph_dejavu_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    monkeypatch.setattr(chart, "_operator_font", None)
    found = cjk_font()
    assert found is not None
    text = "".join(SERIES) + "每日生成的码按推广活动渠道其他码数（未填）"
    cjk, dejavu = FT2Font(str(found[1])), FT2Font(font_manager.findfont("DejaVu Sans"))
    hanzi = [ch for ch in text if ord(ch) > 0x2E80]
    assert hanzi and all(cjk.get_char_index(ord(ch)) for ch in hanzi)
    assert not any(dejavu.get_char_index(ord(ch)) for ch in hanzi)  # why the font is needed at all


def test_an_operator_font_file_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    packaged = package_font_path()
    if packaged is None:
        pytest.skip("no packaged CJK font to point at")
    monkeypatch.setattr(chart, "_operator_font", packaged)
    monkeypatch.setattr(chart, "package_font_path", lambda: None)
    found = cjk_font()
    assert found is not None and found[1] == packaged


def test_without_a_cjk_font_it_warns_once_and_still_draws(monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture,
                                                          tmp_path: Path) -> None:
    monkeypatch.setattr(chart, "_operator_font", tmp_path / "nope.otf")
    monkeypatch.setattr(chart, "package_font_path", lambda: None)
    monkeypatch.setattr(chart, "_system_font_path", lambda: None)
    with caplog.at_level(logging.WARNING, logger="minpcode.chart"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # matplotlib's own missing-glyph warnings
            png = draw()
            draw()
    assert png.startswith(b"\x89PNG")
    assert cjk_font() is None
    found = [r.getMessage() for r in caplog.records if "no CJK font found" in r.getMessage()]
    assert len(found) == 1 and "pip install noto-cjk-sans-otc" in found[0]
    assert any("does not exist" in r.getMessage() for r in caplog.records)


def test_many_series_are_kept_to_the_biggest_and_other() -> None:
    series = {f"活动{i}": [i, 1] for i in range(12)}
    kept = limit_series(series, "其他", max_series=8)
    assert len(kept) == 9
    assert list(kept)[:2] == ["活动11", "活动10"]
    assert kept["其他 (4)"] == [0 + 1 + 2 + 3, 4]
    assert sum(map(sum, kept.values())) == sum(map(sum, series.values()))
    assert draw(series, DAYS[:2]).startswith(b"\x89PNG")


def test_long_periods_and_empty_days_draw() -> None:
    days = [date(2025, 1, 1) + timedelta(days=i) for i in range(90)]
    png = draw({"渠道": [i % 3 for i in range(90)]}, days)
    assert png.startswith(b"\x89PNG")
    assert draw({}, DAYS).startswith(b"\x89PNG")
