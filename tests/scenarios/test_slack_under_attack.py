"""Slack under attack, over a real ``minpcode serve`` process: bounded bodies, verify before parse, clean logs."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers.slack.gate import MAX_BODY
from tests.emulators.slack import PUBLIC_CHANNEL, TEAM_ID, USER_ID, SlackEmulator
from tests.served import Served

pytestmark = pytest.mark.slow  # every test here starts a process or a browser

SECRET = "hold-signing-secret"


def sign(body: bytes, timestamp: str | None = None) -> dict[str, str]:
    ts = timestamp or str(int(time.time()))
    digest = hmac.new(SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + digest}


FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackEmulator]:
    emu = SlackEmulator().start()
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def served(slack: SlackEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("hold-slack")
    proc = Served(root / "data", {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SECRET,
                                  "SLACK_API_URL": slack.api_url}).start()
    yield proc
    proc.stop()


def command_body(text: str, trigger: str = "1.2.3") -> bytes:
    return urllib.parse.urlencode({
        "team_id": TEAM_ID, "channel_id": PUBLIC_CHANNEL, "user_id": USER_ID, "user_name": "u",
        "command": "/minpcode", "text": text, "trigger_id": trigger,
        "response_url": "https://hooks.slack.com/commands/T1/1/x"}).encode()


def test_a_huge_unsigned_body_is_refused_unread_and_unlogged(served: Served) -> None:
    before_rss, before_log = served.rss(), len(served.log())
    big = b"payload=" + b"A" * (50 * 1024 * 1024)
    declared = served.post("/slack/events", content=big, headers=FORM)
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap holds while streaming too
        for _ in range(50):
            yield b"A" * (1024 * 1024)

    streamed = served.post("/slack/events", content=chunks(), headers=FORM)
    assert streamed.status_code == 413
    assert served.rss() - before_rss < 30 * 1024 * 1024
    grown = served.log()[before_log:]
    assert len(grown) < 4000 and "AAAA" not in grown


def test_just_under_the_cap_is_read_and_checked(served: Served) -> None:
    body = b"payload=" + b"A" * (MAX_BODY - 100)
    assert served.post("/slack/events", content=body, headers=FORM).status_code == 401
    assert served.post("/slack/events", content=body, headers={**FORM, **sign(body)}).status_code == 400


@pytest.mark.parametrize("body", [b"payload=%7Bx", b"payload=null", b"payload=[]", b"{x", b"[]", b"\xff\xfe",
                                  b"payload=%7B%22user%22%3A%22x%22%7D"])
def test_unsigned_garbage_is_401_and_signed_garbage_is_400(served: Served, body: bytes) -> None:
    content_type = {"content-type": "application/json"} if body.startswith((b"{", b"[")) else FORM
    assert served.post("/slack/events", content=body, headers=content_type).status_code == 401
    assert served.post("/slack/events", content=body, headers={**content_type, **sign(body)}).status_code == 400


@pytest.mark.parametrize("timestamp", ["abc", "1" * 400, "-5", "", "1e3"])
def test_a_bad_timestamp_header_is_401(served: Served, timestamp: str) -> None:
    body = command_body("list")
    headers = {**FORM, **sign(body), "X-Slack-Request-Timestamp": timestamp}
    assert served.post("/slack/events", content=body, headers=headers).status_code == 401


def _view_submission(values: object) -> bytes:
    payload = {"type": "view_submission", "team": {"id": TEAM_ID}, "user": {"id": USER_ID, "team_id": TEAM_ID},
               "trigger_id": "9.9.9",
               "view": {"id": "V1", "type": "modal", "callback_id": "minpcode_new", "private_metadata": "{}", "hash": "h",
                        "state": {"values": values}}}
    return ("payload=" + urllib.parse.quote(json.dumps(payload))).encode()


@pytest.mark.parametrize("body", [
    _view_submission({"type": {"type": {"type": "static_select", "selected_option": {"value": "wechat:A"}}},
                      "page": {"page": {"type": "plain_text_input", "value": "pages/index/index"}},
                      "width": {"width": {"type": "plain_text_input", "value": "1e400"}}}),
    _view_submission([1, 2]),
    _view_submission({"page": ["x"]}),
    _view_submission({"page": {"page": {"type": "plain_text_input", "value": ["x"]}}}),
    ("payload=" + urllib.parse.quote(json.dumps({"type": "view_submission", "user": {"id": USER_ID},
                                                 "view": {"state": {"values": {}}}}))).encode(),
    ("payload=" + urllib.parse.quote(json.dumps({"type": "block_actions", "user": {"id": USER_ID},
                                                 "team": {"id": TEAM_ID}, "actions": "x"}))).encode(),
])
def test_signed_but_malformed_payloads_are_never_500(served: Served, body: bytes) -> None:
    status = served.post("/slack/events", content=body, headers={**FORM, **sign(body)}).status_code
    assert status < 500 and status != 401


def test_no_traceback_and_no_body_in_the_log(served: Served) -> None:
    log = served.log()
    assert "Traceback" not in log
    assert "AAAA" not in log and "payload=" not in log


def test_a_forged_log_line_stays_inside_its_own_line(served: Served, slack: SlackEmulator) -> None:
    forged = "2026-01-01 00:00:00,000 WARNING minpcode.service: FORGED admin granted"
    # a signed command from a user id Slack does not know: the bot logs the id when users.info fails
    body = command_body("list", trigger="7.7.7").replace(USER_ID.encode(), urllib.parse.quote("U0X\n" + forged).encode())
    assert served.post("/slack/events", content=body, headers={**FORM, **sign(body)}).status_code == 200
    deadline = time.monotonic() + 10
    while "FORGED" not in served.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = served.log().splitlines()
    assert any("U0X\\n" + forged in line for line in lines)  # logged, escaped, on the line that carries it
    assert not any(line.startswith(forged) for line in lines)


def test_the_data_directory_is_private(served: Served) -> None:
    assert (Path(served.data_dir).stat().st_mode & 0o777) == 0o700
