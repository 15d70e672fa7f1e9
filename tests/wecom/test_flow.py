"""The WeCom form end to end: ``新建`` → card → card event → page (→ scene) → image and details.

Same wiring as ``test_wecom_callback.py``: our real server and the WeCom emulator on loopback ports; the
card events carry the emulator's real response codes, so greying the card out is checked by the emulator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.emulators.wecom import CardState
from tests.wecom.test_callback import USER, WeComSite, wecom  # noqa: F401  (the fixture)


def card_sent(site: WeComSite, count: int) -> CardState:
    """The ``count``-th card sent (1-based), once it has been sent."""
    deadline = time.monotonic() + 15
    while True:
        cards = [m for m in site.emu.sent_messages if m.msgtype == "template_card"]
        if len(cards) >= count:
            return site.emu.cards[cards[count - 1].body["template_card"]["task_id"]]
        assert time.monotonic() < deadline, f"card {count} never sent"
        time.sleep(0.01)


def options(card: CardState, question: str) -> list[str]:
    select = next(s for s in card.card["select_list"] if s["question_key"] == question)
    return [o["id"] for o in select["option_list"]]


def wait_text(site: WeComSite, count: int, contains: str = "") -> str:
    """The ``count``-th text message to the user (1-based), once sent; checks it contains ``contains``."""
    deadline = time.monotonic() + 15
    while True:
        texts = site.texts()
        if len(texts) >= count:
            assert contains in texts[count - 1], texts[count - 1]
            return texts[count - 1]
        assert time.monotonic() < deadline, f"text {count} never sent; got {texts}"
        time.sleep(0.01)


def submit(site: WeComSite, card: CardState, later: int = 0, **selected: str) -> None:
    """Click the card's submit button; ``later`` seconds on (WeCom dedupes events by sender + CreateTime)."""
    response = site.sender.send_template_card_event(USER, card.task_id, "submit", selected=selected,
                                                    create_time=int(time.time()) + later)
    assert response.status_code == 200


def greyed(site: WeComSite, card: CardState, label: str = "已提交 ✓") -> None:
    deadline = time.monotonic() + 15
    while card.replaced_name.get(USER) != label:
        assert time.monotonic() < deadline, f"card {card.task_id} not updated: {card.replaced_name}"
        time.sleep(0.01)


def test_card_flow_makes_a_tracking_link(wecom: WeComSite, scan: Callable[[bytes], Any]) -> None:  # noqa: F811
    wecom.sender.send_text(USER, "新建")
    card = card_sent(wecom, 1)
    assert card.card["card_type"] == "multiple_interaction" and card.recipients == [USER]
    assert [s["question_key"] for s in card.card["select_list"]] == ["kind", "campaign", "channel"]
    assert "gio-A" in options(card, "kind") and "SbxCmp01" in options(card, "campaign")

    submit(wecom, card, kind="gio-A", campaign="SbxCmp01", channel="jinritoutiao")
    greyed(wecom, card)  # through update_template_card with the event's response code
    ask = wait_text(wecom, 1, "请发送页面路径")
    assert "双十一推广" in ask and ask.index("请发送") < ask.index("Send the page path")

    wecom.sender.send_text(USER, "pages/list/list?from=poster")
    image = next(m for m in wecom.sent(4) if m.msgtype == "image")
    details = wait_text(wecom, 2, "监测链接")
    code = scan(wecom.emu.uploaded_media[image.media_id or ""])
    assert code.kind == "A" and code.page.startswith("pages/list/list?from=poster")
    record = wecom.service.recent()[0]
    assert record.campaign == "双十一推广" and record.channel == "今日头条" and record.provider.value == "gio"
    for value in (record.id, record.name or "", "pages/list/list", "双十一推广", "今日头条", record.tracking_url or "-"):
        assert value in details
    assert [m.msgtype for m in wecom.emu.sent_messages] == ["template_card", "text", "image", "text"]

    # the same card clicked again (a double tap, or an old card): no second code, and it says so
    submit(wecom, card, later=2, kind="gio-A", campaign="SbxCmp01", channel="jinritoutiao")
    wait_text(wecom, 3, "已经提交过")
    assert wecom.service.storage.history.count() == 1 and len(wecom.emu.uploaded_media) == 1


def test_card_flow_b_code_asks_for_the_scene(wecom: WeComSite, scan: Callable[[bytes], Any]) -> None:  # noqa: F811
    wecom.sender.send_text(USER, "/minpcode 新建")
    card = card_sent(wecom, 1)
    submit(wecom, card, kind="wx-B", campaign="SbxCmp02", channel="weibo")
    greyed(wecom, card)
    wait_text(wecom, 1, "不能带 ?参数")
    wecom.sender.send_text(USER, "pages/index/index?x=1")  # a B page cannot carry a query: asked again
    wait_text(wecom, 2, "请修改后重新发送")
    wecom.sender.send_text(USER, "pages/index/index")
    wait_text(wecom, 3, "请发送 scene")
    wecom.sender.send_text(USER, "帮助")  # commands still work in the middle of the form
    wait_text(wecom, 4, "列表")
    wecom.sender.send_text(USER, "id=7")
    image = next(m for m in wecom.sent(7) if m.msgtype == "image")
    code = scan(wecom.emu.uploaded_media[image.media_id or ""])
    assert (code.kind, code.page, code.scene) == ("B", "pages/index/index", "id=7")
    record = wecom.service.recent()[0]
    assert record.campaign is None and record.provider.value == "wechat"  # B codes ignore campaign/channel


def test_long_lists_are_paged_by_a_follow_up_card(wecom: WeComSite) -> None:  # noqa: F811
    gio = wecom.service.upstream.emulators[1]
    gio.campaigns.extend({"id": f"SbxMore{n:02d}", "name": f"活动{n:02d}"} for n in range(15))  # 18 in all
    wecom.sender.send_text(USER, "新建")
    card = card_sent(wecom, 1)
    first_page = options(card, "campaign")
    assert len(first_page) == 10 and first_page[-1] == "more:1" and len(options(card, "channel")) == 5

    submit(wecom, card, kind="gio-C", campaign="more:1", channel="SbxChn01")
    greyed(wecom, card)
    follow_up = card_sent(wecom, 2)
    assert [s["question_key"] for s in follow_up.card["select_list"]] == ["campaign"]
    second_page = options(follow_up, "campaign")
    assert len(second_page) == 9 and not set(second_page) & set(first_page)

    submit(wecom, follow_up, campaign="SbxMore14")
    greyed(wecom, follow_up)
    wait_text(wecom, 1, "活动14")
    wecom.sender.send_text(USER, "pages/a/a")
    wait_text(wecom, 2, "码已生成")
    record = wecom.service.recent()[0]
    assert (record.type.value, record.campaign, record.channel) == ("C", "活动14", "二维码推广")


def test_token_expiring_mid_flow_is_refreshed_once(wecom: WeComSite) -> None:  # noqa: F811
    wecom.sender.send_text(USER, "新建")
    card = card_sent(wecom, 1)
    wecom.emu.expire_tokens()  # 42001 from the next call on
    submit(wecom, card, kind="wx-A", campaign="SbxCmp01", channel="weibo")
    greyed(wecom, card)
    wait_text(wecom, 1, "请发送页面路径")
    wecom.sender.send_text(USER, "pages/a/a")
    wait_text(wecom, 2, "码已生成")
    assert len(wecom.emu.calls_to("gettoken")) == 2
    refused = [(c.path, c.errcode) for c in wecom.emu.calls if c.errcode]
    assert refused == [("/cgi-bin/message/update_template_card", 42001)]


def test_cancel_stale_cards_and_a_new_form_replacing_the_old(wecom: WeComSite) -> None:  # noqa: F811
    wecom.sender.send_text(USER, "新建")
    first = card_sent(wecom, 1)
    wecom.sender.send_text(USER, "新建")  # a second form replaces the first
    second = card_sent(wecom, 2)
    submit(wecom, first, kind="wx-A", campaign="SbxCmp01", channel="weibo")
    greyed(wecom, first, "已失效")
    wait_text(wecom, 1, "已经提交过")
    submit(wecom, second, kind="wx-A", campaign="SbxCmp01", channel="weibo")
    wait_text(wecom, 2, "请发送页面路径")
    wecom.sender.send_text(USER, "取消")
    wait_text(wecom, 3, "已取消")
    wecom.sender.send_text(USER, "pages/a/a")  # no form any more: read as a command
    wait_text(wecom, 4, "没有「pages/a/a」这个命令")
    assert wecom.service.storage.history.count() == 0


def test_menu_click_and_welcome(wecom: WeComSite) -> None:  # noqa: F811
    wecom.sender.send_enter_agent(USER)
    wait_text(wecom, 1, "你好")
    wecom.sender.send_enter_agent(USER, create_time=int(time.time()) + 1)  # welcomed once a day only
    wecom.sender.send_click(USER, "cmd:new")
    card_sent(wecom, 1)
    assert len(wecom.texts()) == 1


def test_every_kind_has_a_card_label_within_wecoms_option_limit() -> None:
    from bot.kinds import KINDS
    from handlers.wecom.cards import OPTION_TEXT_MAX, kinds, short_label

    for kind in KINDS.values():
        assert 0 < len(short_label(kind)) <= OPTION_TEXT_MAX
    assert [k.id for k in kinds(False)] == ["wx-B", "wx-A", "wx-C", "wx-shortlink", "wx-urllink", "wx-scheme"]
