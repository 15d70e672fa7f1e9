"""Slack over a real ``minpcode serve``: "working on it…" survives a kill -9, replays run nothing, and
a ``response_url`` is answered only on Slack's hosts. Slack has no idempotency key for a post: killed after
Slack took a code's post and before the bot marked it delivered, the code is posted again (at least once)."""

from __future__ import annotations

import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from handlers.slack.promises import slack_host
from tests.conftest import Site
from tests.emulators.slack import PUBLIC_CHANNEL, TEAM_ID, USER_ID, SlackEmulator
from tests.scenarios.test_one_owner_per_job import upstream_env
from tests.scenarios.test_slack_under_attack import FORM, SECRET, sign
from tests.served import Served


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    emu = SlackEmulator().start()
    yield emu
    emu.stop()


def command(user: str, text: str, trigger: str, channel: str = PUBLIC_CHANNEL,
            response_url: str = "https://hooks.slack.com/commands/T1/1/x") -> bytes:
    return urllib.parse.urlencode({
        "team_id": TEAM_ID, "channel_id": channel, "user_id": user, "user_name": user.lower(),
        "command": "/minpcode", "text": text, "trigger_id": trigger, "response_url": response_url}).encode()


def slack_env(emu: SlackEmulator) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": emu.bot_token, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": emu.api_url}


def uploads(emu: SlackEmulator) -> int:
    """Files shared into a conversation (files.completeUploadExternal taken)."""
    return len(emu.uploads)


def posts_per_code(emu: SlackEmulator) -> list[int]:
    return sorted(Counter(u.filename for u in emu.uploads).values())


def ask_for_codes(proc: Served, count: int) -> None:
    for n in range(count):
        body = command(f"U{n:04d}", f"new pages/index/index type=B scene=n={n}", f"9.{n}.1")
        answer = proc.post("/slack/events", content=body, headers={**FORM, **sign(body)})
        assert answer.status_code == 200


def wait_for_uploads(emu: SlackEmulator, count: int) -> None:
    deadline = time.monotonic() + 60
    while uploads(emu) < count:
        assert time.monotonic() < deadline, f"{uploads(emu)} of {count} codes posted"
        time.sleep(0.05)


@pytest.mark.slow
def test_working_on_it_is_finished_and_delivered_after_a_kill_9(slack: SlackEmulator, wechat: Site,
                                                               tmp_path: Path) -> None:
    # WeChat makes no code before the kill, however slow this machine: every answer is owed, none in flight
    wechat.emu.latency = 30.0
    env = {**slack_env(slack), **upstream_env(wechat)}
    proc = Served(tmp_path / "data", env).start()
    ask_for_codes(proc, 12)
    time.sleep(0.3)
    proc.kill()
    assert uploads(slack) == 0
    wechat.emu.latency = 0.0
    restarted = Served(tmp_path / "data", env, port=proc.port).start()
    try:
        wait_for_uploads(slack, 12)
        time.sleep(0.5)
        assert posts_per_code(slack) == [1] * 12  # once each
    finally:
        restarted.stop()


@pytest.mark.slow
def test_killed_after_slack_took_the_post_the_code_is_posted_again(slack: SlackEmulator, wechat: Site,
                                                                  tmp_path: Path) -> None:
    # Slack shares each code and never answers: the kill lands after the post took effect, before the bot
    # could mark it delivered. chat.postMessage and files.completeUploadExternal take no idempotency key, so
    # the restart posts it again: at least once, as docs/slack.md says (a clean stop drains first).
    slack.hold_answers("files.completeUploadExternal")
    env = {**slack_env(slack), **upstream_env(wechat)}
    proc = Served(tmp_path / "data", env).start()
    ask_for_codes(proc, 4)
    wait_for_uploads(slack, 4)
    proc.kill()
    slack.release_answers()
    restarted = Served(tmp_path / "data", env, port=proc.port).start()
    try:
        wait_for_uploads(slack, 8)
        time.sleep(0.5)
        assert posts_per_code(slack) == [2] * 4
    finally:
        restarted.stop()


@pytest.mark.slow
def test_a_signed_command_replayed_later_runs_once(slack: SlackEmulator, tmp_path: Path) -> None:
    proc = Served(tmp_path / "data", slack_env(slack)).start()
    try:
        body = command("U0REPLAY", "new pages/index/index type=B scene=r=1", "8.8.8")
        headers = {**FORM, **sign(body)}
        assert proc.post("/slack/events", content=body, headers=headers).status_code == 200
        deadline = time.monotonic() + 20
        while uploads(slack) < 1:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(11)  # past the old 10 s memory, inside Slack's 5 minutes
        assert proc.post("/slack/events", content=body, headers=headers).status_code == 200
        time.sleep(1.5)
        proc.stop()
        proc = Served(tmp_path / "data", slack_env(slack), port=proc.port).start()  # and after a restart
        assert proc.post("/slack/events", content=body, headers=headers).status_code == 200
        time.sleep(1.5)
        assert uploads(slack) == 1
        asked = [c for c in slack.calls if c.method == "chat.postEphemeral"]
        assert len(asked) <= 2  # "working on it…" once, no second run
    finally:
        proc.stop()


@pytest.mark.slow
def test_a_response_url_off_slack_is_never_called(slack: SlackEmulator, serve: Callable[[Any], str],
                                                  tmp_path: Path) -> None:
    hits: list[str] = []

    async def evil(request: Request) -> Response:
        hits.append(request.url.path)
        return Response("ok")

    evil_url = serve(Starlette(routes=[Route("/{p:path}", evil, methods=["POST"])])).replace("127.0.0.1", "localhost")
    proc = Served(tmp_path / "data", slack_env(slack)).start()
    try:
        # a channel the bot cannot answer in, so the response_url would be next
        body = command("U0EVIL", "list", "7.7.7", channel="C0NOWHERE", response_url=evil_url + "/steal")
        assert proc.post("/slack/events", content=body, headers={**FORM, **sign(body)}).status_code == 200
        time.sleep(2)
        assert hits == []
    finally:
        proc.stop()


@pytest.mark.parametrize(("url", "ok"), [
    ("https://hooks.slack.com/commands/T1/1/x", True), ("https://slack.com/x", True),
    ("http://hooks.slack.com/x", False), ("https://slack.com.evil.example/x", False),
    ("https://evilslack.com/x", False), ("http://127.0.0.1:9/x", True),  # SLACK_API_URL's host
    ("http://localhost:9/x", False), ("", False),
])
def test_response_url_hosts(url: str, ok: bool) -> None:
    assert slack_host(url, "http://127.0.0.1:4000/api/") is ok


def dry_runs(emu: SlackEmulator) -> list[Any]:
    """The dry-run messages posted: chat.postMessage calls carrying the Start button."""
    return [c for c in emu.calls if c.method == "chat.postMessage" and "batch_start" in str(c.params.get("blocks"))]


@pytest.mark.slow
def test_a_pasted_bulk_gets_its_dry_run_once_after_a_kill_9(slack: SlackEmulator, tmp_path: Path) -> None:
    # The DM is opened just before the dry run is posted: slow, so the kill lands between the ack and the post.
    slack.latency_by_method["conversations.open"] = 3.0
    proc = Served(tmp_path / "data", slack_env(slack)).start()
    rows = "bulk\npage,type,scene,name\npages/index/index,B,id=1,一店\npages/index/index,B,id=2,二店"
    body = command(USER_ID, rows, "6.6.6")
    answer = proc.post("/slack/events", content=body, headers={**FORM, **sign(body)})
    assert answer.status_code == 200 and "Checking the sheet" in answer.text
    time.sleep(1.0)
    proc.kill()
    assert dry_runs(slack) == [], "the dry run was posted before the kill: the test proves nothing"
    slack.latency_by_method.clear()
    restarted = Served(tmp_path / "data", slack_env(slack), port=proc.port).start()
    try:
        deadline = time.monotonic() + 30
        while not dry_runs(slack):
            assert time.monotonic() < deadline, "the dry run owed before the kill was never posted"
            time.sleep(0.1)
        time.sleep(1.0)
        [posted] = dry_runs(slack)
        assert "2 row(s), 2 ready" in posted.params["text"] and "Cancel" in str(posted.params["blocks"])
        restarted.stop()
        restarted = Served(tmp_path / "data", slack_env(slack), port=proc.port).start()  # delivered: not owed again
        time.sleep(1.5)
        assert len(dry_runs(slack)) == 1
    finally:
        restarted.stop()
