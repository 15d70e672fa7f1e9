"""Scheduled summaries through the AI bot: markdown then the chart, pushed to a group on the running
connection (the gateway emulator over a real socket); a retry skips what was posted."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from bot.announce import announce
from bot.config import Settings
from bot.server import announcers, open_service
from bot.summary import DayCount, Summary
from handlers.wecom_aibot.front import wecom_aibot_front_end
from tests.emulators.wecom_aibot import BOT_ID, SECRET, AiBotGateway


def at(day: int) -> datetime:
    return datetime(2026, 11, day, tzinfo=UTC)


SUMMARY = Summary(start=at(3), end=at(4), timezone="Asia/Shanghai", generated_at=at(4), requested=3, made=3,
                  daily=[DayCount(day=at(3).date(), total=3, by_campaign={"双十一推广": 3})])


def settings(gw: AiBotGateway, tmp_path: Path, **extra: object) -> Settings:
    return Settings(_env_file=None, minpcode_data_dir=tmp_path, minpcode_sandbox=True,  # type: ignore[arg-type]
                    wecom_bot_id=BOT_ID, wecom_bot_secret=SecretStr(SECRET), wecom_bot_ws_url=gw.url, **extra)


async def test_a_summary_goes_to_the_group_as_markdown_then_the_chart(tmp_path: Path) -> None:
    with AiBotGateway() as gw:
        s = settings(gw, tmp_path, wecom_bot_summary_chat="group-7")
        async with open_service(s) as service:
            front = wecom_aibot_front_end(service)
            assert front is not None
            await front.start()
            try:
                await asyncio.to_thread(gw.wait_subscribed)
                [announcer] = announcers(s)
                assert announcer.name == "wecom_aibot" and await announcer.check() is None
                seen: list[str] = []
                [outcome] = await announce([announcer], SUMMARY, on_step=seen.append)
                assert outcome.ok and seen == ["wecom_aibot.markdown", "wecom_aibot.image"]
                markdown, image = gw.sent
                assert markdown["chatid"] == "group-7" and "minpcode 汇总" in markdown["markdown"]["content"]
                assert image["chatid"] == "group-7" and gw.media[image["image"]["media_id"]][2].startswith(b"\x89PNG")
                # a retry after the markdown went: only the chart again
                again: list[str] = []
                [outcome] = await announce([announcer], SUMMARY, done={"wecom_aibot.markdown"}, on_step=again.append)
                assert outcome.ok and again == ["wecom_aibot.image"] and len(gw.sent) == 3
            finally:
                await front.stop()
        assert await announcer.check() is not None  # stopped: nothing to post through


def test_without_the_chat_setting_there_is_no_ai_bot_announcer(tmp_path: Path) -> None:
    with AiBotGateway() as gw:
        assert [a.name for a in announcers(settings(gw, tmp_path))] == []
