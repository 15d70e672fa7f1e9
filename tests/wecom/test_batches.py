"""Batches in WeCom over our real server and the WeCom emulator: 批量 + pasted rows, the dry-run text
(one message, ≤ 2048 bytes), 开始 / 取消, a few progress texts and the zip back as a file message."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable
from typing import Any

from tests.wecom.test_callback import USER, WeComSite, wecom  # noqa: F401  (the fixture)

ROWS = "批量\npage,type,scene,name\n" + "".join(f"pages/index/index,B,id={i},门店{i}\n" for i in range(1, 6)) + \
    "pages/index/index,B,id=this-scene-is-far-too-long-for-wechat,坏行\n"


def wait_texts(site: WeComSite, predicate: Callable[[str], bool], timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for text in site.texts():
            if predicate(text):
                return text
        time.sleep(0.02)
    raise AssertionError(f"no such text; got {site.texts()}")


def test_bulk_rows_dry_run_then_start_sends_the_zip_as_a_file(wecom: WeComSite,  # noqa: F811
                                                             scan: Callable[[bytes], Any]) -> None:
    wecom.sender.send_text(USER, ROWS)
    dry = wait_texts(wecom, lambda t: "试运行" in t)
    assert len(dry.encode()) <= 2048
    assert "共 6 行，5 行可以生成" in dry and "第 7 行" in dry and "开始" in dry
    assert wecom.service.recent(limit=10) == []

    wecom.sender.send_text(USER, "开始")
    wait_texts(wecom, lambda t: "完成" in t and "新建 5" in t)
    deadline = time.monotonic() + 20
    while not [m for m in wecom.emu.sent_messages if m.msgtype == "file"]:
        assert time.monotonic() < deadline, "no file message"
        time.sleep(0.05)
    [file_message] = [m for m in wecom.emu.sent_messages if m.msgtype == "file"]
    record = wecom.emu.media[file_message.media_id or ""]
    assert record.filename.endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(wecom.emu.uploaded_media[record.media_id])) as z:
        images = sorted(n for n in z.namelist() if not n.startswith("manifest."))
        assert len(images) == 5 and "manifest.csv" in z.namelist()
        assert sorted(scan(z.read(n)).scene for n in images) == [f"id={i}" for i in range(1, 6)]
    assert len(wecom.service.recent(limit=10)) == 5
    progress = [t for t in wecom.texts() if "生成中" in t]
    assert len(progress) <= 3  # at most at 25/50/75%, never one per row


def test_cancel_after_the_dry_run_makes_nothing(wecom: WeComSite) -> None:  # noqa: F811
    wecom.sender.send_text(USER, ROWS)
    wait_texts(wecom, lambda t: "试运行" in t)
    wecom.sender.send_text(USER, "取消")
    wait_texts(wecom, lambda t: "已取消批量任务" in t)
    wecom.sender.send_text(USER, "开始")  # nothing waits any more: an ordinary (unknown) command
    wecom.settle(0.5)
    assert wecom.service.recent(limit=10) == []


def test_every_cancel_word_of_the_grammar_cancels_a_waiting_batch(wecom: WeComSite) -> None:  # noqa: F811
    # One set of cancel words (handlers.grammar.CANCEL_WORDS) for a form and a batch alike, read as the
    # grammar reads words (a mention, full-width letters).
    wecom.sender.send_text(USER, ROWS)
    wait_texts(wecom, lambda t: "试运行" in t)
    wecom.sender.send_text(USER, "@minpcode ＱＵＩＴ")
    wait_texts(wecom, lambda t: "已取消批量任务" in t)
    assert not [t for t in wecom.texts() if "现在没有进行中的表单" in t]
    assert wecom.service.recent(limit=10) == []


def test_bulk_after_the_minpcode_prefix_is_a_dry_run_as_every_command_is(wecom: WeComSite) -> None:  # noqa: F811
    # The grammar reads the prefix for every verb; bulk was looked for before it, so this was answered
    # "this chat takes no sheet" although WeCom takes one.
    wecom.sender.send_text(USER, "minpcode " + ROWS)
    dry = wait_texts(wecom, lambda t: "试运行" in t)
    assert "共 6 行，5 行可以生成" in dry
    assert not [t for t in wecom.texts() if "这个聊天不收表格" in t]


def test_an_unreadable_sheet_is_refused_in_words(wecom: WeComSite) -> None:  # noqa: F811
    wecom.sender.send_text(USER, "bulk\nnot_a_column,type\nx,B")
    text = wait_texts(wecom, lambda t: "not_a_column" in t)
    assert "不认识的列" in text and "Unknown column" in text


def test_a_file_message_with_a_media_id_is_read_as_the_sheet(wecom: WeComSite) -> None:  # noqa: F811
    import httpx

    gbk = "页面,类型,场景\npages/index/index,B,id=21\npages/index/index,B,id=22\n".encode("gb18030")
    token = wecom.emu.issue_token()
    uploaded = httpx.post(f"{wecom.api}/cgi-bin/media/upload", params={"access_token": token, "type": "file"},
                          files={"media": ("门店.csv", gbk, "text/csv")}, trust_env=False).json()
    wecom.sender.send_file(USER, uploaded["media_id"])
    dry = wait_texts(wecom, lambda t: "试运行" in t)
    assert "门店.csv" in dry and "gb18030" in dry.lower() and "2 行可以生成" in dry
    wecom.sender.send_text(USER, "start")
    wait_texts(wecom, lambda t: "完成" in t and "新建 2" in t)


def test_help_lists_bulk_and_help_bulk_gives_the_columns_each_in_one_text(wecom: WeComSite) -> None:  # noqa: F811
    from bot.batch.sheets import COLUMNS, MAX_ROWS

    wecom.sender.send_enter_agent(USER)  # the welcome carries the overview
    wecom.sender.send_text(USER, "帮助")
    wecom.sender.send_text(USER, "帮助 批量")
    wecom.sent(3)
    wecom.settle(0.5)
    welcome, overview, detail = wecom.texts()  # each one message: nothing was split
    assert len(wecom.emu.sent_messages) == 3
    for text in (welcome, overview):
        assert "• 批量｜bulk ⏎ <header> ⏎ <row> …" in text and "上传表格的链接" in text and "upload link" in text
        assert "私信" not in text and "DM" not in text  # Slack's ways are not WeCom's
        assert len(text.encode()) <= 2048
    assert welcome.startswith("你好")
    assert len(detail.encode()) <= 2048
    listed = [line.split()[0] for line in detail.splitlines() if line.startswith("  ")]
    assert listed == list(COLUMNS)
    assert "推广活动" in detail and f"{MAX_ROWS} 行" in detail and "回复「开始」" in detail and "manifest" in detail


def test_without_a_public_url_bulk_offers_no_link_and_says_what_it_needs(wecom: WeComSite) -> None:  # noqa: F811
    # The site's settings give no MINPCODE_PUBLIC_URL: a link to the default (or serve's own loopback
    # address) would look right on a phone and lead nowhere.
    assert wecom.service.settings.people_url is None
    wecom.sender.send_text(USER, "批量")
    text = wait_texts(wecom, lambda t: "MINPCODE_PUBLIC_URL" in t)
    assert "/batches/upload/" not in text and "http" not in text
    assert text.index("上传链接") < text.index("upload link")  # Chinese first in WeCom
