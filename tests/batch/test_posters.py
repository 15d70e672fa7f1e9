"""Batch rows that ask for a poster: over the WeChat emulator on a loopback port and a real SQLite file.

Posters come back out of the result zip and are decoded (PNG with Pillow and zxing-cpp, PDF with pypdf);
renders are counted by wrapping the one render function (rendering has no wire to count on).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
import zipfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pypdf
import pytest
from openpyxl import load_workbook
from PIL import Image

import bot.posters.service
from bot import sandbox
from bot.batch.engine import BatchEngine
from bot.batch.models import BatchOrigin, BatchStatus, RowStatus
from bot.batch.output import MANIFEST_COLUMNS, safe_name
from bot.batch.posters import read
from bot.batch.report import dry_run_text, progress_text
from bot.batch.sheets import read_pasted
from bot.errors import InputError, UsageError
from bot.sandbox import qr
from bot.server import open_service
from bot.service import Service
from handlers import grammar
from tests.cli.test_batches import env_for, run
from tests.emulators.upstreams import ALICE, Upstreams

ORIGIN = BatchOrigin(user_id=ALICE.user_id, user_name="alice", chat="slack", channel_id="D123")
Scan = Callable[[bytes], qr.ScannedCode]


@pytest.fixture
async def service(upstreams: Upstreams, tmp_path: Path) -> AsyncIterator[Service]:
    upstreams.wechat.reset_counts()
    async with open_service(upstreams.settings(tmp_path)) as svc:
        yield svc


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The template of every poster actually rendered (not served from the store)."""
    seen: list[str] = []
    real = bot.posters.service.draw_poster

    async def counting(*args: Any, **kwargs: Any) -> bytes:
        seen.append(args[2].name)
        return await real(*args, **kwargs)

    monkeypatch.setattr(bot.posters.service, "draw_poster", counting)
    return seen


def wx_calls(upstreams: Upstreams) -> int:
    return sum(n for path, n in upstreams.wechat.calls.items() if path.startswith("/wxa/"))


def poster_rows(service: Service) -> int:
    return int(service.storage.db.execute("SELECT count(*) FROM posters").fetchone()[0])


LONG = "长" * 121
MIXED = ("页面,类型,场景,名称,海报,标题,副标题,底部文字,格式\n"
         "pages/shop/index,B,s=1,徐汇店,sticker-60,春季大促,扫码领券,{name},\n"   # 2: PNG poster
         "pages/shop/index,B,s=2,徐汇店,a4,Spring,,{name},pdf\n"                   # 3: PDF poster, same name
         "pages/shop/index,B,s=3,静安店,,,,,\n"                                  # 4: no poster
         "pages/shop/index,B,s=4,黄浦店,no-such,,,,\n"                           # 5: unknown template
         f"pages/shop/index,B,s=5,长宁店,sticker-60,{LONG},,,\n"                  # 6: title too long
         "pages/shop/index,B,s=6,闵行店,,,,{name},\n"                            # 7: footer without a poster
         "pages/shop/index,B,s=7,,sticker-60,,,,\n")                             # 8: poster, no name


async def test_mixed_rows_dry_run_then_posters_in_the_zip_and_manifest(
        service: Service, upstreams: Upstreams, renders: list[str], scan: Scan) -> None:
    engine = service.batches
    plan = await engine.dry_run(read_pasted(MIXED), ORIGIN)
    assert wx_calls(upstreams) == 0  # every rule checked before any upstream call
    assert plan.ready == 4 and plan.invalid == 3 and plan.posters == 3 and plan.poster_lines == [2, 3, 8]
    said = dry_run_text(plan)
    assert "将做 3 张海报" in said.zh and "Would make 3 poster(s)" in said.en
    # The same bilingual words a single ``new … poster=…`` gives for the same fields.
    for line, code, poster in ((5, {"scene": "s=4", "name": "黄浦店"}, {"template": "no-such"}),
                               (6, {"scene": "s=5", "name": "长宁店"}, {"template": "sticker-60", "title": LONG})):
        with pytest.raises(InputError) as single:
            await service.posters.plan_new({"page": "pages/shop/index", "type": "B", **code}, poster, ALICE)
        problems = [p for p in plan.problems if p.line == line]
        assert len(problems) == 1 and problems[0].zh in single.value.zh and problems[0].en in single.value.en
    assert [p.field for p in plan.problems if p.line == 5] == ["poster"]
    assert "no poster template named no-such" in next(p.en for p in plan.problems if p.line == 5)
    assert "at most 120 characters" in next(p.en for p in plan.problems if p.line == 6)
    assert "fill in the poster column" in next(p.en for p in plan.problems if p.line == 7)

    batch = await engine.run(plan.batch.id)
    assert batch.status is BatchStatus.DONE
    assert batch.posters == {"wanted": 3, "made": 3, "failed": 0}
    assert sorted(renders) == ["a4", "sticker-60", "sticker-60"] and poster_rows(service) == 3
    assert "海报 3/3" in progress_text(engine.progress(batch.id)).zh
    rows = {r.line: r for r in engine.rows(batch.id)}
    assert {line: r.status for line, r in rows.items()} == {
        2: RowStatus.DONE, 3: RowStatus.DONE, 4: RowStatus.DONE, 5: RowStatus.INVALID, 6: RowStatus.INVALID,
        7: RowStatus.INVALID, 8: RowStatus.DONE}
    assert rows[4].poster_id is None and all(rows[n].poster_id for n in (2, 3, 8))
    # The code was made at the width the template needs, as for one ``new … poster=…``.
    assert service.get(rows[3].code_id or "").width == 1182

    archive = zipfile.ZipFile(io.BytesIO(engine.result_zip(batch.id)))
    assert sorted(n for n in archive.namelist() if n.startswith("posters/")) == [  # named as the images are
        "posters/pages_shop_index-s_7.png", "posters/徐汇店-2.pdf", "posters/徐汇店.png"]
    assert "pages_shop_index-s_7.jpg" in archive.namelist()
    png = archive.read("posters/徐汇店.png")
    assert Image.open(io.BytesIO(png)).format == "PNG"
    found = scan(png)
    assert (found.kind, found.page, found.scene) == ("B", "pages/shop/index", "s=1")
    pdf = archive.read("posters/徐汇店-2.pdf")
    assert pdf.startswith(b"%PDF") and len(pypdf.PdfReader(io.BytesIO(pdf)).pages) == 1

    manifest = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode("utf-8-sig"))))
    assert tuple(manifest[0]) == MANIFEST_COLUMNS and "poster" in MANIFEST_COLUMNS
    by_row = {int(m["row"]): m for m in manifest}
    assert (by_row[2]["poster"], by_row[3]["poster"], by_row[4]["poster"], by_row[8]["poster"]) == (
        "徐汇店.png", "徐汇店-2.pdf", "", "pages_shop_index-s_7.png")
    assert by_row[2]["error"] == "" and "no poster template" in by_row[5]["error"]
    sheet = load_workbook(io.BytesIO(archive.read("manifest.xlsx"))).active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    column = values[0].index("poster")
    assert {r[0]: r[column] for r in values[1:]}[3] == "徐汇店-2.pdf"


async def test_a_poster_that_cannot_be_made_fails_only_the_poster(service: Service, upstreams: Upstreams,
                                                                  scan: Scan) -> None:
    # An A code made before at WeChat's default width: its poster would need a sharper copy, which
    # costs quota, so without the row's consent (sharp=yes) the poster is refused and the code reused.
    earlier = (await service.submit({"type": "A", "via": "wechat", "page": "pages/shop/index?id=7"}, ALICE)).record
    sheet = ("page,type,via,poster,sharp\n"
             "pages/shop/index?id=7,A,wechat,a4,\n"
             "pages/shop/index?id=8,A,wechat,sticker-60,\n")
    engine = service.batches
    plan = await engine.dry_run(read_pasted(sheet), ORIGIN)
    assert plan.ready == 2 and plan.posters == 1 and plan.reuse_ids == {2: earlier.id}
    warned = [p for p in plan.problems if p.line == 2]  # said in the dry run, before anything is made
    assert len(warned) == 1 and warned[0].field == "poster" and "sharp column" in warned[0].en
    assert "1 个 A/C 码额度" in warned[0].zh
    batch = await engine.run(plan.batch.id)
    assert batch.posters == {"wanted": 2, "made": 1, "failed": 1}
    rows = {r.line: r for r in engine.rows(batch.id)}
    assert rows[2].status is RowStatus.REUSED and rows[2].code_id == earlier.id and rows[2].poster_id is None
    assert rows[2].error is not None and rows[2].error.startswith("海报没有做成：")
    assert "The poster was not made:" in rows[2].error and "sharp column" in rows[2].error
    assert rows[3].status is RowStatus.DONE and rows[3].poster_id
    manifest = {m.row: m for m in engine.manifest(batch.id)}
    assert manifest[2].id == earlier.id and manifest[2].poster is None and "sharp" in (manifest[2].error or "")
    assert manifest[3].poster == safe_name(manifest[3].name or "", "row-3") + ".png"
    assert "海报失败 1" in progress_text(engine.progress(batch.id)).zh

    # With the row's consent the sharper copy is made (one A/C code) and printed.
    used = service.storage.ledger.used(sandbox.SANDBOX_APPID)
    plan = await engine.dry_run(read_pasted("page,type,via,poster,sharp\npages/shop/index?id=7,A,wechat,a4,yes\n"),
                                ORIGIN)
    assert plan.posters == 1 and not plan.problems
    batch = await engine.run(plan.batch.id)
    assert batch.posters == {"wanted": 1, "made": 1, "failed": 0}
    assert service.storage.ledger.used(sandbox.SANDBOX_APPID) == used + 1
    (row,) = engine.rows(batch.id)
    assert row.code_id == earlier.id and row.status is RowStatus.REUSED
    found = scan(zipfile.ZipFile(io.BytesIO(engine.result_zip(batch.id))).read(
        f"posters/{engine.manifest(batch.id)[0].poster}"))
    assert (found.kind, found.page) == ("A", "pages/shop/index?id=7")


async def test_resume_after_an_interruption_makes_no_second_poster(
        upstreams: Upstreams, tmp_path: Path, renders: list[str]) -> None:
    rows = 10
    sheet = read_pasted("页面,类型,场景,名称,海报,标题\n" + "".join(
        f"pages/shop/index,B,s={i},店{i},sticker-60,开业\n" for i in range(rows)))
    async with open_service(upstreams.settings(tmp_path)) as first:
        engine = BatchEngine(first, first.posters, window=2)
        plan = await engine.dry_run(sheet, ORIGIN)
        task = asyncio.create_task(engine.run(plan.batch.id))
        for _ in range(600):
            if any(r.poster_id for r in engine.rows(plan.batch.id)):
                break
            await asyncio.sleep(0.02)
        task.cancel()  # the process stops mid-run
        with pytest.raises(asyncio.CancelledError):
            await task
        before = {r.line: r.poster_id for r in engine.rows(plan.batch.id) if r.poster_id}
        assert 1 <= len(before) < rows
    made_before = len(renders)
    # A crash between saving a poster and marking its row leaves the row queued without the poster's id.
    crashed = min(before)
    with sqlite3.connect(tmp_path / "minpcode.db") as conn:
        conn.execute("UPDATE batch_rows SET status = 'queued', poster_id = NULL WHERE batch_id = ? AND line = ?",
                     [plan.batch.id, crashed])

    async with open_service(upstreams.settings(tmp_path)) as second:
        engine = second.batches
        batch = await engine.run(plan.batch.id)
        assert batch.status is BatchStatus.DONE and batch.posters == {"wanted": rows, "made": rows, "failed": 0}
        after = {r.line: r.poster_id for r in engine.rows(batch.id)}
        assert all(after[line] == poster_id for line, poster_id in before.items())  # the same posters, kept
        assert poster_rows(second) == rows
    # Nothing stored before the stop is drawn again. A poster drawing when the stop came may have been
    # stored without its row marked (found in the store on resume) or not (drawn again): either is right.
    assert rows <= len(renders) and len(renders) - made_before <= rows - len(before)


def test_a_row_reads_its_poster_cells_as_the_new_command_does() -> None:
    fields = read_pasted("页面,类型,海报,标题,页脚,清晰,长参数\npages/a/a,B,A4,春季,{name},是,yes\n").rows[0].fields
    ask = read(fields)
    code, long_scene, poster = ask.fields, ask.long_scene, ask.poster
    assert code == {"page": "pages/a/a", "type": "B"} and long_scene
    assert poster is not None and poster.sharper and poster.data == {"template": "A4", "footer": "{name}", "title": "春季"}
    ask = read(read_pasted("page,type,title\npages/a/a,shortlink,Hello\n").rows[0].fields)
    code, poster = ask.fields, ask.poster
    assert poster is None and code["title"] == "Hello"  # without a poster, title is the short link's


@pytest.mark.parametrize("sharp", ["yes", "no"])
async def test_poster_words_without_a_poster_are_refused_alike_in_a_sheet_and_in_chat(
        service: Service, upstreams: Upstreams, sharp: str) -> None:
    # One rule (bot.fields.loose_poster_words): sharp belongs to a poster whatever its value, so sharp=no
    # without a poster is refused by a sheet row as by a ``new`` command, each saying so in both languages.
    plan = await service.batches.dry_run(
        read_pasted(f"page,type,scene,sharp\npages/shop/index,B,s=1,{sharp}\npages/shop/index,B,s=2,\n"), ORIGIN)
    assert plan.ready == 1 and plan.invalid == 1 and wx_calls(upstreams) == 0
    [problem] = plan.problems
    assert problem.line == 2 and problem.field == "poster"
    assert "sharp" in problem.en and "belong to a poster" in problem.en and "海报的参数" in problem.zh
    with pytest.raises(UsageError) as said:
        grammar.parse(f"new pages/shop/index type=B scene=s=1 sharp={sharp}").ask()
    assert "sharp" in said.value.en and "belong to a poster" in said.value.en and "海报的参数" in said.value.zh


def test_cli_bulk_counts_posters_and_its_json_rows_carry_them(upstreams: Upstreams, tmp_path: Path) -> None:
    sheet = tmp_path / "stores.csv"
    sheet.write_text("page,type,scene,name,poster,title\n"
                     "pages/shop/index,B,s=1,one,sticker-60,Hi\n"
                     "pages/shop/index,B,s=2,two,,\n", encoding="utf-8")
    env = env_for(upstreams, tmp_path / "data")
    dry = run(env, tmp_path, "bulk", str(sheet), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "make 1 poster(s)" in dry.stderr + dry.stdout
    done = run(env, tmp_path, "bulk", str(sheet), "--yes", "--out", "out.zip", "--json")
    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)
    assert [m["poster"] for m in manifest] == ["one.png", None] and manifest[0]["poster_id"]
    assert "posters/one.png" in zipfile.ZipFile(tmp_path / "out.zip").namelist()
    listed = json.loads(run(env, tmp_path, "batches", "--json").stdout)
    assert listed[0]["posters"] == {"wanted": 1, "made": 1, "failed": 0}
    shown = run(env, tmp_path, "batch", listed[0]["id"])
    assert shown.returncode == 0 and "posters 1/1" in shown.stdout and "one.png" in shown.stdout, shown.stdout
    text = run(env, tmp_path, "bulk", str(sheet), "--yes", "--out", "again")
    assert text.returncode == 0, text.stderr
    assert "1 poster(s) made, 0 failed" in text.stdout + text.stderr
    assert (tmp_path / "again" / "posters" / "one.png").read_bytes().startswith(b"\x89PNG")
