"""Links in the chats (Slack, WeCom and the console share the grammar and the answers): ``type=urllink|scheme``,
``plain=yes``, ``expire_days``/``expire-days``, every answer about a link saying when it expires and where it
opens, ``list`` and ``quota``; Slack's form and WeCom's card offer the two types. Over the WeChat emulator on a
real loopback port and a real SQLite file."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.kinds import offered
from bot.models import Requester
from bot.server import open_service
from bot.service import Service
from handlers import commands
from handlers.grammar import help_text, parse
from handlers.slack import parse as slack_parse
from handlers.slack import views
from handlers.wecom.cards import kinds as wecom_kinds
from handlers.wecom.cards import short_label
from tests.emulators.upstreams import Upstreams

ZH = Requester(chat="console", user_id="me", lang="zh")
EN = Requester(chat="console", user_id="me", lang="en")


@pytest.fixture
async def service(upstreams: Upstreams, tmp_path: Path) -> AsyncIterator[Service]:
    upstreams.wechat.reset_counts()
    async with open_service(upstreams.settings(tmp_path, minpcode_plain_scheme=True)) as svc:
        yield svc


@pytest.mark.parametrize(("text", "fields"), [
    ("new pages/a/a?id=1 type=urllink expire-days=7", {"type": "urllink", "expire_days": "7"}),
    ("new pages/a/a type=url-link expire_days=7", {"type": "urllink", "expire_days": "7"}),
    ("新建 pages/a/a 类型=scheme 明文=是", {"type": "scheme", "plain": "yes"}),
    ("new pages/a/a type=URLScheme 有效天数=30", {"type": "scheme", "expire_days": "30"}),
])
def test_the_grammar_takes_the_link_types(text: str, fields: dict[str, str]) -> None:
    assert parse(text).fields == fields


def test_help_says_where_each_link_opens() -> None:
    text = help_text("en", "new")
    assert "urllink" in text and "scheme" in text and "plain=yes" in text and "expire_days" in text
    assert "opens inside WeChat only" in text and "SMS" in text
    assert "60,000 pages" in text  # what check=no allows


async def test_a_url_link_answer_says_when_it_expires_and_where_it_opens(service: Service) -> None:
    reply = await commands.run(service, "new pages/goods/goods?id=9 type=urllink expire-days=7", EN)
    assert reply.ok and reply.public and reply.image is None
    record = reply.record
    assert record is not None and record.link and record.link in reply.en
    assert re.search(r"Expires: \d{4}-\d{2}-\d{2} \d{2}:\d{2}", reply.en) and "有效期至" in reply.zh
    assert "SMS, email, web pages" in reply.en
    shown = commands.show(service, record.id)
    assert "Expires:" in shown.en and "URL Link: https://wxaurl.cn/" in shown.en
    listed = await commands.run(service, "list", EN)
    assert "(至 until" in listed.en


async def test_every_short_link_answer_says_inside_wechat_and_30_days(service: Service) -> None:
    reply = await commands.run(service, "new pages/a/a type=shortlink", ZH)
    assert "只能在微信里打开" in reply.zh and "opens inside WeChat only" in reply.en
    assert "有效期至" in reply.zh
    lasting = await commands.run(service, "new pages/a/a type=shortlink permanent=yes", ZH)
    assert "有效期: 永久" in lasting.zh and "Expires: never" in lasting.en


async def test_a_plain_scheme_answer_never_expires(service: Service) -> None:
    reply = await commands.run(service, "new pages/coupon/get?id=3 type=scheme plain=yes", EN)
    assert reply.ok and "weixin://dl/business/?appid=" in reply.en and "Expires: never" in reply.en
    assert "URL Scheme (plain text)" in reply.en


async def test_quota_shows_the_links(service: Service) -> None:
    await commands.run(service, "new pages/a/a type=urllink", EN)
    reply = await commands.run(service, "quota", EN)
    assert "URL Links + URL Schemes made today" in reply.en and "of 500,000" in reply.en
    assert "Permanent Short Links made: 0 of 100,000" in reply.en and "永久短链" in reply.zh


def test_slack_form_and_wecom_card_offer_the_link_types() -> None:
    assert {"wx-urllink", "wx-scheme"} <= set(views.kinds_for(gio=False))
    form = views.code_form(kind="wx-scheme", kinds=views.kinds_for(False), apps=[], metadata="{}")
    blocks = {b.get("block_id") for b in form["blocks"]}
    assert {"page", "expire_days", "link_options", "env_version"} <= blocks and "scene" not in blocks
    state = {"type": {"type": {"type": "static_select", "selected_option": {"value": "wx-scheme"}}},
             "page": {"page": {"type": "plain_text_input", "value": "pages/a/a"}},
             "expire_days": {"expire_days": {"type": "number_input", "value": "30"}},
             "link_options": {"link_options": {"type": "checkboxes", "selected_options": [{"value": "plain"}]}}}
    fields = slack_parse.form_fields(state)
    assert fields["type"] == "scheme" and fields["plain"] is True and "expire_days" not in fields
    labels = [short_label(k) for k in wecom_kinds(False)]
    assert "URL Link" in labels and "URL Scheme" in labels and len(labels) <= 10  # WeCom's cap per dropdown
    assert {k.id for k in offered(False)} >= {"wx-urllink", "wx-scheme"}
