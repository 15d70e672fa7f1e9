"""Live codes in WeCom: the same words as everywhere (新建 … 活码=是, 改指向, 暂停, 恢复, 统计), over our real
server and the WeCom emulator (tests/wecom/test_callback.py's wiring)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.wecom.test_callback import USER, WeComSite, wecom  # noqa: F401  (the fixture)
from tests.wecom.test_flow import wait_text


def test_the_same_words_make_repoint_pause_resume_and_count(wecom: WeComSite,  # noqa: F811
                                                            scan: Callable[[bytes], Any]) -> None:
    wecom.sender.send_text(USER, "新建 pages/coupon/get?id=3 活码=是 名称=企业微信活码")
    image = next(m for m in wecom.sent(2) if m.msgtype == "image")
    code = scan(wecom.emu.uploaded_media[image.media_id or ""])
    record = wecom.service.recent()[0]
    assert (code.kind, code.page, code.scene) == ("B", "pages/minpcode/router", record.scene)
    wait_text(wecom, 1, "pages/coupon/get?id=3")
    assert wecom.service.live.resolve(record.scene or "", visitor="wx-user") is not None

    wecom.sender.send_text(USER, f"改指向 {record.id} pages/spring/index")
    wait_text(wecom, 2, "pages/spring/index")
    wecom.sender.send_text(USER, f"暂停 {record.id}")
    wait_text(wecom, 3, "已暂停")
    paused = wecom.service.live.resolve(record.scene or "")
    assert paused is not None and paused.paused and paused.page == "pages/index/index"
    wecom.sender.send_text(USER, f"恢复 {record.id}")
    wait_text(wecom, 4, "已恢复")
    wecom.sender.send_text(USER, f"统计 {record.id}")
    wait_text(wecom, 5, "共 2 次")
    assert any(m.msgtype == "image" for m in wecom.sent(7)[-2:])  # the per-day chart
