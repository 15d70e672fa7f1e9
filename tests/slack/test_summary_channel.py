"""SLACK_SUMMARY_CHANNEL may be a name or an id (issue 11), over the Slack emulator's real wire.

``files.completeUploadExternal`` takes channel ids only, so a name is resolved once, at start, with
``conversations.list`` (paged), and what is wrong (no such channel, the bot not in it) is said then.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.scheduler import SummaryScheduler
from bot.server import open_service
from handlers.slack.announce import SlackAnnouncer, slack_announcer
from tests.emulators.slack import SlackEmulator
from tests.slack.test_e2e import make_harness, scan, state

__all__ = ["make_harness"]  # the Slack harness fixture, shared with tests/slack/test_e2e.py


def settings(tmp_path: Path, slack: SlackEmulator, channel: str) -> Settings:
    return Settings(_env_file=None, minpcode_data_dir=tmp_path, minpcode_sandbox=True,  # type: ignore[call-arg]
                    slack_bot_token=slack.bot_token, slack_api_url=slack.api_url, slack_summary_channel=channel)


def announcer(tmp_path: Path, slack: SlackEmulator, channel: str) -> SlackAnnouncer:
    built = slack_announcer(settings(tmp_path, slack, channel))
    assert isinstance(built, SlackAnnouncer)
    return built


@pytest.mark.parametrize("channel", ["#growth", "growth"])
async def test_a_channel_name_is_resolved_to_its_id_through_pages_of_conversations_list(
        tmp_path: Path, slack: SlackEmulator, channel: str) -> None:
    for n in range(2500):  # more than two pages of 1000
        slack.add_channel(f"C{n:09d}", name=f"team-{n}", kind="public", is_member=False)
    slack.add_channel("C0GROWTH01", name="growth", kind="public", is_member=True)
    target = announcer(tmp_path, slack, channel)
    assert await target.check() is None
    assert target.channel == "C0GROWTH01" and "C0GROWTH01" in target.where
    calls = slack.calls_to("conversations.list")
    assert len(calls) == 3 and all(c.ok for c in calls) and calls[1]["cursor"]


async def test_an_id_is_used_as_it_is(tmp_path: Path, slack: SlackEmulator) -> None:
    target = announcer(tmp_path, slack, "C0GENERAL")
    assert await target.check() is None and target.channel == "C0GENERAL"
    assert slack.calls_to("conversations.list") == []


async def test_an_unknown_name_and_a_channel_without_the_bot_are_said(tmp_path: Path, slack: SlackEmulator) -> None:
    assert "no channel named #nowhere" in (await announcer(tmp_path, slack, "#nowhere").check() or "")
    slack.add_channel("G0HIDDEN01", name="hidden", kind="private", is_member=False)
    assert "no channel named #hidden" in (await announcer(tmp_path, slack, "#hidden").check() or "")
    public = announcer(tmp_path, slack, "#random")  # in the emulator's defaults, the bot is not a member
    assert "not in #random" in (await public.check() or "")
    assert public.channel.startswith("C")


async def test_without_groups_read_public_channels_are_still_found(tmp_path: Path, slack: SlackEmulator) -> None:
    slack.scopes = [s for s in slack.scopes if s != "groups:read"]
    assert await announcer(tmp_path, slack, "#general").check() is None
    assert [c.ok for c in slack.calls_to("conversations.list")] == [False, True]


async def test_the_summary_and_its_chart_reach_a_channel_given_by_name(tmp_path: Path, slack: SlackEmulator,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    slack.add_channel("C0GROWTH01", name="growth", kind="public", is_member=True)
    svc = open_service(settings(tmp_path, slack, "#growth"))
    target = announcer(tmp_path, slack, "#growth")
    async with svc:
        from bot.announce import cli_summary

        await svc.submit({"type": "B", "page": "pages/a/a", "scene": "x=1"}, _requester())
        text, code = await cli_summary(svc, [target], days=7, post=True, lang="en")
    assert code == 0, text
    [message] = slack.calls_to("chat.postMessage")
    assert message.ok and message["channel"] == "C0GROWTH01"
    [upload] = slack.uploads
    assert upload.channel_id == "C0GROWTH01"
    assert all(c.ok for c in slack.calls_to("files.completeUploadExternal"))


async def test_the_scheduler_says_at_start_what_is_wrong(tmp_path: Path, slack: SlackEmulator,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    svc = open_service(settings(tmp_path, slack, "#nowhere"))
    scheduler = SummaryScheduler(svc, [announcer(tmp_path, slack, "#nowhere")])
    async with svc:
        with caplog.at_level(logging.WARNING, "minpcode"):
            await scheduler.start()
            await scheduler.stop()
    assert "no channel named #nowhere" in caplog.text


def _requester():  # type: ignore[no-untyped-def]
    from bot.models import Requester

    return Requester(chat="cli", user_id="alice")


# ---- the form is answered within 1 s whatever GrowingIO does ------------------------------------------------


def test_the_form_is_answered_within_a_second_whatever_growingio_does(make_harness: Any) -> None:
    h = make_harness()
    view = h.open_form()
    gio_emulator = h.service.upstream.emulators[1]
    h.service.upstream.gio._lists.clear()  # a cold cache: every GrowingIO list must be fetched again
    gio_emulator.latency = 1.5
    started = time.monotonic()
    response = h.submit(view, state(type="gio:C", page="pages/item?id=8", campaign="n:spring-sale",
                                    channel="n:微博"))
    assert response.status_code == 200 and response.content == b""
    assert time.monotonic() - started < 1.0
    [upload] = h.uploads_for("spring-sale", timeout=30)
    assert scan(upload.data or b"").kind == "C"


def test_a_name_not_checked_in_time_is_reported_by_the_background_job(make_harness: Any) -> None:
    h = make_harness()
    view = h.open_form()
    h.service.upstream.gio._lists.clear()
    h.service.upstream.emulators[1].latency = 1.5
    started = time.monotonic()
    response = h.submit(view, state(type="gio:C", page="pages/item?id=9", campaign="n:双十二推广", channel="n:微博"))
    assert response.status_code == 200 and time.monotonic() - started < 1.0
    said = h.ephemeral(lambda m: "双十二推广" in m.get("text", ""), timeout=30)
    assert "create" in said["text"] or "新建" in said["text"]


def test_the_form_takes_version_check_and_long_parameters(make_harness: Any) -> None:
    h = make_harness()
    view = h.open_form()
    h.service.upstream.emulators[0].pages = {"pages/index/index"}  # pages/new/new is not released yet
    values = state(type="wechat:B", page="pages/new/new", scene="城市=上海&门店=静安寺")
    values["values"]["env_version"] = {"env_version": {
        "type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": "Trial"}, "value": "trial"}}}
    values["values"]["b_options"] = {"b_options": {
        "type": "checkboxes", "selected_options": [{"value": "no-check"}, {"value": "long-scene"}]}}
    response = h.submit(view, values)
    assert response.status_code == 200 and response.content == b"", response.text
    [upload] = h.uploads_for("pages/new/new", timeout=30)
    code = scan(upload.data or b"")
    assert code.kind == "B" and code.scene and code.scene.startswith("k=")
    record = h.service.recent(limit=1)[0]
    request = record.code_request()
    assert (request.env_version, request.check_path) == ("trial", False)
    assert h.service.scene_params(record.scene or "") == "城市=上海&门店=静安寺"


def test_the_form_refuses_a_scene_that_does_not_fit_beside_the_field(make_harness: Any) -> None:
    h = make_harness()
    view = h.open_form()
    response = h.submit(view, state(type="wechat:B", page="pages/a/a", scene="这是中文"))
    body = response.json()
    assert body["response_action"] == "errors" and "'这是中文'" in body["errors"]["scene"]
