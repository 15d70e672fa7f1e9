"""Summaries: the numbers from a real (sandbox) history, their renderings, and posting over real wires.

History rows are made by the real service in sandbox mode; their timestamps come from a clock the
test sets (``Wall``), injected where storage reads the time.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from bot.announce import announce, cli_summary
from bot.config import Settings
from bot.models import Requester, Status
from bot.server import announcers, open_service
from bot.service import Service
from bot.summary import (
    DayCount,
    FailureGroup,
    Summary,
    Tally,
    build_summary,
    period_for_days,
    render_text,
    summary_chart,
    summary_for_days,
)
from handlers.commands import summary_reply
from handlers.slack.summary_view import slack_blocks
from handlers.wecom.announce import fit_image, mask_webhook
from handlers.wecom.summary_view import WECOM_MARKDOWN_MAX, wecom_markdown
from storage.clock import to_text
from tests.emulators.slack import OTHER_PUBLIC_CHANNEL, PUBLIC_CHANNEL, UPLOAD_METHOD, SlackEmulator
from tests.emulators.wecom import WeComEmulator

SHANGHAI = ZoneInfo("Asia/Shanghai")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ZHANG = Requester(chat="slack", user_id="U1", user_name="张三")
LI = Requester(chat="wecom", user_id="lisi", user_name="李四")


class Wall:
    """The time storage stamps rows with (``storage.clock`` text), set by the test."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def text(self) -> str:
        return to_text(self.now)

    def set(self, moment: datetime) -> None:
        self.now = moment

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # slack_sdk and httpx honour proxy variables; every wire here is loopback
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> Wall:
    """Inject a settable clock where storage stamps history, audit, ledger and image rows."""
    clock = Wall(datetime(2025, 3, 10, 1, 0, tzinfo=UTC))  # Monday 09:00 in Shanghai
    for module in ("storage.history", "storage.audit", "storage.ledger", "storage.images"):
        monkeypatch.setattr(f"{module}.now_text", clock.text)
    return clock


def sandbox_settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(_env_file=None, minpcode_data_dir=tmp_path, minpcode_sandbox=True, **extra)  # type: ignore[call-arg]


@pytest.fixture
async def service(tmp_path: Path, database_url: str | None) -> AsyncIterator[Service]:
    svc = open_service(sandbox_settings(tmp_path, minpcode_database_url=database_url))  # the counts on both backends
    assert svc.storage.dialect == ("postgresql" if database_url else "sqlite")
    async with svc:
        yield svc


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A Shanghai wall-clock time in the week of 2025-03-03 (Monday) .. 2025-03-09 (Sunday)."""
    return datetime(2025, 3, day, hour, minute, tzinfo=SHANGHAI)


async def fill_week(service: Service, wall: Wall) -> dict[str, str]:
    """A week of activity; returns the ids of some rows by role."""
    ids: dict[str, str] = {}

    async def make(when: datetime, request: dict, who: Requester) -> str:
        wall.set(when)
        submission = await service.submit(request, who)
        return submission.record.id

    # Monday: two GrowingIO tracking links under a Chinese campaign, and a reuse of the first
    ids["gio1"] = await make(at(3, 10), {"page": "pages/index/index", "campaign": "双十一推广",
                                         "channel": "二维码推广"}, ZHANG)
    await make(at(3, 11), {"page": "pages/goods/detail?id=1", "campaign": "双十一推广", "channel": "微博"}, LI)
    ids["reuse"] = await make(at(3, 12), {"page": "pages/index/index", "campaign": "双十一推广",
                                          "channel": "二维码推广"}, LI)
    # Wednesday: a B code and a C code through WeChat, a Short Link
    await make(at(5, 9), {"type": "B", "page": "pages/goods/detail", "scene": "id=7"}, ZHANG)
    ids["c"] = await make(at(5, 15), {"type": "C", "page": "pages/goods/detail?id=2", "via": "wechat"}, ZHANG)
    await make(at(5, 16), {"type": "shortlink", "page": "pages/index/index", "title": "首页"}, LI)
    # Friday: WeChat refuses two B codes for the same reason
    service.upstream.emulators[0].inject(41030, times=2)
    ids["fail1"] = await make(at(7, 10), {"type": "B", "page": "pages/gone/gone", "scene": "a=1"}, ZHANG)
    await make(at(7, 10, 5), {"type": "B", "page": "pages/gone/gone", "scene": "a=2"}, ZHANG)
    # Sunday 23:30 in Shanghai (15:30 UTC): still this week; and a code deleted afterwards
    ids["late"] = await make(at(9, 23, 30), {"page": "pages/promo/promo", "campaign": "新品上市",
                                             "channel": "线下地推"}, LI)
    wall.set(at(9, 23, 45))
    service.delete(ids["late"], LI)
    # Monday 00:10 of the next week: outside the period
    await make(at(10, 0, 10), {"type": "B", "page": "pages/next/next", "scene": "n=1"}, LI)
    return ids


def week_summary(service: Service) -> Summary:
    return build_summary(service, at(3, 0), at(10, 0), now=at(10, 9))


# -- the numbers ---------------------------------------------------------------------------------------------


async def test_summary_counts_a_week_of_real_history(service: Service, wall: Wall) -> None:
    ids = await fill_week(service, wall)
    assert service.get(ids["reuse"]).id == ids["gio1"]  # the reuse answered with the first code
    s = week_summary(service)

    assert s.requested == 8  # the reuse made no row; the next week's code is outside
    assert s.made == 6 and s.failed == 2 and s.pending == 0
    assert s.deleted == 1 and s.deleted_in_period == 1  # deleted, yet still counted as made
    assert s.tracking_links == 3
    assert s.reused == 1 and s.quota_saved == 1  # an A code reused: one quota unit saved
    assert {t.name: t.count for t in s.by_type} == {"A": 3, "B": 1, "C": 1, "shortlink": 1}
    assert {t.name: t.count for t in s.by_campaign} == {"双十一推广": 2, "新品上市": 1, None: 3}
    assert {t.name: t.count for t in s.by_channel} == {"二维码推广": 1, "微博": 1, "线下地推": 1, None: 3}
    assert {t.name: t.count for t in s.by_person} == {"张三": 3, "李四": 3}  # codes made; the reuse is in `reused`
    for tallies in (s.by_type, s.by_campaign, s.by_channel, s.by_person):  # every breakdown sums to `made`
        assert sum(t.count for t in tallies) == s.made
    assert sum(d.total for d in s.daily) == s.made
    [failure] = s.failures
    assert failure.code == "41030" and failure.count == 2 and ids["fail1"] in failure.ids
    assert "页面" in failure.zh and "page" in failure.en.lower()
    [quota] = s.quota
    assert quota.used_in_period == 4 and quota.used == 4 and quota.left == quota.cap - 4  # 3 GIO A + 1 C
    assert quota.warning_zh is None
    assert s.top_pages[0] == Tally(name="pages/index/index", count=3)  # made twice (A, short link) + one reuse
    assert [d.day.isoformat() for d in s.daily] == [f"2025-03-0{d}" for d in range(3, 10)]
    assert [d.total for d in s.daily] == [2, 0, 3, 0, 0, 0, 1]
    assert s.daily[6].by_campaign == {"新品上市": 1}  # Sunday 23:30 Shanghai is Sunday, not Monday (UTC)
    assert not s.empty


async def test_near_the_cap_warns_and_quota_is_per_mini_program(tmp_path: Path, wall: Wall) -> None:
    svc = open_service(sandbox_settings(tmp_path, minpcode_ac_cap=5))
    async with svc:
        for n in range(4):
            wall.set(at(4, 10, n))
            await svc.submit({"type": "C", "page": f"pages/a/a?n={n}", "via": "wechat"}, ZHANG)
        s = build_summary(svc, at(3, 0), at(10, 0))
    [quota] = s.quota
    assert (quota.used, quota.cap, quota.left) == (4, 5, 1)
    assert quota.warning_zh and "4/5" in quota.warning_zh and quota.warning_en
    assert "⚠" in render_text(s, "en")
    assert any(":warning:" in json.dumps(b) for b in slack_blocks(s, "en"))
    assert 'color="warning"' in wecom_markdown(s, "zh")


async def test_on_demand_period_is_calendar_days_in_the_timezone(service: Service) -> None:
    now = datetime(2025, 3, 9, 17, 0, tzinfo=UTC)  # Monday 01:00 in Shanghai
    start, end = period_for_days(7, now, SHANGHAI)
    assert start == datetime(2025, 3, 4, 0, 0, tzinfo=SHANGHAI) and end == now
    s = summary_for_days(service, 1, now=now)
    assert s.start == datetime(2025, 3, 10, 0, 0, tzinfo=SHANGHAI) and len(s.daily) == 1
    assert "截至 01:00" in render_text(s, "zh")


async def test_empty_period_says_so_briefly(service: Service) -> None:
    s = summary_for_days(service, 7, now=datetime(2025, 3, 10, 1, 0, tzinfo=UTC))
    assert s.empty and summary_chart(s) is None
    reply = await summary_reply(service, 7, ZHANG, now=datetime(2025, 3, 10, 1, 0, tzinfo=UTC))
    assert reply.ok and reply.image is None
    assert "本周没有新动静" in reply.zh and "Nothing this week" in reply.en
    assert len(reply.zh.splitlines()) == 2  # title and one sentence: short, not silent
    assert "Nothing in these 3 days" in render_text(summary_for_days(service, 3), "en")
    blocks = slack_blocks(s, "en")
    assert [b["type"] for b in blocks] == ["header", "section", "context"]


# -- the renderings ------------------------------------------------------------------------------------------


async def test_text_and_json_for_the_terminal(service: Service, wall: Wall) -> None:
    await fill_week(service, wall)
    now = at(9, 23, 59)
    text, code = await cli_summary(service, days=7, now=now, lang="en")
    assert code == 0
    assert "6 codes made (3 GrowingIO tracking links, 1 deleted since) · 2 failed" in text
    assert "1 reuse, saving 1 A/C quota" in text
    assert "By campaign: 双十一推广 2 · (none) 3" not in text  # ranked by count
    assert "By campaign: (none) 3 · 双十一推广 2 · 新品上市 1" in text
    zh, _ = await cli_summary(service, days=7, now=now, lang="zh")
    assert "生成 6 个码" in zh and "复用 1 次，节省 A/C 额度 1 个" in zh and "[41030]" in zh
    raw, code = await cli_summary(service, days=7, now=now, as_json=True)
    data = json.loads(raw)
    assert code == 0 and data["made"] == 6 and data["reused"] == 1 and data["quota_saved"] == 1
    assert data["failures"][0]["code"] == "41030" and data["timezone"] == "Asia/Shanghai"
    assert sum(day["total"] for day in data["daily"]) == 6


async def test_bad_days_and_nowhere_to_post(service: Service) -> None:
    reply = await summary_reply(service, 400, ZHANG)
    assert not reply.ok
    text, code = await cli_summary(service, days=9999, lang="en")
    assert code == 2 and "between 1 and" in text
    text, code = await cli_summary(service, announcers(service.settings), post=True, lang="en")
    assert code == 2 and "SLACK_SUMMARY_CHANNEL" in text and "WECOM_WEBHOOK_URL" in text


async def test_reply_carries_the_chart(service: Service, wall: Wall) -> None:
    await fill_week(service, wall)
    reply = await summary_reply(service, 7, ZHANG, now=at(9, 23, 59))
    assert reply.ok and reply.image_mime == "image/png" and reply.image and reply.image.startswith(PNG_MAGIC)
    assert reply.data["summary"]["made"] == 6
    assert "双十一推广" in reply.zh and "By campaign" in reply.en


def big_summary(n: int = 300) -> Summary:
    """A summary with far too much in it for one chat message."""
    names = [f"超长的推广活动名称第{i}号-{'促销' * 5}" for i in range(n)]
    return Summary(
        start=at(3, 0), end=at(10, 0), timezone="Asia/Shanghai", generated_at=at(10, 9),
        requested=n * 3, made=n * 3, failed=n,
        by_type=[Tally(name="A", count=n * 3)],
        by_campaign=[Tally(name=name, count=3) for name in names],
        by_channel=[Tally(name=f"渠道{i}", count=3) for i in range(n)],
        by_person=[Tally(name=f"同事{i}", count=3) for i in range(n)],
        failures=[FailureGroup(code=str(40000 + i), zh="页面路径不对，" * 40, en="bad page " * 40, count=1,
                               ids=[f"id{i}"]) for i in range(n)],
        top_pages=[Tally(name=f"pages/p{i}/index", count=2) for i in range(10)],
    )


def test_wecom_markdown_fits_4096_bytes_and_says_what_it_left_out() -> None:
    s = big_summary()
    for lang in ("zh", "en"):
        md = wecom_markdown(s, lang)  # type: ignore[arg-type]
        assert len(md.encode("utf-8")) <= WECOM_MARKDOWN_MAX
        more = re.findall(r"…另有 (\d+) 项" if lang == "zh" else r"…and (\d+) more", md)
        assert more, md
        # honest: the shown campaign items plus "N more" add up to all 300
        line = next(ln for ln in md.splitlines() if ln.startswith("**按推广活动**" if lang == "zh" else "**By campaign**"))
        shown = line.count("超长的推广活动名称")
        hidden = int(re.search(r"(?:另有 |and )(\d+)", line).group(1))  # type: ignore[union-attr]
        assert shown + hidden == 300
    small = wecom_markdown(big_summary(2), "zh")
    assert "另有" not in small.split("**失败原因**")[0]


def test_wecom_markdown_cuts_visibly_as_a_last_resort() -> None:
    md = wecom_markdown(big_summary(3), "zh", max_bytes=300)
    assert len(md.encode("utf-8")) <= 300 and md.endswith("（内容过长，已截断）")


def test_slack_blocks_respect_block_kit_limits() -> None:
    blocks = slack_blocks(big_summary(), "zh")
    assert len(blocks) <= 50
    assert len(blocks[0]["text"]["text"]) <= 150
    for block in blocks:
        if block["type"] == "section":
            if "text" in block:
                assert len(block["text"]["text"]) <= 3000
            for f in block.get("fields", []):
                assert len(f["text"]) <= 2000
            assert len(block.get("fields", [])) <= 10
    assert "…另有 292 项" in json.dumps(blocks, ensure_ascii=False)


def test_slack_text_is_escaped() -> None:
    s = Summary(start=at(3, 0), end=at(10, 0), timezone="Asia/Shanghai", generated_at=at(10, 9), requested=1,
                made=1, top_pages=[Tally(name="pages/a/a?x=1&y=<2>", count=1)])
    text = json.dumps(slack_blocks(s, "en"))
    assert "&amp;y=&lt;2&gt;" in text and "<2>" not in text


# -- posting over real wires ---------------------------------------------------------------------------------------


def settings_for(tmp_path: Path, slack: SlackEmulator | None, webhook: str | None,
                 channel: str = PUBLIC_CHANNEL) -> Settings:
    extra: dict[str, object] = {}
    if slack is not None:
        extra.update(slack_bot_token=slack.bot_token, slack_api_url=slack.api_url, slack_summary_channel=channel)
    if webhook is not None:
        extra["wecom_webhook_url"] = webhook
    return sandbox_settings(tmp_path, **extra)


def check_png(data: bytes) -> None:
    assert data.startswith(PNG_MAGIC)
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.width >= 600 and image.height >= 300


async def test_cli_post_goes_to_slack_and_wecom_with_the_chart(tmp_path: Path, wall: Wall, slack: SlackEmulator,
                                                              wecom: tuple[WeComEmulator, str]) -> None:
    robot, webhook = wecom
    svc = open_service(settings_for(tmp_path, slack, webhook))
    async with svc:
        await fill_week(svc, wall)
        text, code = await cli_summary(svc, announcers(svc.settings), days=7, post=True, now=at(9, 23, 59), lang="en")
        [run] = svc.storage.summary_runs.recent(kind="manual")
    assert code == 0, text
    assert "Posted to Slack C0GENERAL." in text and "Posted to WeCom group robot." in text

    [message] = slack.calls_to("chat.postMessage")
    assert message.ok and message["channel"] == PUBLIC_CHANNEL
    blocks = json.loads(message["blocks"]) if isinstance(message["blocks"], str) else message["blocks"]
    assert blocks[0]["type"] == "header" and "双十一推广" in json.dumps(blocks, ensure_ascii=False)
    [upload] = slack.uploads
    assert upload.channel_id == PUBLIC_CHANNEL and upload.filename.endswith(".png")
    check_png(upload.data or b"")

    markdown, image = robot.webhook_messages
    assert markdown.msgtype == "markdown" and "双十一推广" in markdown.body["markdown"]["content"]
    assert image.msgtype == "image" and image.image is not None
    check_png(image.image)
    assert image.body["image"]["md5"] == hashlib.md5(image.image).hexdigest()
    assert image.image == upload.data  # the same chart everywhere
    assert run.status == "posted" and run.done_steps == {"slack.message", "slack.chart", "wecom.markdown",
                                                          "wecom.image"}


async def test_cli_post_reports_a_failed_destination(tmp_path: Path, slack: SlackEmulator,
                                                     wecom: tuple[WeComEmulator, str]) -> None:
    _, webhook = wecom
    bad = webhook.replace("robot-key", "wrong-key")
    svc = open_service(settings_for(tmp_path, slack, bad))
    async with svc:
        text, code = await cli_summary(svc, announcers(svc.settings), days=7, post=True, lang="en")
        [run] = svc.storage.summary_runs.recent(kind="manual")
    assert code == 1
    assert "Posted to Slack" in text and "Could not post to WeCom group robot: WeCom: errcode 93000" in text
    assert "wrong-key" not in text
    assert run.status == "failed" and run.done_steps == {"slack.message"}  # empty period: no chart
    assert "Nothing this week" in slack.calls_to("chat.postMessage")[0]["text"]


async def test_slack_joins_a_public_channel_it_is_not_in(tmp_path: Path, wall: Wall, slack: SlackEmulator) -> None:
    svc = open_service(settings_for(tmp_path, slack, None, channel=OTHER_PUBLIC_CHANNEL))
    async with svc:
        await fill_week(svc, wall)
        text, code = await cli_summary(svc, announcers(svc.settings), days=7, post=True, now=at(9, 23, 59), lang="en")
    assert code == 0, text
    assert [c.error for c in slack.calls_to("chat.postMessage")] == ["not_in_channel", None]
    assert slack.calls_to("conversations.join", ok=True)
    assert slack.uploads[0].channel_id == OTHER_PUBLIC_CHANNEL
    assert slack.calls_to(UPLOAD_METHOD)


async def test_post_skips_steps_already_done(tmp_path: Path, slack: SlackEmulator,
                                             wecom: tuple[WeComEmulator, str]) -> None:
    robot, webhook = wecom
    settings = settings_for(tmp_path, slack, webhook)
    made = Summary(start=at(3, 0), end=at(4, 0), timezone="Asia/Shanghai", generated_at=at(4, 0), requested=1,
                   made=1, daily=[DayCount(day=at(3, 0).date(), total=1, by_campaign={"双十一推广": 1})])
    seen: list[str] = []
    outcomes = await announce(announcers(settings), made, done={"slack.message", "wecom.markdown"},
                              on_step=seen.append)
    assert all(o.ok for o in outcomes) and seen == ["slack.chart", "wecom.image"]
    assert not slack.calls_to("chat.postMessage") and len(slack.uploads) == 1
    assert [m.msgtype for m in robot.webhook_messages] == ["image"]


def summary_chart_for_test() -> bytes:
    from bot.chart import daily_chart

    return daily_chart([at(3, 0).date()], {"双十一推广": [1]}, title="t", ylabel="n", legend_title="c")


def test_configured_destinations(tmp_path: Path) -> None:
    def configured_destinations(settings: Settings) -> list[str]:
        return [a.name for a in announcers(settings)]

    assert configured_destinations(sandbox_settings(tmp_path)) == []
    assert configured_destinations(sandbox_settings(tmp_path, slack_summary_channel="C1")) == []  # no token
    both = sandbox_settings(tmp_path, slack_summary_channel="C1", slack_bot_token="xoxb-1",
                            wecom_webhook_url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k")
    assert configured_destinations(both) == ["slack", "wecom"]
    assert mask_webhook("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=secret") == \
        "qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***"


def test_images_over_2mb_are_reencoded_for_wecom() -> None:
    rng = random.Random(7)
    noise = Image.frombytes("RGB", (1100, 1100), bytes(rng.getrandbits(8) for _ in range(1100 * 1100 * 3)))
    out = io.BytesIO()
    noise.save(out, format="PNG")
    big = out.getvalue()
    assert len(big) > 2 * 1024 * 1024
    small = fit_image(big)
    assert len(small) <= 2 * 1024 * 1024
    with Image.open(io.BytesIO(small)) as image:
        assert image.format in ("PNG", "JPEG")
    chart = summary_chart_for_test()
    assert fit_image(chart) is chart  # small enough: untouched
    payload = base64.b64encode(small)
    assert base64.b64decode(payload) == small


async def test_deleted_codes_stay_in_the_history_the_summary_reads(service: Service, wall: Wall) -> None:
    ids = await fill_week(service, wall)
    assert service.get(ids["late"]).status is Status.DELETED
    s = week_summary(service)
    assert s.daily[6].total == 1 and s.deleted == 1
    assert "1 deleted since" in render_text(s, "en")
    assert summary_chart(s, "zh", by="channel") is not None
