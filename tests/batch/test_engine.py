"""The batch engine over the WeChat and GrowingIO emulators on loopback ports and a real SQLite file."""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import zxingcpp
from openpyxl import load_workbook
from PIL import Image

from bot import sandbox
from bot.batch.engine import BatchEngine, BatchProgress
from bot.batch.models import BatchOrigin, BatchStatus, RowStatus
from bot.batch.output import MANIFEST_COLUMNS, safe_name
from bot.batch.sheets import read_pasted
from bot.errors import PermissionDenied
from bot.models import Requester, Status
from bot.sandbox.qr import code_url, parse_code_url
from bot.server import open_service
from bot.service import Service
from tests.emulators.upstreams import ADMIN, ALICE, Upstreams

ORIGIN = BatchOrigin(user_id=ALICE.user_id, user_name="alice", chat="slack", channel_id="D123", message_id="1700.1")


@pytest.fixture
async def service(upstreams: Upstreams, tmp_path: Path) -> AsyncIterator[Service]:
    upstreams.wechat.reset_counts()
    upstreams.gio.latency = 0.0
    async with open_service(upstreams.settings(tmp_path)) as svc:
        yield svc


def scan(data: bytes) -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))
    assert len(found) == 1
    return str(found[0].text)


MIXED = ("页面,类型,场景,名称,推广活动,推广渠道\n"
         "pages/index/index,B,id=1,上海/一店,,\n"            # 2: new B
         "pages/index/index,B,id=this-scene-is-far-too-long-for-wechat,,,\n"  # 3: invalid scene
         "pages/index/index,B,id=1,上海/一店,,\n"             # 4: same code as line 2
         "pages/index/index,B,id=9,history,,\n"              # 5: made before the batch
         "pages/index/index?s=1,A,,北京店,新品上市,今日头条\n"  # 6: new A via GrowingIO
         "pages/index/index?s=2,A,,,没有这个活动,今日头条\n"   # 7: unknown campaign
         "pages/index/index?s=3,A,,,没有这个活动,今日头条\n"   # 8: the same unknown campaign
         "pages/index/index,shortlink,,,,\n")                # 9: a short link, no image


async def test_mixed_sheet_dry_run_then_run_zip_and_manifest(service: Service, upstreams: Upstreams) -> None:
    earlier = await service.submit({"type": "B", "page": "pages/index/index", "scene": "id=9"}, ADMIN)
    engine = service.batches
    plan = await engine.dry_run(read_pasted(MIXED), ORIGIN)
    assert plan.batch.status is BatchStatus.DRAFT and plan.batch.total == 8
    assert plan.invalid == 3 and plan.ready == 5
    assert plan.reuse_sheet == {4: 2} and plan.reuse_ids == {5: earlier.record.id}
    assert plan.unknown == {"campaign": {"没有这个活动": [7, 8]}}
    assert plan.new_ac == {sandbox.SANDBOX_APPID: 1} and plan.quota_left[sandbox.SANDBOX_APPID] == 100_000
    assert {p.line for p in plan.problems} == {3, 7, 8}
    assert service.storage.history.recent(limit=50) == [earlier.record]  # the dry run made nothing
    calls = dict(upstreams.wechat.calls)

    seen: list[BatchProgress] = []
    batch = await engine.run(plan.batch.id, on_progress=seen.append, every=0)
    assert batch.status is BatchStatus.DONE
    statuses = {r.line: r.status for r in engine.rows(batch.id)}
    assert statuses == {2: RowStatus.DONE, 3: RowStatus.INVALID, 4: RowStatus.REUSED, 5: RowStatus.REUSED,
                        6: RowStatus.DONE, 7: RowStatus.INVALID, 8: RowStatus.INVALID, 9: RowStatus.DONE}
    assert seen[-1].finished and (seen[-1].done, seen[-1].reused, seen[-1].invalid) == (3, 2, 3)
    # One upstream B code for lines 2 and 4, none for line 5 (history), none for invalid rows.
    assert upstreams.wechat.calls["/wxa/getwxacodeunlimit"] - calls.get("/wxa/getwxacodeunlimit", 0) == 1

    archive = zipfile.ZipFile(io.BytesIO(engine.result_zip(batch.id)))
    names = sorted(archive.namelist())
    assert names == ["history.jpg", "manifest.csv", "manifest.xlsx", "上海_一店-2.jpg", "上海_一店.jpg", "北京店.jpg"]
    manifest = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode("utf-8-sig"))))
    assert archive.read("manifest.csv").startswith(b"\xef\xbb\xbf")
    assert tuple(manifest[0]) == MANIFEST_COLUMNS and [m["row"] for m in manifest] == [str(n) for n in range(2, 10)]
    by_row = {int(m["row"]): m for m in manifest}
    assert by_row[2]["id"] == by_row[4]["id"] and by_row[5]["id"] == earlier.record.id
    assert "1 to 32 characters" in by_row[3]["error"] and by_row[3]["status"] == "invalid"
    assert by_row[6]["tracking_url"] and by_row[6]["campaign"] == "新品上市"
    assert by_row[9]["link"].startswith("#小程序://")
    for file, row in (("上海_一店.jpg", 2), ("上海_一店-2.jpg", 4), ("history.jpg", 5)):
        assert scan(archive.read(file)) == code_url(sandbox.SANDBOX_APPID, "B", "pages/index/index",
                                                    by_row[row]["scene"])
    scanned = parse_code_url(scan(archive.read("北京店.jpg")))
    assert scanned.kind == "A" and scanned.page.startswith("pages/index/index?s=1")
    sheet = load_workbook(io.BytesIO(archive.read("manifest.xlsx"))).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == MANIFEST_COLUMNS and rows[1][0] == 2 and rows[1][3] == "上海/一店"


async def test_a_batch_that_would_cross_the_cap_refuses_its_ac_rows(upstreams: Upstreams, tmp_path: Path) -> None:
    async with open_service(upstreams.settings(tmp_path, minpcode_ac_cap=2)) as service:
        sheet = read_pasted("page,type,campaign,channel,scene\n" + "".join(
            f"pages/index/index?cap={i},A,新品上市,今日头条,\n" for i in range(3)) + "pages/index/index,B,,,cap=1\n")
        engine = service.batches
        plan = await engine.dry_run(sheet, ORIGIN)
        assert plan.over_cap == [2, 3, 4] and plan.ready == 1
        problem = next(p for p in plan.problems if p.line == 2)
        assert "B code" in problem.en and "B 码" in problem.zh and "2 left" in problem.en
        batch = await engine.run(plan.batch.id)
        assert [r.status for r in engine.rows(batch.id)] == [RowStatus.SKIPPED] * 3 + [RowStatus.DONE]
        assert service.quota()[0].used == 0


async def test_a_45009_storm_backs_off_and_every_row_is_made(service: Service, upstreams: Upstreams) -> None:
    sheet = read_pasted("page,type,scene\n" + "".join(f"pages/index/index,B,storm={i}\n" for i in range(6)))
    upstreams.wechat.inject(45009, times=5, path="/wxa/getwxacodeunlimit")
    engine = BatchEngine(service, service.posters, backoff=0.2)
    plan = await engine.dry_run(sheet, ORIGIN)
    batch = await engine.run(plan.batch.id)
    rows = engine.rows(batch.id)
    assert [r.status for r in rows] == [RowStatus.DONE] * 6 and sum(r.attempts for r in rows) == 11
    codes = service.storage.history.recent(limit=50)
    assert sum(c.status is Status.FAILED and c.error_code == "45009" for c in codes) == 5
    assert upstreams.wechat.calls["/wxa/getwxacodeunlimit"] == 11


async def test_cancel_by_starter_or_admin_keeps_what_was_made(service: Service, upstreams: Upstreams) -> None:
    upstreams.gio.latency = 0.05
    sheet = read_pasted("page,type,campaign,channel,name\n" + "".join(
        f"pages/index/index?cancel={i},A,新品上市,今日头条,cancel-{i}\n" for i in range(40)))
    engine = BatchEngine(service, service.posters, window=2)
    plan = await engine.dry_run(sheet, ORIGIN)
    with pytest.raises(PermissionDenied) as denied:
        engine.cancel(plan.batch.id, Requester(chat="slack", user_id="U_BOB"))
    assert "Only its starter (alice)" in denied.value.en
    running = asyncio.create_task(engine.run(plan.batch.id))
    while engine.progress(plan.batch.id).done < 3:
        await asyncio.sleep(0.02)
    assert engine.cancel(plan.batch.id, ADMIN).status is BatchStatus.CANCELLED
    batch = await running
    counts = batch.counts
    assert batch.status is BatchStatus.CANCELLED and counts["done"] >= 3 and counts["skipped"] >= 30
    assert counts["done"] + counts["skipped"] == 40 and batch.left == 0
    assert service.storage.history.pending() == []
    made = [r for r in engine.rows(batch.id) if r.status is RowStatus.DONE]
    assert all(service.get(r.code_id or "").status is Status.DONE for r in made)


async def test_a_single_code_during_a_batch_goes_before_the_batch_rows(service: Service, upstreams: Upstreams) -> None:
    upstreams.gio.latency = 0.02
    sheet = read_pasted("page,type,campaign,channel,name\n" + "".join(
        f"pages/index/index?prio={i},A,新品上市,今日头条,prio-{i}\n" for i in range(60)))
    engine = service.batches
    plan = await engine.dry_run(sheet, ORIGIN)
    running = asyncio.create_task(engine.run(plan.batch.id))
    while engine.progress(plan.batch.id).done < 5:
        await asyncio.sleep(0.02)
    single = await service.submit({"type": "A", "page": "pages/index/index?single=1", "campaign": "新品上市",
                                   "channel": "今日头条", "name": "single"}, ALICE, timeout=30)
    assert single.record.status is Status.DONE
    assert engine.progress(plan.batch.id).left > 20  # answered long before the batch ends
    final = await running
    assert final.counts == {"done": 60}


def test_safe_names_keep_chinese_and_drop_separators() -> None:
    assert safe_name("上海/一店:2号?", "row-2") == "上海_一店_2号"
    assert safe_name("  ..  ", "row-3") == "row-3" and safe_name("CON", "row-4") == "row-4"
    assert len(safe_name("长" * 200, "x")) == 80



# Issue 22: a sheet's name or scene that a spreadsheet would run as a formula comes back as text. The
# name rule refuses the HYPERLINK, but an invalid row's cells are echoed in the manifest all the same.
EVIL_NAME = '=HYPERLINK("http://evil.example/x","click me")'
FORMULAS = ("page,type,scene,name\n"
            f'pages/index/index,B,=1+1,"{EVIL_NAME.replace(chr(34), chr(34) * 2)}"\n'
            "pages/index/index,B,@x,-minus\n"
            "pages/index/index,B,+1,门店\n")
AS_GIVEN = [("=1+1", EVIL_NAME), ("@x", "-minus"), ("+1", "门店")]


async def test_a_formula_in_a_name_or_scene_comes_back_as_text_in_both_manifests(service: Service) -> None:
    engine = service.batches
    plan = await engine.dry_run(read_pasted(FORMULAS), ORIGIN)
    assert [p.line for p in plan.problems] == [2] and plan.ready == 2
    batch = await engine.run(plan.batch.id)
    assert {r.line: r.status for r in engine.rows(batch.id)} == {2: RowStatus.INVALID, 3: RowStatus.DONE,
                                                                 4: RowStatus.DONE}
    archive = zipfile.ZipFile(io.BytesIO(engine.result_zip(batch.id)))
    manifest = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode("utf-8-sig"))))
    # OWASP's neutralisation: a single quote before the trigger; the rest is the person's text.
    assert [(m["scene"], m["name"]) for m in manifest] == [("'=1+1", "'" + EVIL_NAME), ("'@x", "'-minus"),
                                                           ("'+1", "门店")]
    book = archive.read("manifest.xlsx")
    sheet = load_workbook(io.BytesIO(book)).worksheets[0]
    header = [c.value for c in sheet[1]]
    scene, name = header.index("scene"), header.index("name")
    for row, (want_scene, want_name) in zip(sheet.iter_rows(min_row=2), AS_GIVEN, strict=True):
        assert (row[scene].value, row[name].value) == (want_scene, want_name)
        assert row[scene].data_type == "s" and row[name].data_type == "s"
        assert all(cell.data_type != "f" for cell in row)
    assert b"<f>" not in zipfile.ZipFile(io.BytesIO(book)).read("xl/worksheets/sheet1.xml")


async def test_a_row_without_a_page_is_refused_as_the_chat_refuses_a_new_without_one(service: Service) -> None:
    plan = await service.batches.dry_run(read_pasted("页面,类型,场景\n,B,id=1\npages/index/index,B,id=2\n"), ORIGIN)
    assert (plan.invalid, plan.ready) == (1, 1)
    [problem] = [p for p in plan.problems if p.line == 2]
    assert problem.field == "page" and "no page" in problem.en and "页面" in problem.zh
    assert 2 not in plan.requests  # never a home-page B code nobody asked for
