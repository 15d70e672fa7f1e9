"""The summary scheduler on a controlled clock: cron boundaries and time zones, at most once per
period across restarts, catch-up after downtime, retries with backoff, posting over real wires."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from bot.scheduler import SummaryScheduler, scheduler_for, summary_front_end
from bot.server import announcers, open_service
from bot.service import Service
from tests.core.test_summary import Wall, at, check_png, fill_week, sandbox_settings, settings_for
from tests.emulators.slack import PUBLIC_CHANNEL, SlackEmulator
from tests.emulators.wecom import WeComEmulator

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
WEEKLY = "0 9 * * MON"
WEBHOOK_PATH = "/cgi-bin/webhook/send"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> Wall:
    """One clock for the scheduler and for the rows storage stamps."""
    clock = Wall(at(5, 12))  # Wednesday noon in Shanghai
    for module in ("storage.history", "storage.audit", "storage.ledger", "storage.images"):
        monkeypatch.setattr(f"{module}.now_text", clock.text)
    return clock


@pytest.fixture
async def service(tmp_path: Path, slack: SlackEmulator, wecom: tuple[WeComEmulator, str],
                  database_url: str | None) -> AsyncIterator[Service]:
    # on both backends: a period is claimed once, by whichever process (or host) comes first
    settings = settings_for(tmp_path, slack, wecom[1])
    settings = settings.model_copy(update={"minpcode_database_url": SecretStr(database_url) if database_url else None})
    svc = open_service(settings)
    assert svc.storage.dialect == ("postgresql" if database_url else "sqlite")
    async with svc:
        yield svc


def scheduler(service: Service, wall: Wall, **kwargs: object) -> SummaryScheduler:
    kwargs.setdefault("cron", WEEKLY)
    kwargs.setdefault("zone", SHANGHAI)
    return SummaryScheduler(service, announcers(service.settings), clock=wall, **kwargs)  # type: ignore[arg-type]


def local(moment: datetime, zone: ZoneInfo = SHANGHAI) -> datetime:
    return moment.astimezone(zone)


# -- the calendar --------------------------------------------------------------------------------------------


async def test_cron_boundaries_in_the_configured_timezone(service: Service, wall: Wall) -> None:
    s = scheduler(service, wall)
    monday_9 = datetime(2025, 3, 10, 9, 0, tzinfo=SHANGHAI)  # = 01:00 UTC
    assert s.latest_fire(datetime(2025, 3, 10, 0, 59, 59, 999999, tzinfo=UTC)) == monday_9 - timedelta(days=7)
    assert s.latest_fire(datetime(2025, 3, 10, 1, 0, tzinfo=UTC)) == monday_9
    assert s.next_fire(datetime(2025, 3, 10, 1, 0, tzinfo=UTC)) == monday_9 + timedelta(days=7)
    # the period is last week's Monday..Sunday, in whole Shanghai days
    assert s.period_for(monday_9) == (datetime(2025, 3, 3, tzinfo=SHANGHAI), datetime(2025, 3, 10, tzinfo=SHANGHAI))
    # the same cron in UTC ticks eight hours later
    utc = scheduler(service, wall, zone=ZoneInfo("UTC"))
    assert utc.latest_fire(datetime(2025, 3, 10, 1, 0, tzinfo=UTC)) == datetime(2025, 3, 3, 9, 0, tzinfo=ZoneInfo("UTC"))
    assert utc.latest_fire(datetime(2025, 3, 10, 9, 0, tzinfo=UTC)) == datetime(2025, 3, 10, 9, 0, tzinfo=ZoneInfo("UTC"))


async def test_daylight_saving_days_and_repeated_hours(service: Service, wall: Wall) -> None:
    daily = scheduler(service, wall, cron="0 9 * * *", zone=NEW_YORK)
    sunday = daily.latest_fire(datetime(2025, 3, 9, 13, 0, tzinfo=UTC))  # 09:00 EDT, the first day of DST
    assert sunday == datetime(2025, 3, 9, 9, 0, tzinfo=NEW_YORK) and sunday.utcoffset() == timedelta(hours=-4)
    start, end = daily.period_for(sunday)
    assert (start, end) == (datetime(2025, 3, 8, tzinfo=NEW_YORK), datetime(2025, 3, 9, tzinfo=NEW_YORK))
    start, end = daily.period_for(datetime(2025, 3, 10, 9, 0, tzinfo=NEW_YORK))
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)  # the day that lost an hour
    # when clocks go back, 01:30 happens twice: both ticks name the same period, so it posts once
    night = scheduler(service, wall, cron="30 1 * * *", zone=NEW_YORK)
    first = datetime(2025, 11, 2, 5, 30, tzinfo=UTC)   # 01:30 EDT
    second = datetime(2025, 11, 2, 6, 30, tzinfo=UTC)  # 01:30 EST
    assert night.latest_fire(first).astimezone(UTC) == first
    assert night.latest_fire(second).astimezone(UTC) <= second
    assert night.period_for(night.latest_fire(first)) == night.period_for(night.latest_fire(second))


async def test_several_ticks_a_day_report_tick_to_tick(service: Service, wall: Wall) -> None:
    s = scheduler(service, wall, cron="0 */6 * * *")
    noon = datetime(2025, 3, 10, 12, 0, tzinfo=SHANGHAI)
    assert s.period_for(noon) == (noon - timedelta(hours=6), noon)
    assert s.period_for(datetime(2025, 3, 10, 0, 0, tzinfo=SHANGHAI)) == (
        datetime(2025, 3, 9, tzinfo=SHANGHAI), datetime(2025, 3, 10, tzinfo=SHANGHAI))


async def test_bad_cron_and_nowhere_to_post_turn_it_off(tmp_path: Path, service: Service, wall: Wall) -> None:
    with pytest.raises(ValueError):
        scheduler(service, wall, cron="every monday")
    assert scheduler_for(service, announcers(service.settings), cron="not a cron") is None
    quiet = open_service(sandbox_settings(tmp_path / "quiet"))
    assert summary_front_end(quiet, announcers(quiet.settings)) is None
    quiet.storage.close()
    await quiet.upstream.aclose()


# -- at most once, across restarts --------------------------------------------------------------------------


async def test_first_start_posts_nothing_old_then_each_tick_posts_once(
        service: Service, wall: Wall, slack: SlackEmulator, wecom: tuple[WeComEmulator, str]) -> None:
    robot, _ = wecom
    await fill_week(service, wall)
    wall.set(at(5, 12))  # installed on Wednesday: last week's period is history, not news
    s = scheduler(service, wall)
    assert await s.tick() == []
    [skipped] = service.storage.summary_runs.recent()
    assert skipped.status == "skipped" and local(skipped.period_end) == at(3, 0)

    wall.set(datetime(2025, 3, 10, 0, 59, 59, tzinfo=UTC))
    assert await s.tick() == []
    wall.set(datetime(2025, 3, 10, 1, 0, 0, tzinfo=UTC))  # Monday 09:00 in Shanghai
    [report] = await s.tick()
    assert report.status == "posted" and report.attempt == 1
    assert (local(report.period_start), local(report.period_end)) == (at(3, 0), at(10, 0))
    assert await s.tick() == []

    restarted = scheduler(service, wall)  # a new process: same database, same period
    wall.advance(timedelta(minutes=5))
    assert await restarted.tick() == []

    [message] = slack.calls_to("chat.postMessage")
    assert message.ok and message["channel"] == PUBLIC_CHANNEL
    assert "2025-03-03 – 2025-03-09" in message["text"] and "生成 6 个码" in message["text"]
    blocks = message["blocks"] if isinstance(message["blocks"], list) else json.loads(message["blocks"])
    assert "双十一推广" in json.dumps(blocks, ensure_ascii=False)
    [upload] = slack.uploads
    check_png(upload.data or b"")
    assert [m.msgtype for m in robot.webhook_messages] == ["markdown", "image"]
    check_png(robot.webhook_messages[1].image or b"")
    run = service.storage.summary_runs.for_period(at(3, 0), at(10, 0))
    assert run is not None and run.status == "posted"
    assert run.done_steps == {"slack.message", "slack.chart", "wecom.markdown", "wecom.image"}


async def test_a_tick_within_the_grace_is_posted_on_the_very_first_start(
        service: Service, wall: Wall, slack: SlackEmulator) -> None:
    wall.set(at(10, 9, 3))  # started three minutes after the tick
    [report] = await scheduler(service, wall).tick()
    assert report.status == "posted" and len(slack.calls_to("chat.postMessage")) == 1


async def test_after_downtime_only_the_latest_missed_period_is_posted_once(
        service: Service, wall: Wall, slack: SlackEmulator) -> None:
    await scheduler(service, wall).tick()  # first start on Wednesday 03-05: baseline
    wall.set(datetime(2025, 3, 26, 10, 0, tzinfo=SHANGHAI))  # down over the ticks of 03-10, 03-17 and 03-24
    s = scheduler(service, wall)
    [report] = await s.tick()
    assert (local(report.period_start), local(report.period_end)) == (
        datetime(2025, 3, 17, tzinfo=SHANGHAI), datetime(2025, 3, 24, tzinfo=SHANGHAI))
    assert await s.tick() == []
    assert await scheduler(service, wall).tick() == []
    assert len(slack.calls_to("chat.postMessage")) == 1
    statuses = sorted((local(r.period_end).date().isoformat(), r.status)
                      for r in service.storage.summary_runs.recent())
    assert statuses == [("2025-03-03", "skipped"), ("2025-03-24", "posted")]


async def test_two_hosts_ticking_at_once_post_the_period_once(
        tmp_path: Path, service: Service, wall: Wall, slack: SlackEmulator, database_url: str | None) -> None:
    # The other host: on PostgreSQL a data folder of its own (hosts share no disk), on SQLite the same folder.
    folder = tmp_path / "other-host" if database_url else service.settings.minpcode_data_dir
    other = open_service(service.settings.model_copy(update={"minpcode_data_dir": folder}))
    async with other:
        await scheduler(service, wall).tick()  # baseline
        wall.set(at(10, 9))
        reports = await asyncio.gather(scheduler(service, wall).tick(), scheduler(other, wall).tick())
    assert sorted(len(r) for r in reports) == [0, 1], reports
    assert len(slack.calls_to("chat.postMessage")) == 1
    run = service.storage.summary_runs.for_period(at(3, 0), at(10, 0))
    assert run is not None and run.status == "posted"


async def test_a_claim_left_by_a_dead_process_is_finished_after_its_lease(
        service: Service, wall: Wall, slack: SlackEmulator) -> None:
    await scheduler(service, wall).tick()  # baseline
    wall.set(at(10, 9))
    runs = service.storage.summary_runs
    s = scheduler(service, wall)
    start, end = s.period_for(s.latest_fire(wall()))
    dead = runs.claim(start, end, fire_at=s.latest_fire(wall()), now=wall(), lease_until=wall() + timedelta(minutes=10))
    assert dead is not None  # another process claimed it, then died before posting
    assert await s.tick() == []
    wall.advance(timedelta(minutes=9))
    assert await s.tick() == []
    wall.advance(timedelta(minutes=2))
    [report] = await s.tick()
    assert report.status == "posted" and report.attempt == 2
    assert len(slack.calls_to("chat.postMessage")) == 1


# -- retries --------------------------------------------------------------------------------------------------


async def test_a_failed_post_is_retried_with_backoff_only_for_what_failed(
        service: Service, wall: Wall, slack: SlackEmulator, wecom: tuple[WeComEmulator, str]) -> None:
    robot, _ = wecom
    await fill_week(service, wall)
    wall.set(at(10, 9))
    robot.fail_next(WEBHOOK_PATH, 45009)  # the robot's 20-a-minute limit
    s = scheduler(service, wall)
    [first] = await s.tick()
    assert first.status == "retrying" and "45009" in (first.error or "")
    run = service.storage.summary_runs.get(first.run_id)
    assert run is not None and run.done_steps == {"slack.message", "slack.chart"}
    assert run.next_attempt_at == wall() + timedelta(seconds=60)
    assert 0 < s.seconds_until_due() <= 60

    wall.advance(timedelta(seconds=30))
    assert await s.tick() == []  # not yet
    wall.advance(timedelta(seconds=31))
    [second] = await s.tick()
    assert second.status == "posted" and second.attempt == 2
    assert len(slack.calls_to("chat.postMessage")) == 1 and len(slack.uploads) == 1  # Slack not posted twice
    assert [m.msgtype for m in robot.webhook_messages] == ["markdown", "image"]
    attempts = service.storage.summary_runs.attempts(first.run_id)
    assert [a.ok for a in attempts] == [False, True] and "45009" in (attempts[0].error or "")


async def test_retries_give_up_and_say_so(service: Service, wall: Wall, slack: SlackEmulator) -> None:
    wall.set(at(10, 9))
    slack.fail_next("chat.postMessage", "internal_error", times=10)
    s = scheduler(service, wall, retry_delays=(5, 20))
    assert [r.status for r in await s.tick()] == ["retrying"]
    wall.advance(timedelta(seconds=5))
    assert [r.status for r in await s.tick()] == ["retrying"]
    wall.advance(timedelta(seconds=19))
    assert await s.tick() == []
    wall.advance(timedelta(seconds=1))
    [last] = await s.tick()
    assert last.status == "failed" and last.attempt == 3 and "internal_error" in (last.error or "")
    wall.advance(timedelta(days=1))
    assert await s.tick() == []
    run = service.storage.summary_runs.get(last.run_id)
    assert run is not None and run.status == "failed" and run.attempts == 3
    assert len(service.storage.summary_runs.attempts(run.id)) == 3


# -- what is posted --------------------------------------------------------------------------------------------


async def test_an_empty_week_is_a_short_message_not_silence(
        service: Service, wall: Wall, slack: SlackEmulator, wecom: tuple[WeComEmulator, str]) -> None:
    robot, _ = wecom
    wall.set(at(10, 9))
    [report] = await scheduler(service, wall).tick()
    assert report.status == "posted"
    [message] = slack.calls_to("chat.postMessage")
    assert "本周没有新动静" in message["text"]
    assert not slack.uploads  # no chart of nothing
    [markdown] = robot.webhook_messages
    assert markdown.msgtype == "markdown" and "本周没有新动静" in markdown.body["markdown"]["content"]


async def test_english_posts(service: Service, wall: Wall, slack: SlackEmulator) -> None:
    wall.set(at(10, 9))
    await scheduler(service, wall, lang="en").tick()
    assert "Nothing this week" in slack.calls_to("chat.postMessage")[0]["text"]


# -- inside serve ---------------------------------------------------------------------------------------------------


async def test_the_loop_wakes_at_the_tick_and_stops(service: Service, wall: Wall, slack: SlackEmulator) -> None:
    wall.set(at(10, 8, 57))
    sleeps: list[float] = []
    parked = asyncio.Event()

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if wall() >= at(10, 9, 5):
            await parked.wait()  # enough: stay asleep until stopped
        wall.advance(timedelta(seconds=seconds))
        await asyncio.sleep(0)

    s = scheduler(service, wall, sleep=fake_sleep)
    await s.start()
    await slack.wait_for_async("chat.postMessage")
    for _ in range(100):
        if wall() >= at(10, 9, 5):
            break
        await asyncio.sleep(0.01)
    await s.stop()
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert sleeps and max(sleeps) <= 60 and sleeps[:3] == [60, 60, 60]
    run = service.storage.summary_runs.for_period(at(3, 0), at(10, 0))
    assert run is not None and run.status == "posted"


async def test_install_registers_hooks_when_configured(service: Service, wall: Wall) -> None:
    found = summary_front_end(service, announcers(service.settings))
    assert found is not None and found.name == "summary" and found.routes() == []
