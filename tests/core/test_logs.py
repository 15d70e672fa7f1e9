"""bot/logs.py: JSON or text lines, a request id on each, secrets redacted, and no forged line."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from pydantic import SecretStr

from bot import logs
from bot.config import Settings
from bot.redact import redact_url
from bot.sandbox import SANDBOX_SECRET
from bot.upstream.wechat import WeChatClient
from tests.conftest import Site

log = logging.getLogger("minpcode.test")


pytestmark = pytest.mark.usefixtures("root_logger_restored")


def test_json_lines_carry_the_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup("INFO", "json")
    log.info("outside")
    with logs.request_id("slack-abc123") as rid:
        log.info("made %s", "q3x8")
        log.debug("not shown at INFO")
    with logs.request_id() as fresh:
        log.warning("second")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(e["msg"], e["request_id"]) for e in lines] == [("outside", None), ("made q3x8", rid), ("second", fresh)]
    assert rid == "slack-abc123" and len(fresh) == 12 and lines[1]["level"] == "INFO"
    assert lines[1]["logger"] == "minpcode.test" and lines[1]["ts"].endswith("+00:00")


async def test_the_request_id_follows_a_task_and_does_not_leak(capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup("INFO", "text")

    async def handle(rid: str) -> None:
        with logs.request_id(rid):
            await asyncio.sleep(0.01)
            log.info("done %s", rid)

    await asyncio.gather(handle("aaaa"), handle("bbbb"))
    log.info("after")
    lines = capsys.readouterr().err.splitlines()
    assert any("[rid=aaaa] done aaaa" in line for line in lines)
    assert any("[rid=bbbb] done bbbb" in line for line in lines)
    assert lines[-1].endswith("[rid=-] after")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_typed_newline_can_never_forge_a_line(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    logs.setup("INFO", fmt)
    forged = "spring\n2026-12-01T09:00:00.000Z ERROR minpcode.audit [rid=-] admin deleted everything\r\x1b[2J\u2028x"
    log.info("rename to %s", forged)
    try:
        raise ValueError("bad name " + forged)
    except ValueError:
        log.exception("failed for %s", forged)
    out = capsys.readouterr().err
    lines = out.splitlines()
    assert len(lines) == 2 and out.count("\n") == 2
    assert not any(line.startswith("2026-12-01T09:00:00.000Z ERROR") for line in lines)
    if fmt == "text":
        assert "spring\\n2026-12-01T09:00:00.000Z ERROR" in lines[0] and "\\x1b[2J\\u2028x" in lines[0]
        assert "Traceback" in lines[1] and "ValueError: bad name spring\\n" in lines[1]
    else:
        assert json.loads(lines[0])["msg"] == "rename to " + forged  # intact for the reader, still one line
        assert "ValueError: bad name spring\n" in json.loads(lines[1])["exc"]


def test_secrets_are_redacted_in_every_shape(capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup("DEBUG", "text", secrets=["wecom-secret-value-42", "abc"])
    log.info("GET https://api.weixin.qq.com/cgi-bin/token?grant_type=client_credential&appid=wx1&secret=S3CR3T")
    log.info("POST %s", "https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww1&corpsecret=C0RP")
    log.info("headers %s", {"Authorization": "Bearer sk-live-1234", "X-Client-Id": "cid-9"})
    log.info("token xoxb-1234-5678-abcdEFGH and xapp-1-A0-99-ff and xoxp-77-88")
    log.info('body {"access_token": "ACCESS123", "expires_in": 7200, "secret": "wxs"}')
    log.info("configured %s", "wecom-secret-value-42")
    log.info("abc is too short to be a secret")
    err = capsys.readouterr().err
    for secret in ("S3CR3T", "C0RP", "sk-live-1234", "cid-9", "xoxb-1234", "xapp-1-A0", "xoxp-77", "ACCESS123",
                   '"wxs"', "wecom-secret-value-42"):
        assert secret not in err, secret
    assert "secret=***" in err and "corpsecret=***" in err and '"expires_in": 7200' in err
    assert "abc is too short" in err and "appid=wx1" in err


async def test_no_secret_reaches_a_log_line_over_a_real_call(capsys: pytest.CaptureFixture[str], wechat: Site,
                                                            wechat_client: WeChatClient) -> None:
    """httpx logs each URL at INFO, access_token included: grep the whole output for every secret."""
    logs.setup("DEBUG", "json", secrets=[SANDBOX_SECRET])
    await wechat_client.b_code("id=42", "pages/index/index")
    token = await wechat_client.tokens.get()
    err = capsys.readouterr().err
    assert "getwxacodeunlimit" in err and "access_token=***" in err
    assert SANDBOX_SECRET not in err and token not in err
    assert all(json.loads(line) for line in err.splitlines())


def test_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINPCODE_LOG_FORMAT", "json")
    monkeypatch.setenv("MINPCODE_LOG_LEVEL", "DEBUG")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.minpcode_log_format, settings.minpcode_log_level) == ("json", "DEBUG")
    assert Settings(_env_file=None, minpcode_log_format="text").minpcode_log_level == "DEBUG"  # type: ignore[call-arg]
    monkeypatch.setenv("MINPCODE_LOG_FORMAT", "xml")
    with pytest.raises(ValueError):
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert isinstance(SecretStr("x"), SecretStr)


@pytest.mark.parametrize(("url", "shown"), [
    ("https://hooks.example.com/in?sig=abc123&team=ops#x", "https://hooks.example.com/in?sig=***&team=***#x"),
    ("https://user:pa55@hooks.example.com:8443/in", "https://***@hooks.example.com:8443/in"),
    ("https://hooks.example.com/in?3f9a0c77e1", "https://hooks.example.com/in?***"),
    ("https://hooks.example.com/minpcode", "https://hooks.example.com/minpcode"),
])
def test_a_url_is_shown_without_its_query_values_or_userinfo(url: str, shown: str) -> None:
    assert redact_url(url) == shown
