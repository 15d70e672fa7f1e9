"""Posters through the service: over the WeChat emulator on a real port and a real SQLite file.

Quota is counted where it is spent: calls that reached the WeChat emulator, and the A+C ledger.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pypdf
import pytest
from PIL import Image

from bot import links, sandbox
from bot.errors import FieldError, InvalidRequest, PermissionDenied
from bot.models import Requester, Status
from bot.posters import SharperCopyNeeded
from bot.sandbox import qr
from bot.server import open_service
from bot.service import Service
from tests.emulators.upstreams import ADMIN, ALICE, Upstreams

Scan = Callable[[bytes], qr.ScannedCode]
B_CODE = {"type": "B", "page": "pages/shop/index", "scene": "s=1001", "name": "上海徐汇店"}
A_CODE = {"type": "A", "via": "wechat", "page": "pages/shop/index?id=7", "name": "store-7"}
LAYOUT = {"width": 100, "height": 150, "code": {"x": 20, "y": 40, "size": 60},
          "texts": [{"field": "title", "box": {"x": 5, "y": 5, "w": 90, "h": 30}, "size": 30}]}


@pytest.fixture
async def service(upstreams: Upstreams, tmp_path: Path) -> AsyncIterator[Service]:
    upstreams.wechat.reset_counts()
    async with open_service(upstreams.settings(tmp_path)) as svc:
        yield svc


def wx_calls(upstreams: Upstreams) -> int:
    return sum(n for path, n in upstreams.wechat.calls.items() if path.startswith("/wxa/"))


def ledger(service: Service) -> int:
    return service.storage.ledger.used(sandbox.SANDBOX_APPID)


async def test_b_code_poster_prints_at_300_dpi_scans_and_is_served_from_the_store(
        service: Service, upstreams: Upstreams, scan: Scan) -> None:
    made = await service.posters.for_new(B_CODE, {"template": "a4", "title": "春季大促", "footer": "{name}"}, ALICE)
    record = made.submission.record
    assert made.poster is not None and record.status is Status.DONE
    assert record.width == 1182  # 100 mm at 300 dpi: asked of WeChat at once
    img = Image.open(io.BytesIO(made.poster.data))
    assert img.size == (2480, 3508) and round(img.info["dpi"][0]) == 300
    code = scan(made.poster.data)
    assert (code.kind, code.page, code.scene) == ("B", "pages/shop/index", "s=1001")
    calls = wx_calls(upstreams)
    again = await service.posters.make(record.id, {"template": "a4", "title": "春季大促", "footer": "{name}"}, ALICE)
    assert again.reused and again.data == made.poster.data and again.info.id == made.poster.info.id
    assert wx_calls(upstreams) == calls
    assert [p.template for p in service.posters.for_code(record.id)] == ["a4"]
    info, data = service.posters.get(made.poster.info.id)
    assert data == made.poster.data and links.poster_path(info.id, info.format) == f"/posters/{info.id}.png"


async def test_pdf_page_has_the_exact_physical_size(service: Service) -> None:
    made = await service.posters.for_new(B_CODE, {"template": "a4", "format": "pdf", "title": "Spring"}, ALICE)
    assert made.poster is not None and made.poster.info.mime == "application/pdf"
    page = pypdf.PdfReader(io.BytesIO(made.poster.data)).pages[0]
    assert (round(float(page.mediabox.width), 2), round(float(page.mediabox.height), 2)) == (595.28, 841.89)


async def test_an_existing_a_code_never_spends_quota_without_consent(
        service: Service, upstreams: Upstreams, scan: Scan) -> None:
    code = (await service.submit(A_CODE, ALICE)).record
    assert code.status is Status.DONE and ledger(service) == 1
    calls = wx_calls(upstreams)
    with pytest.raises(SharperCopyNeeded) as refused:
        await service.posters.make(code.id, {"template": "a4"}, ALICE)
    assert "1 个 A/C 码额度" in refused.value.zh and "costs one A/C code" in refused.value.en
    assert (wx_calls(upstreams), ledger(service)) == (calls, 1)  # nothing reached WeChat, nothing counted
    # new … poster=a4 of the identical code is the same question: it is reused, not made again at 1182 px
    again = await service.posters.for_new(A_CODE, {"template": "a4"}, ALICE)
    assert again.submission.reused and isinstance(again.poster_error, SharperCopyNeeded)
    assert (wx_calls(upstreams), ledger(service)) == (calls, 1)

    made = await service.posters.make(code.id, {"template": "a4"}, ALICE, sharper=True)
    assert made.sharper_copy is not None and made.sharper_copy.width == 1182
    assert (wx_calls(upstreams), ledger(service)) == (calls + 1, 2)  # one code, asked for
    assert scan(made.data).page == "pages/shop/index?id=7"
    # afterwards the poster (and the sharper copy) are free
    served = await service.posters.make(code.id, {"template": "a4"}, ALICE)
    assert served.reused and (wx_calls(upstreams), ledger(service)) == (calls + 1, 2)
    other = await service.posters.make(code.id, {"template": "a4", "title": "另一张"}, ALICE)
    assert not other.reused and other.sharper_copy is not None
    assert (wx_calls(upstreams), ledger(service)) == (calls + 1, 2)


async def test_a_small_b_code_gets_a_free_sharper_copy(service: Service, upstreams: Upstreams) -> None:
    code = (await service.submit(B_CODE, ALICE)).record
    assert code.width == 430
    before = upstreams.wechat.calls["/wxa/getwxacodeunlimit"]
    made = await service.posters.make(code.id, {"template": "a4"}, ALICE)
    assert made.sharper_copy is not None and made.sharper_copy.width == 1182
    assert upstreams.wechat.calls["/wxa/getwxacodeunlimit"] == before + 1 and ledger(service) == 0
    # a sticker's 34 mm code is 402 px at 300 dpi: the stored 430 px image suffices
    sticker = await service.posters.make(code.id, {"template": "sticker-60"}, ALICE)
    assert sticker.sharper_copy is None
    assert upstreams.wechat.calls["/wxa/getwxacodeunlimit"] == before + 1


async def test_poster_rules_are_checked_before_any_upstream_call(service: Service, upstreams: Upstreams) -> None:
    calls = wx_calls(upstreams)
    with pytest.raises(FieldError) as unknown:
        await service.posters.for_new(B_CODE, {"template": "a4", "footer": "{store}"}, ALICE)
    assert unknown.value.field == "footer" and "{store}" in unknown.value.en
    with pytest.raises(FieldError) as missing:
        await service.posters.for_new(B_CODE, {"template": "a4", "footer": "{campaign}"}, ALICE)
    assert "campaign" in missing.value.en
    with pytest.raises(FieldError) as template:
        await service.posters.for_new(B_CODE, {"template": "a3"}, ALICE)
    assert "a4" in template.value.en
    with pytest.raises(FieldError):
        await service.posters.for_new({"type": "shortlink", "page": "pages/index/index"}, {"template": "a4"}, ALICE)
    assert wx_calls(upstreams) == calls and service.storage.history.count() == 0


async def test_team_templates_are_admins_and_validated(service: Service, scan: Scan) -> None:
    with pytest.raises(PermissionDenied):
        await service.posters.add_template("shop", json.dumps(LAYOUT), None, ALICE)
    bad = LAYOUT | {"code": {"x": 20, "y": 40, "size": -1}, "texts": [{"field": "title", "colour": "red"}]}
    with pytest.raises(InvalidRequest) as invalid:
        await service.posters.add_template("shop", json.dumps(bad), None, ADMIN)
    fields = {e.field for e in invalid.value.errors}
    assert {"code.size", "texts[0].box", "texts[0].colour"} <= fields
    await service.posters.add_template("shop", json.dumps(LAYOUT), None, ADMIN)
    assert [t.name for t in service.posters.templates()][-1] == "shop"
    made = await service.posters.for_new(B_CODE, {"template": "shop", "title": "店"}, ALICE)
    assert made.poster is not None
    assert Image.open(io.BytesIO(made.poster.data)).size == (1181, 1772)
    assert scan(made.poster.data).scene == "s=1001"
    cli = Requester(chat="cli", user_id="ops")
    service.posters.remove_template("shop", cli)
    assert "shop" not in {t.name for t in service.posters.templates()}


async def test_default_logo_on_a_square_code_still_decodes(service: Service, scan: Scan) -> None:
    logo = Image.new("RGB", (200, 200), "#1E88E5")
    buffer = io.BytesIO()
    logo.save(buffer, "PNG")
    with pytest.raises(PermissionDenied):
        await service.posters.set_default_logo(buffer.getvalue(), ALICE)
    digest = await service.posters.set_default_logo(buffer.getvalue(), ADMIN)
    c_code = {"type": "C", "via": "wechat", "page": "pages/shop/index?id=9"}
    made = await service.posters.for_new(c_code, {"template": "a5-tent"}, ALICE)
    assert made.poster is not None and made.poster_error is None
    assert scan(made.poster.data).page == "pages/shop/index?id=9"
    stored = service.storage.posters.get(made.poster.info.id)
    assert stored is not None and stored.request["logo_sha256"] == digest
    with pytest.raises(FieldError):
        await service.posters.keep_logo(b"<svg xmlns='http://www.w3.org/2000/svg' garbage")


async def test_an_svg_logo_is_drawn_and_a_square_code_with_it_still_decodes(service: Service, scan: Scan) -> None:
    svg = (b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
           b'<circle cx="50" cy="50" r="46" fill="#E53935"/><text x="50" y="62" font-size="36" '
           b'text-anchor="middle" fill="#fff">\xe5\xba\x97</text></svg>')
    digest = await service.posters.keep_logo(svg)
    logo = service.storage.posters.logo(digest)
    assert logo is not None and Image.open(io.BytesIO(logo)).size == (1024, 1024)
    made = await service.posters.for_new({"type": "C", "via": "wechat", "page": "pages/shop/index?id=11"},
                                         {"template": "sticker-60"}, ALICE, logo=svg)
    assert made.poster is not None
    assert scan(made.poster.data).page == "pages/shop/index?id=11"
    entity = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
              b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&e;</text></svg>')
    with pytest.raises(FieldError):
        await service.posters.keep_logo(entity)  # no XML entities, no outside files


async def test_a_live_code_asks_for_its_poster_at_the_same_time(service: Service, scan: Scan) -> None:
    live = {"type": "B", "live": True, "page": "pages/coupon/get?id=1"}
    made = await service.posters.for_new(live, {"template": "a5-tent", "title": "领券"}, ALICE)
    record = made.submission.record
    assert made.poster is not None and record.status is Status.DONE
    code = scan(made.poster.data)
    assert (code.page, code.scene) == (record.page, record.scene)  # the router page and the live key
    assert service.live.view(record) is not None


async def test_a_team_template_with_a_big_code_says_what_dpi_it_reaches(service: Service, scan: Scan) -> None:
    big = {"width": 297, "height": 420, "code": {"x": 48, "y": 100, "size": 200}}
    await service.posters.add_template("a3-big", json.dumps(big), None, ADMIN)
    made = await service.posters.for_new(B_CODE, {"template": "a3-big"}, ALICE)
    assert made.poster is not None and made.submission.record.width == 1280  # WeChat's largest
    assert any("162.6 dpi" in n.en and "20 cm" in n.en for n in made.poster.notices)
    assert scan(made.poster.data).scene == "s=1001"


async def test_a_live_request_whose_key_cannot_be_registered_leaves_no_row(service: Service) -> None:
    """Issue 22: the poster's sharper copy once asked for this (the live code's request at another
    width); the pending row it left was later made into a code nobody got."""
    live = await service.submit({"type": "B", "page": "pages/shop/index?id=3", "live": True}, ALICE)
    assert live.record.status is Status.DONE
    again = live.record.code_request().model_dump() | {"width": 900}
    rows = service.storage.history.count()
    with pytest.raises(sqlite3.IntegrityError):
        await service.submit(again, ALICE)
    assert service.storage.history.count() == rows and service.storage.history.pending() == []
