"""Posters: page sizes and dpi, the code scanning on every template, text fitting, logos, layouts.

Code images come from the sandbox's own generator (``bot.sandbox.qr``), the same bytes the WeChat
emulator answers with, and are read back with zxing-cpp; PDF pages are read back with pypdf.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np
import pypdf
import pytest
import zxingcpp
from PIL import Image, ImageDraw

from bot import chart
from bot.errors import FieldError, InvalidRequest
from bot.models import CodeType
from bot.posters import (
    BUILTIN,
    PosterFields,
    PosterRequest,
    PosterTemplate,
    draw_poster,
    find_template,
    fonts,
    format_for_path,
    render_poster,
    sharpness,
    team_template,
)
from bot.posters.code import prepare_code
from bot.sandbox import SANDBOX_APPID, qr

Scan = Callable[[bytes], qr.ScannedCode]
STORE = {"name": "上海徐汇店", "campaign": "spring", "channel": "store", "page": "pages/shop/index", "scene": "s=1001"}
FIELDS = PosterFields(title="春季大促 Spring Sale", subtitle="扫码领券 · 满100减20", footer="{name}")
PRINT = [name for name, t in BUILTIN.items() if t.kind == "print"]


def b_code(width: int = 1280, scene: str = "s=1001", transparent: bool = False) -> bytes:
    return qr.render(qr.code_url(SANDBOX_APPID, "B", "pages/shop/index", scene), width,
                     "PNG" if transparent else "JPEG", transparent)


def c_code(width: int = 430, path: str = "pages/shop/index?id=7") -> bytes:
    return qr.render(qr.code_url(SANDBOX_APPID, "C", path), width, "JPEG")


def png_of(colour: str, size: tuple[int, int] = (400, 300), fmt: str = "JPEG") -> bytes:
    img = Image.new("RGB", size, colour)
    ImageDraw.Draw(img).ellipse((size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4), fill="#FFC107")
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def poster(template: str = "a4", code: bytes | None = None, code_type: CodeType = CodeType.B, **kw: object) -> bytes:
    fields = kw.pop("fields", FIELDS)
    return render_poster(code or b_code(), code_type, BUILTIN[template], fields,  # type: ignore[arg-type]
                         record_values=STORE, **kw)  # type: ignore[arg-type]


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


# -- sizes ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "size", "dpi"), [
    ("a4", (2480, 3508), 300), ("a5-tent", (1748, 2480), 300), ("sticker-60", (709, 709), 300),
    ("moments", (1080, 1920), 72),
])
def test_png_has_the_template_pixels_and_carries_its_dpi(name: str, size: tuple[int, int], dpi: int) -> None:
    img = Image.open(io.BytesIO(poster(name)))
    assert img.format == "PNG"
    assert img.size == size
    assert tuple(round(v) for v in img.info["dpi"]) == (dpi, dpi)


def test_bleed_adds_3_mm_on_every_side() -> None:
    img = Image.open(io.BytesIO(poster("a4", bleed=True)))
    assert img.size == (2480 + 2 * 35, 3508 + 2 * 35)  # 3 mm at 300 dpi = 35.4 px
    # the red band touches the top edge, so it runs on into the bleed: no white sliver after trimming
    assert tuple(np.asarray(img.convert("RGB"))[0, 1000]) == (0xD4, 0x37, 0x2C)


@pytest.mark.parametrize(("name", "points"), [
    ("a4", (595.28, 841.89)), ("a5-tent", (419.53, 595.28)), ("sticker-60", (170.08, 170.08)),
    ("moments", (1080.0, 1920.0)),
])
def test_pdf_page_has_the_exact_physical_size(name: str, points: tuple[float, float]) -> None:
    page = pypdf.PdfReader(io.BytesIO(poster(name, fmt="pdf"))).pages[0]
    assert (round(float(page.mediabox.width), 2), round(float(page.mediabox.height), 2)) == points


def test_pdf_with_bleed_has_a_trim_box_inside_the_bleed() -> None:
    page = pypdf.PdfReader(io.BytesIO(poster("a4", fmt="pdf", bleed=True))).pages[0]
    bleed = 3 / 25.4 * 72
    assert round(float(page.mediabox.width), 2) == round(595.2756 + 2 * bleed, 2)
    assert [round(float(v), 2) for v in page.trimbox] == [round(bleed, 2), round(bleed, 2),
                                                          round(595.2756 + bleed, 2), round(841.8898 + bleed, 2)]


def test_bleed_is_refused_on_a_screen_template() -> None:
    with pytest.raises(FieldError) as caught:
        poster("moments", bleed=True)
    assert caught.value.field == "bleed" and "出血" in caught.value.zh


# -- the code scans ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(BUILTIN))
def test_the_b_code_scans_to_its_page_and_scene_on_every_template(name: str, scan: Scan) -> None:
    found = scan(poster(name, code=b_code(scene=f"t={name}")))
    assert (found.kind, found.page, found.scene) == ("B", "pages/shop/index", f"t={name}")


@pytest.mark.parametrize("name", list(BUILTIN))
def test_the_c_code_scans_on_every_template(name: str, scan: Scan) -> None:
    found = scan(poster(name, code=c_code(), code_type=CodeType.C))
    assert (found.kind, found.page) == ("C", "pages/shop/index?id=7")


@pytest.mark.parametrize("name", list(BUILTIN))
def test_the_code_in_the_pdf_scans(name: str, scan: Scan) -> None:
    page = pypdf.PdfReader(io.BytesIO(poster(name, code=b_code(scene="pdf"), fmt="pdf"))).pages[0]
    (image,) = page.images
    assert image.image is not None
    assert image.image.size == BUILTIN[name].pixel_size()
    out = io.BytesIO()
    image.image.save(out, "PNG")
    assert scan(out.getvalue()).scene == "pdf"


def test_a_small_round_code_is_grown_without_smoothing() -> None:
    small = b_code(width=430, transparent=True)  # pure black and transparent: only two colours
    tile = prepare_code(small, CodeType.B, BUILTIN["a4"].code_px, None)
    alpha = np.asarray(tile)[..., 3]
    assert set(np.unique(alpha)) <= {0, 255}  # NEAREST: no grey edge invented
    need = sharpness(BUILTIN["a4"], small, code_type=CodeType.B)
    assert need.enough is False and need.image_dpi is not None and need.image_dpi < 300
    assert need.wechat_width == 1182


def test_a_square_code_is_redrawn_by_whole_modules() -> None:
    tile = prepare_code(c_code(430), CodeType.C, BUILTIN["a4"].code_px, None)
    values = set(np.unique(np.asarray(tile.convert("L"))))
    assert values == {0, 255}  # the JPEG's ringing is gone: modules are drawn, not resampled
    assert sharpness(BUILTIN["a4"], c_code(430), code_type=CodeType.C).enough is True


def test_sharpness_says_what_a_big_code_box_reaches() -> None:
    big = BUILTIN["a4"].model_copy(update={"code": BUILTIN["a4"].code.model_copy(update={"size": 150, "x": 30})})
    need = sharpness(big)
    assert need.pixels_needed == math.ceil(150 / 25.4 * 300)
    assert need.wechat_width == 1280
    assert need.best_dpi == round(1280 / (150 / 25.4), 1)  # 216.7 dpi: WeChat cannot do better
    assert sharpness(BUILTIN["sticker-60"]).wechat_width == 402


# -- text -------------------------------------------------------------------------------------------
def ink_box(with_text: bytes, without: bytes) -> tuple[int, int, int, int]:
    diff = np.abs(pixels(with_text) - pixels(without)).sum(axis=2) > 0
    ys, xs = np.nonzero(diff)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


@pytest.mark.parametrize("name", list(BUILTIN))
def test_a_long_chinese_title_stays_inside_its_box(name: str) -> None:
    template = BUILTIN[name]
    title = "春季大促全场满一百减二十，会员再享九五折，扫码立即领取优惠券"
    code = b_code()
    without = poster(name, code=code, fields=PosterFields())
    with_title = poster(name, code=code, fields=PosterFields(title=title))
    box = next(t.box for t in template.texts if t.field == "title")
    k = template.px_per_unit
    left, top, right, bottom = ink_box(with_title, without)
    assert left >= box.x * k - 1 and right <= (box.x + box.w) * k + 1
    assert top >= box.y * k - 1 and bottom <= (box.y + box.h) * k + 1
    assert bottom - top > 0


def test_a_title_that_cannot_fit_even_wrapped_is_refused() -> None:
    with pytest.raises(FieldError) as caught:
        poster("sticker-60", fields=PosterFields(title="扫码领券" * 30))
    assert caught.value.field == "title" and "缩短" in caught.value.zh and "shorten" in caught.value.en


def test_placeholders_are_filled_from_the_code() -> None:
    code = b_code()
    filled = poster("a4", code=code, fields=PosterFields(title="{campaign}", footer="{name} · {scene}"))
    literal = poster("a4", code=code, fields=PosterFields(title="spring", footer="上海徐汇店 · s=1001"))
    assert filled == literal


@pytest.mark.parametrize(("text", "words"), [("{store}", "{store}"), ("{name", "花括号"), ("{name!r}", "{name}")])
def test_a_bad_placeholder_is_a_bilingual_field_error(text: str, words: str) -> None:
    with pytest.raises(FieldError) as caught:
        poster("a4", fields=PosterFields(footer=text))
    assert caught.value.field == "footer"
    assert words in caught.value.zh and caught.value.en


def test_a_placeholder_the_code_lacks_is_refused() -> None:
    with pytest.raises(FieldError) as caught:
        render_poster(c_code(), CodeType.C, BUILTIN["a4"], PosterFields(footer="{scene}"),
                      record_values={"name": "x", "scene": None})
    assert "scene" in caught.value.en


def test_a_field_the_template_has_no_place_for_is_refused() -> None:
    layout = json.dumps({"width": 100, "height": 100, "code": {"x": 20, "y": 20, "size": 60}, "texts": [
        {"field": "title", "box": {"x": 5, "y": 2, "w": 90, "h": 15}, "size": 20}]})
    with pytest.raises(FieldError) as caught:
        render_poster(b_code(), CodeType.B, team_template("tiny", layout, None), PosterFields(footer="x"),
                      record_values=STORE)
    assert caught.value.field == "footer"


# -- logos ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(BUILTIN))
def test_a_logo_on_a_square_code_still_scans(name: str, scan: Scan) -> None:
    found = scan(poster(name, code=c_code(), code_type=CodeType.C, logo=png_of("#1E6FD9")))
    assert found.page == "pages/shop/index?id=7"


def test_the_square_logo_is_really_there() -> None:
    code = c_code()
    plain = prepare_code(code, CodeType.C, 1181, None)
    logo = Image.open(io.BytesIO(png_of("#1E6FD9")))
    marked = prepare_code(code, CodeType.C, 1181, logo)
    assert (np.asarray(marked) != np.asarray(plain)).any()
    blue = (np.abs(np.asarray(marked).astype(int) - (0x1E, 0x6F, 0xD9)).sum(axis=2) < 30).sum()
    assert blue > 1000


def test_a_round_logo_sits_on_a_white_disc_with_a_clean_edge() -> None:
    side = 1181
    logo = Image.open(io.BytesIO(png_of("#000000")))  # black, no transparency: the worst case for a rim
    tile = np.asarray(prepare_code(b_code(), CodeType.B, side, logo).convert("L")).astype(int)
    plain = np.asarray(prepare_code(b_code(), CodeType.B, side, None).convert("L")).astype(int)
    ys, xs = np.nonzero(tile != plain)
    assert xs.max() - xs.min() + 1 <= math.floor(side * 0.44) + 1  # never past the avatar's disc
    c = side / 2
    yy, xx = np.mgrid[0:side, 0:side]
    r = np.hypot(xx - c + 0.5, yy - c + 0.5)
    disc = math.floor(side * 0.44) / 2
    ring = (r > disc * 0.9 + 2) & (r < disc - 2)  # between the logo and the disc's edge: white, no black rim
    assert tile[ring].min() >= 250
    edge = (r > disc * 0.9 - 1.5) & (r < disc * 0.9 + 1.5)  # the logo's own edge is antialiased
    assert len(np.unique(tile[edge])) > 5


def test_an_svg_logo_is_refused_with_a_clear_message() -> None:
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    with pytest.raises(FieldError) as caught:
        poster("a4", logo=svg)
    assert caught.value.field == "logo" and "SVG" in caught.value.zh and "PNG" in caught.value.en


def test_a_broken_logo_is_refused() -> None:
    with pytest.raises(FieldError) as caught:
        poster("a4", logo=b"\x89PNG\r\n\x1a\nnot really")
    assert caught.value.field == "logo"


# Issue 22's logos, built here (tests/api, tests/cli and bench/hold.py send them to the real thing).
def svg_bomb(depth: int = 17) -> bytes:
    """1.4 KB of SVG where each group uses the one below twice: 2**depth shapes, which keep cairosvg busy for
    minutes before it gives up at 100,000 (16 deep: 55 s)."""
    levels = ['<g id="l0"><rect width="1" height="1" fill="#E53935"/></g>']
    levels += [f'<g id="l{n}"><use xlink:href="#l{n - 1}"/><use xlink:href="#l{n - 1}" x="1"/></g>'
               for n in range(1, depth + 1)]
    return ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" '
            'height="64"><defs>' + "".join(levels) + f'</defs><use xlink:href="#l{depth}"/></svg>').encode()


def pixel_logo(side: int = 6300) -> bytes:
    """A 6300×6300 PNG logo in 152 KB: 39.7 Mpx, within MAX_PIXELS, 160 MB once decoded."""
    img = Image.new("RGB", (side, side), "white")
    ImageDraw.Draw(img).ellipse((side // 8, side // 8, side * 7 // 8, side * 7 // 8), fill="#1E88E5")
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


async def test_a_poster_drawn_in_a_worker_is_the_one_drawn_here_in_the_operators_font() -> None:
    """The worker is a fresh process: it sets posters in the face the serving process chose (MINPCODE_CJK_FONT
    included), not in the one it would find by itself."""
    operators = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    values = dict(STORE, name="Xuhui store")
    fields = PosterFields(title="Spring Sale", footer="{name}")
    logo = png_of("#1E88E5", (600, 600), "PNG")
    default = render_poster(b_code(), CodeType.B, BUILTIN["a5-tent"], fields, record_values=values, logo=logo)
    chart.use_font_file(operators)
    fonts.reset()
    try:
        here = render_poster(b_code(), CodeType.B, BUILTIN["a5-tent"], fields, record_values=values, logo=logo)
        there = await draw_poster(b_code(), CodeType.B, BUILTIN["a5-tent"], fields, record_values=values, logo=logo)
    finally:
        chart.use_font_file(None)
        fonts.reset()
    assert here != default  # the operator's font shows
    assert there == here


# -- transparency and team templates -----------------------------------------------------------------
LAYOUT = {
    "width": 100, "height": 150, "unit": "mm", "dpi": 300, "background": "#1F3A5F",
    "code": {"x": 20, "y": 40, "size": 60},
    "texts": [{"field": "title", "box": {"x": 5, "y": 5, "w": 90, "h": 25}, "size": 40, "colour": "#FFFFFF",
               "align": "left", "bold": True},
              {"field": "footer", "box": {"x": 5, "y": 110, "w": 90, "h": 30}, "size": 28, "colour": "#FFD166"}],
}


def background(size: tuple[int, int] = (1181, 1772)) -> bytes:
    img = Image.new("RGB", size, "#1F3A5F")
    ImageDraw.Draw(img).rectangle((0, size[1] * 3 // 4, size[0], size[1]), fill="#14263F")
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def test_white_backdrops_need_no_transparent_code() -> None:
    assert not BUILTIN["a4"].wants_transparent_code
    assert not BUILTIN["moments"].wants_transparent_code  # the code sits on a white card
    assert team_template("navy", json.dumps(LAYOUT), None).wants_transparent_code


def test_a_transparent_code_shows_the_team_background_and_scans(scan: Scan) -> None:
    template = team_template("navy", json.dumps(LAYOUT), background())
    data = render_poster(b_code(transparent=True, scene="navy"), CodeType.B, template,
                         PosterFields(title="新品上市", footer="{name}"), record_values=STORE)
    corner = pixels(data)[round(41 * 300 / 25.4), round(21 * 300 / 25.4)]
    assert tuple(corner) == (0x1F, 0x3A, 0x5F)  # not a white square
    assert Image.open(io.BytesIO(data)).size == (1181, 1772)
    # a dark code on navy does not scan by design: the test reads it on white, where WeChat's own
    # light-line codes would be used; the geometry and content are what matter here
    img = Image.open(io.BytesIO(data)).convert("RGB")
    k = 300 / 25.4
    box = (round(20 * k), round(40 * k), round(80 * k), round(100 * k))
    region = np.asarray(img.crop(box)).astype(int)
    dark = region.sum(axis=2) < 60
    white = np.where(dark[..., None], 0, 255).astype(np.uint8).repeat(3, axis=2)
    out = io.BytesIO()
    Image.fromarray(white).save(out, "PNG")
    assert scan(out.getvalue()).scene == "navy"


def errors_of(layout: object, bg: bytes | None = None, name: str = "team") -> dict[str, FieldError]:
    text = layout if isinstance(layout, str) else json.dumps(layout)
    with pytest.raises(InvalidRequest) as caught:
        team_template(name, text, bg)
    for error in caught.value.errors:
        assert error.zh and error.en and error.zh != error.en
    return caught.value.by_field()


def test_layout_errors_name_each_field() -> None:
    bad = json.loads(json.dumps(LAYOUT))
    bad["texts"][0]["colour"] = "white"
    bad["texts"][1]["align"] = "middle"
    bad["texts"][1]["size"] = -3
    bad["dpi"] = "high"
    bad["rotation"] = 90
    del bad["code"]["size"]
    found = errors_of(bad)
    assert set(found) == {"texts[0].colour", "texts[1].align", "texts[1].size", "dpi", "rotation", "code.size"}
    assert "#RRGGBB" in found["texts[0].colour"].en
    assert "left" in found["texts[1].align"].en
    assert "缺少" in found["code.size"].zh


def test_layout_geometry_errors() -> None:
    bad = json.loads(json.dumps(LAYOUT))
    bad["code"]["x"] = 60  # 60 + 60 > 100 mm
    bad["texts"][1]["box"]["y"] = 90  # now on top of... the code still at y 40..100
    found = errors_of(bad)
    assert "code" in found and "页面" in found["code"].zh
    assert "texts[1].box" in found and "overlaps" in found["texts[1].box"].en


def test_layout_file_and_background_errors() -> None:
    assert "layout" in errors_of("{not json")
    assert "layout" in errors_of("[1, 2]")
    assert "background" in errors_of(LAYOUT, background((1000, 1000)))  # square art on a 2:3 page
    assert "background" in errors_of(LAYOUT, b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    assert "name" in errors_of(LAYOUT, name="a4")
    assert "name" in errors_of(LAYOUT, name="Spring Sale!")


def test_a_team_template_renders_to_its_size(scan: Scan) -> None:
    white = dict(LAYOUT, background="#FFFFFF")
    template = team_template("plain", json.dumps(white), None)
    data = render_poster(c_code(), CodeType.C, template, PosterFields(title="新品", footer="{name}"),
                         record_values=STORE, fmt="pdf")
    page = pypdf.PdfReader(io.BytesIO(data)).pages[0]
    assert (round(float(page.mediabox.width), 2), round(float(page.mediabox.height), 2)) == (283.46, 425.2)
    assert find_template("plain", {"plain": template}) is template


# -- the request --------------------------------------------------------------------------------------
def test_the_request_key_is_stable_and_tells_posters_apart() -> None:
    fp = BUILTIN["a4"].fingerprint()
    one = PosterRequest.parse({"template": "A4", "title": " 春季大促 ", "footer": "{name}"})
    same = PosterRequest.parse({"template": "a4", "title": "春季大促", "footer": "{name}", "subtitle": ""})
    assert one == same and one.key("c1", fp, STORE) == same.key("c1", fp, STORE)
    assert one.key("c1", fp, STORE) != one.key("c2", fp, STORE)
    assert one.key("c1", fp, STORE) != one.key("c1", fp, {**STORE, "name": "北京店"})  # a renamed store
    assert one.key("c1", fp, STORE) != PosterRequest.parse({**one.model_dump(), "format": "pdf"}).key("c1", fp, STORE)
    assert one.key("c1", fp, STORE) != one.key("c1", BUILTIN["a5-tent"].fingerprint(), STORE)


def test_request_errors_are_bilingual_per_field() -> None:
    with pytest.raises(InvalidRequest) as caught:
        PosterRequest.parse({"template": "a4", "format": "gif", "title": "x" * 200, "logo_sha256": "abc",
                             "colour": "red"})
    found = caught.value.by_field()
    assert set(found) == {"format", "title", "logo_sha256", "colour"}
    assert "png" in found["format"].en and "120" in found["title"].zh


def test_unknown_template_and_file_extension() -> None:
    with pytest.raises(FieldError) as caught:
        find_template("a3")
    assert "a4" in caught.value.en and "a3" in caught.value.zh
    assert format_for_path("out/poster.PDF") == "pdf" and format_for_path("x.png") == "png"
    with pytest.raises(FieldError):
        format_for_path("poster.jpg")


def test_builtin_templates_describe_their_sizes() -> None:
    assert BUILTIN["a4"].size_text() == "210×297 mm (2480×3508 px at 300 dpi), code 100 mm"
    assert BUILTIN["moments"].size_text() == "1080×1920 px, code 600 px"
    assert all(isinstance(t, PosterTemplate) for t in BUILTIN.values())


def test_zxing_reads_what_the_sandbox_makes() -> None:
    # guards the helpers above: the sandbox code itself is one readable QR
    assert len(zxingcpp.read_barcodes(Image.open(io.BytesIO(c_code())))) == 1


def test_all_templates_lists_built_ins_then_the_team() -> None:
    from bot.posters import all_templates

    white = team_template("zz-team", json.dumps(dict(LAYOUT, background="#FFFFFF")), None)
    names = [t.name for t in all_templates({"zz-team": white})]
    assert names == ["a4", "a5-tent", "sticker-60", "moments", "zz-team"]


def test_fonts_are_per_thread() -> None:
    import threading

    from bot.posters import fonts

    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(fonts.font(40)))
    thread.start()
    thread.join()
    assert seen[0] is not fonts.font(40) and fonts.font(40) is fonts.font(40)


# -- which image a poster uses -------------------------------------------------------------------------
def a_code(width: int) -> bytes:
    return qr.render(qr.code_url(SANDBOX_APPID, "A", "pages/shop/index?id=1"), width)


def test_a_stored_image_that_is_sharp_enough_is_reused() -> None:
    from bot.posters import plan_code_image

    plan = plan_code_image(CodeType.A, BUILTIN["sticker-60"], a_code(430))  # 34 mm needs 402 px
    assert plan.reuse and not plan.costs_quota


def test_a_small_a_code_asks_before_spending_quota() -> None:
    from bot.posters import SharperCopyNeeded, plan_code_image

    with pytest.raises(SharperCopyNeeded) as caught:
        plan_code_image(CodeType.A, BUILTIN["a4"], a_code(430))
    assert caught.value.width == 1182 and caught.value.image_dpi is not None and caught.value.image_dpi < 300
    assert "额度" in caught.value.zh and "costs one A/C code" in caught.value.en
    plan = plan_code_image(CodeType.A, BUILTIN["a4"], a_code(430), sharper=True)
    assert not plan.reuse and plan.width == 1182 and plan.costs_quota


def test_a_small_b_code_is_simply_fetched_again_for_free() -> None:
    from bot.posters import plan_code_image

    plan = plan_code_image(CodeType.B, BUILTIN["a4"], b_code(430))
    assert not plan.reuse and plan.width == 1182 and not plan.costs_quota


def test_wechats_largest_image_is_reused_even_below_300_dpi() -> None:
    from bot.posters import plan_code_image

    big = BUILTIN["a4"].model_copy(update={"code": BUILTIN["a4"].code.model_copy(update={"size": 150, "x": 30})})
    plan = plan_code_image(CodeType.A, big, a_code(1280))
    assert plan.reuse and plan.sharpness.image_dpi is not None and plan.sharpness.image_dpi < 300


def test_a_square_code_is_reused_whatever_its_size() -> None:
    from bot.posters import plan_code_image

    assert plan_code_image(CodeType.C, BUILTIN["a4"], c_code(280)).reuse


def test_a_new_code_is_asked_for_at_the_templates_width_and_transparency() -> None:
    from bot.posters import plan_code_image

    navy = team_template("navy", json.dumps(LAYOUT), None)
    plan = plan_code_image(CodeType.B, navy)
    assert plan.width == math.ceil(60 / 25.4 * 300) and plan.transparent
    assert not plan_code_image(CodeType.C, navy).transparent  # C codes are always opaque JPEGs
    assert not plan_code_image(CodeType.B, BUILTIN["a4"]).transparent
