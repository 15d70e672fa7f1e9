"""Blank codes (空码), tags, and changes to many codes at once, over the real server (``create_app`` on a
loopback port, the WeChat emulator behind it): a blank sticker sheet made and bound row by row; a selection
by tag previewed, then re-pointed on confirmation, with a code of someone else's refused and listed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.batch.models import BatchOrigin, RowStatus
from bot.batch.sheets import read_pasted
from bot.models import Requester
from handlers import commands
from tests.conftest import Site
from tests.live.test_live import B_PATH, resolve, start

FALLBACK = "pages/index/index"
ALICE = Requester(chat="slack", user_id="U1", user_name="alice", lang="zh")
BOB = Requester(chat="slack", user_id="U2", user_name="bob", lang="en")


def on(database_url: str | None) -> dict[str, Any]:
    """The server's settings for this backend (SQLite in the data folder, or the test PostgreSQL)."""
    return {"minpcode_database_url": SecretStr(database_url)} if database_url else {}


async def test_a_blank_sticker_sheet_is_made_and_bound_row_by_row(tmp_path: Path, wechat: Site,
                                                                   database_url: str | None) -> None:
    server = start(tmp_path, wechat, **on(database_url))
    try:
        service = server.service
        quota_before = service.quota()
        # a sheet of 3 blank stickers, named after the row's name, all tagged
        sheet = read_pasted("name,blank,tags\n上海门店,3,门店\n")
        plan = await service.batches.dry_run(sheet, BatchOrigin(user_id="U1", user_name="alice", chat="slack"))
        assert plan.invalid == 0 and plan.ready == 3, plan.problems
        batch = await service.batches.run(plan.batch.id)
        rows = service.batches.rows(batch.id)
        assert [r.status for r in rows] == [RowStatus.DONE] * 3
        records = [service.get(str(r.code_id)) for r in rows]
        assert [r.name for r in records] == ["上海门店-001", "上海门店-002", "上海门店-003"]
        assert wechat.log.count(B_PATH) == 3 and service.quota() == quota_before  # B codes: no A/C quota spent
        # until bound, every sticker opens the fallback page, and every list says blank
        for record in records:
            data = resolve(server, str(record.scene)).json()["data"]
            assert (data["page"], data["live"]) == (FALLBACK, True)
        listed = await commands.run(service, "list tag=门店", ALICE)
        assert listed.ok and listed.zh.count("空码 blank") == 3, listed.zh
        api = server.ok("GET", f"/api/codes/{records[0].id}")["data"]
        assert (api["blank"], api["destination"], api["tags"]) == (True, "", ["门店"])
        shown = await commands.run(service, f"show {records[0].id}", BOB)
        assert "blank, not bound yet" in shown.en and "Tags: 门店" in shown.en
        # bound one by one as the stores open: each opens its own page, the others stay blank
        for n, record in enumerate(records, start=1):
            bound = await commands.run(service, f"repoint {record.id} pages/store/index?id={n}", ALICE)
            assert bound.ok, bound.zh
            data = resolve(server, str(record.scene)).json()["data"]
            assert (data["page"], data["query"]) == ("pages/store/index", {"id": str(n)})
            still = [resolve(server, str(r.scene)).json()["data"]["page"] for r in records[n:]]
            assert still == [FALLBACK] * (3 - n)
        listed = await commands.run(service, "list tag=门店", ALICE)
        assert "空码" not in listed.zh
        view = service.live.view(records[0])
        assert view is not None and [d.page for d in view.destinations] == ["pages/store/index?id=1"]
        assert wechat.log.count(B_PATH) == 3  # binding never calls WeChat: the printed image stays
    finally:
        server.thread.stop()


async def test_new_live_without_a_page_is_a_blank_code(tmp_path: Path, wechat: Site) -> None:
    server = start(tmp_path, wechat)
    try:
        made = await commands.run(server.service, "new live=yes name=sticker tag=门店,VIP", ALICE)
        assert made.ok and made.record is not None, made.zh
        assert made.record.type.value == "B"
        assert resolve(server, str(made.record.scene)).json()["data"]["page"] == FALLBACK
        assert server.service.live.tags(made.record.id) == ["vip", "门店"]
        body = server.ok("POST", "/api/weapp/qrcode", json={"live": True, "tags": "门店，春节"})
        assert server.ok("GET", f"/api/codes/{body['id']}")["data"]["tags"] == sorted(["门店", "春节"])
        assert server.call("POST", "/api/weapp/qrcode", json={"scene": "a=1"}).json()["code"] == 3001  # not live: a path
    finally:
        server.thread.stop()


async def test_a_selection_by_tag_is_previewed_then_repointed_and_others_codes_are_refused(
        tmp_path: Path, wechat: Site, database_url: str | None) -> None:
    server = start(tmp_path, wechat, **on(database_url))
    try:
        service = server.service
        mine = [(await commands.run(service, f"new pages/spring/index?s={n} live=yes tag=春节", ALICE)).record
                for n in range(3)]
        theirs = (await commands.run(service, "new pages/spring/index?s=bob live=yes tag=春节", BOB)).record
        other = (await commands.run(service, "new pages/summer/index live=yes tag=夏天", ALICE)).record
        assert all(r is not None for r in (*mine, theirs, other))
        assert theirs is not None and other is not None

        preview = await commands.run(service, "repoint tag=春节 pages/spring/end", ALICE)
        assert preview.ok, preview.zh
        shown = preview.data["preview"]
        assert shown["count"] == 3 and [e["code_id"] for e in shown["examples"]] == [r.id for r in mine if r]
        assert [r["code_id"] for r in shown["refused"]] == [theirs.id]
        assert "预览" in preview.zh and theirs.id in preview.zh and "确认" in preview.zh
        # nothing has changed yet
        for record in [*mine, theirs]:
            assert record is not None
            assert resolve(server, str(record.scene)).json()["data"]["page"] == "pages/spring/index"
        refused = [a for a in service.storage.audit.for_code(theirs.id) if a["action"] == "change_refused"]
        assert refused, "a refusal is audited"

        done = await commands.run(service, "确认", ALICE)
        assert done.ok and done.data["done"]["changed"] == [r.id for r in mine if r], done.zh
        for record in mine:
            assert record is not None
            assert resolve(server, str(record.scene)).json()["data"]["page"] == "pages/spring/end"
            actions = [a["action"] for a in service.storage.audit.for_code(record.id)]
            assert actions[-1] == "repointed"
        assert resolve(server, str(theirs.scene)).json()["data"]["page"] == "pages/spring/index"
        assert resolve(server, str(other.scene)).json()["data"]["page"] == "pages/summer/index"
        again = await commands.run(service, "yes", ALICE)
        assert not again.ok  # confirmed once: nothing waits any more
    finally:
        server.thread.stop()


async def test_a_confirmation_applies_only_what_the_preview_showed(tmp_path: Path, wechat: Site,
                                                                   database_url: str | None) -> None:
    server = start(tmp_path, wechat, **on(database_url))
    try:
        service = server.service
        first = (await commands.run(service, "new pages/a/b live=yes tag=店", ALICE)).record
        assert first is not None
        preview = await commands.run(service, "pause tag=店", ALICE)
        assert preview.data["preview"]["count"] == 1
        late = (await commands.run(service, "new pages/a/c live=yes tag=店", ALICE)).record  # after the preview
        assert late is not None
        untagged = await commands.run(service, f"untag {first.id} 店", ALICE)
        assert untagged.ok and service.live.tags(first.id) == []
        done = await commands.run(service, "confirm", ALICE)
        assert done.ok and done.data["done"]["changed"] == [] and done.data["done"]["left"] == [first.id]
        assert resolve(server, str(late.scene)).json()["data"]["paused"] is False
        assert resolve(server, str(first.scene)).json()["data"]["paused"] is False
    finally:
        server.thread.stop()
