"""What a new marketer met (issue 23): the text commands every chat shares (Slack, WeCom and the console all
run them through handlers/commands.py), over the real service, the WeChat and GrowingIO emulators on loopback
ports and a real SQLite file.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import sandbox
from bot.models import Requester, Status
from bot.server import open_service
from bot.service import Service
from bot.summary import summary_for_days
from handlers import commands
from handlers.commands import Reply
from tests.emulators.upstreams import ALICE, Upstreams

ID = r"[a-z0-9]{12}"


@pytest.fixture
async def service(upstreams: Upstreams, tmp_path: Path) -> AsyncIterator[Service]:
    upstreams.wechat.reset_counts()
    async with open_service(upstreams.settings(tmp_path)) as svc:
        yield svc


async def say(service: Service, text: str, who: Requester = ALICE) -> Reply:
    return await commands.run(service, text, who)


def code_id(reply: Reply) -> str:
    assert reply.record is not None, reply.text()
    return reply.record.id


# -- full-width punctuation ------------------------------------------------------------------------------


async def test_a_full_width_question_mark_is_refused_by_name_and_nothing_is_spent(service: Service,
                                                                                 upstreams: Upstreams) -> None:
    reply = await say(service, "new pages/goods/detail？id=1 type=A via=wechat")
    assert not reply.ok
    assert "「？」" in reply.zh and "pages/goods/detail?id=1" in reply.zh
    assert "full-width ？" in reply.en and "pages/goods/detail?id=1" in reply.en
    assert service.storage.history.count() == 0 and not upstreams.wechat.calls
    assert service.storage.ledger.used(sandbox.SANDBOX_APPID) == 0


async def test_full_width_commas_separate_the_options_they_were_typed_between(service: Service) -> None:
    reply = await say(service, "new pages/shop/index，type=B，scene=s=1004 via=wechat")
    assert reply.ok, reply.text()
    record = reply.record
    assert record is not None and record.status is Status.DONE
    assert (record.type.value, record.page, record.scene) == ("B", "pages/shop/index", "s=1004")
    assert service.storage.ledger.used(sandbox.SANDBOX_APPID) == 0  # a B code, as asked: no A code spent


async def test_a_live_code_is_never_repointed_to_a_page_with_full_width_punctuation(service: Service) -> None:
    made = await say(service, "new pages/coupon/list live=yes")
    live_id = code_id(made)
    for typed in (f"repoint {live_id} pages/coupon/get，id=3", f"repoint {live_id} pages/coupon/get？id=3",
                  f"改指向 {live_id} pages/coupon／get"):
        reply = await say(service, typed)
        assert not reply.ok, typed
        view = service.live.view(service.get(live_id))
        assert view is not None and view.destination == "pages/coupon/list", typed
    named = await say(service, f"repoint {live_id} pages/coupon/get？id=3")
    assert "「？」" in named.zh and "pages/coupon/get?id=3" in named.en
    comma = await say(service, f"repoint {live_id} pages/coupon/get，id=3")
    assert "全角逗号" in comma.zh and "full-width comma" in comma.en


# -- list: how many, and paging ----------------------------------------------------------------------------


async def test_list_says_how_many_and_pages_without_taking_a_search_word(service: Service) -> None:
    for n in range(1, 13):
        assert (await say(service, f"new pages/shop/index type=B scene=s={n:04d}")).ok
    first = await say(service, "list")
    assert first.ok and len(first.records) == 10
    assert "共 12 个" in first.zh and "第 1/2 页" in first.zh
    assert "12 codes; page 1 of 2" in first.en and "Next page: list page=2" in first.en
    second = await say(service, "列表 页=2")
    assert [r.scene for r in second.records] == ["s=0002", "s=0001"]  # newest first, so the oldest come last
    assert "第 2/2 页" in second.zh and "Next page" not in second.en
    searched = await say(service, "list 0012")  # a word is still a search, a page is an option
    assert [r.scene for r in searched.records] == ["s=0012"] and "matching '0012'" in searched.en
    beyond = await say(service, "list page=3")
    assert not beyond.ok and "no page 3" in beyond.en and "2 pages" in beyond.en
    query_paged = await say(service, "list shop page=2")
    assert len(query_paged.records) == 2 and "matching 'shop'" in query_paged.en


# -- options that do not apply are said, not dropped --------------------------------------------------------


async def test_options_the_code_does_not_use_are_named_in_the_answer(service: Service,
                                                                     upstreams: Upstreams) -> None:
    b_gio = await say(service, "new pages/shop/index type=B scene=s=1 via=gio")
    assert b_gio.ok and "via=gio" in b_gio.text("en") and "via=gio" in b_gio.text("zh")
    b_title = await say(service, "new pages/shop/index type=B scene=s=2 title=春季大促")
    assert b_title.ok and "title" in b_title.text("en") and "ignored" in b_title.text("en")
    assert b_title.record is not None and b_title.record.title is None  # not kept as if it meant something

    plain_c = await say(service, "new pages/shop/index?id=1 type=C via=wechat")
    assert plain_c.ok and "transparent" not in plain_c.text("en")
    calls = upstreams.wechat.calls["/cgi-bin/wxaapp/createwxaqrcode"]
    see_through = await say(service, "new pages/shop/index?id=1 type=C via=wechat transparent=yes")
    assert see_through.reused and see_through.record is not None and see_through.record.id == code_id(plain_c)
    assert "transparent=yes" in see_through.text("en") and "A/B" in see_through.text("zh")
    assert upstreams.wechat.calls["/cgi-bin/wxaapp/createwxaqrcode"] == calls  # no second C code spent
    assert service.storage.ledger.used(sandbox.SANDBOX_APPID) == 1

    renamed = await say(service, "new pages/shop/index type=B scene=s=1 name=徐汇店")
    assert renamed.reused and renamed.record is not None and renamed.record.name != "徐汇店"
    assert "徐汇店" in renamed.text("zh") and f"rename {renamed.record.id} 徐汇店" in renamed.text("en")


# -- deleting ---------------------------------------------------------------------------------------------


async def test_only_a_growingio_code_is_said_to_be_counted_on_after_deleting(service: Service) -> None:
    plain = await say(service, "new pages/index/index type=B scene=id=1")
    gone = await say(service, f"delete {code_id(plain)}")
    assert gone.ok and "GrowingIO" not in gone.zh + gone.en and "keep working" in gone.en
    tracked = await say(service, "new pages/list/list campaign=双十一推广 channel=今日头条")
    assert tracked.record is not None and tracked.record.provider.value == "gio"
    counted = await say(service, f"delete {code_id(tracked)}")
    assert "GrowingIO keeps counting" in counted.en and "GrowingIO 也会继续统计" in counted.zh


# -- a live code's history ----------------------------------------------------------------------------------


async def test_a_live_codes_history_reads_in_chinese_with_times_in_the_teams_zone(service: Service) -> None:
    made = await say(service, "new pages/coupon/list live=yes")
    live_id = code_id(made)
    for typed in (f"repoint {live_id} pages/coupon/get?id=3", f"pause {live_id}", f"resume {live_id}"):
        assert (await say(service, typed)).ok, typed
    shown = await say(service, f"show {live_id}")
    zone = service.settings.zone.key
    assert zone == "Asia/Shanghai"
    history_zh = shown.zh[shown.zh.index("历史:"):]
    for english in ("repointed", "paused", "resumed", "requested"):
        assert english not in history_zh, history_zh
    assert "改指向 pages/coupon/list → pages/coupon/get?id=3" in history_zh
    assert "暂停" in history_zh and "恢复" in history_zh
    listed = shown.zh[shown.zh.index("指向记录:"):shown.zh.index("历史:")].splitlines()[1:]
    assert [line.rsplit(" ", 1)[1] for line in listed] == ["pages/coupon/list", "pages/coupon/get?id=3"]
    assert all(zone in line and "UTC" not in line for line in listed), shown.zh
    assert "repointed" in shown.en and "History:" in shown.en


# -- posters of codes made before ---------------------------------------------------------------------------


async def test_a_poster_of_an_a_code_offers_only_choices_that_exist_and_both_work(service: Service,
                                                                                   upstreams: Upstreams) -> None:
    made = await say(service, "new pages/shop/index?id=3 type=A via=wechat")
    a_id = code_id(made)
    assert service.storage.ledger.used(sandbox.SANDBOX_APPID) == 1

    asked = await say(service, f"poster {a_id} a4")
    assert not asked.ok and "sharp=yes" in asked.en and "sharp=no" in asked.en
    assert "go on with the current image" not in asked.en

    current = await say(service, f"poster {a_id} a4 sharp=no")  # was refused like sharp=yes being absent
    assert current.ok and current.poster is not None and current.poster.sharper_copy is None, current.text()
    assert service.storage.ledger.used(sandbox.SANDBOX_APPID) == 1  # nothing spent
    assert "dpi" in current.text("en") and "soft" in current.text("en")  # what printing it reaches

    sharper = await say(service, f"poster {a_id} a4 sharp=yes")  # not served the soft one made just before
    assert sharper.ok and sharper.poster is not None and sharper.poster.sharper_copy is not None
    copy = sharper.poster.sharper_copy
    assert service.storage.ledger.used(sandbox.SANDBOX_APPID) == 2 and copy.width == 1182
    again = await say(service, f"poster {a_id} a4 sharp=no")  # the stored sharp poster is better and free
    assert again.poster is not None and again.poster.reused and again.poster.info.printed_code_id == copy.id


async def test_a_screen_template_takes_the_current_image_with_no_dpi_talk(service: Service) -> None:
    made = await say(service, "new pages/shop/index?id=4 type=A via=wechat")
    a_id = code_id(made)
    shared = await say(service, f"poster {a_id} moments")
    assert shared.ok, shared.text()
    assert shared.poster is not None and shared.poster.sharper_copy is None
    assert "dpi" not in shared.text("zh") + shared.text("en")
    assert service.storage.ledger.used(sandbox.SANDBOX_APPID) == 1


async def test_a_sharper_copy_is_shown_as_its_originals_and_not_counted_as_a_new_code(service: Service) -> None:
    made = await say(service, "new pages/shop/index?id=5 type=A via=wechat name=徐汇店")
    a_id = code_id(made)
    poster = await say(service, f"poster {a_id} a4 sharp=yes")
    assert poster.poster is not None and poster.poster.sharper_copy is not None
    copy_id = poster.poster.sharper_copy.id
    assert service.get(copy_id).copy_of == a_id

    listed = await say(service, "list 徐汇")
    assert [r.id for r in listed.records] == [a_id] and "共 1 个" in listed.zh
    assert [r.id for r in (await say(service, "list")).records] == [a_id]
    shown_copy = await say(service, f"show {copy_id}")
    assert a_id in shown_copy.zh and "清晰版" in shown_copy.zh and f"sharper copy of {a_id}" in shown_copy.en
    shown = await say(service, f"show {a_id}")
    assert copy_id in shown.zh and copy_id in shown.en

    summary = summary_for_days(service, 1)
    assert summary.made == 1 and sum(t.count for t in summary.by_type) == 1
    assert sum(q.used_in_period for q in summary.quota) == 2  # the copy did spend a code: the quota says so
    assert re.search(ID, copy_id)
