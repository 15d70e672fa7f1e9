"""Operating a real ``minpcode serve``: /metrics, /readyz, request ids in the logs, no secret in them, SIGTERM.

Each test runs the console script as a process (tests/served.py) against emulators on loopback ports.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from bot.config import Settings
from bot.models import Status
from bot.sandbox import SANDBOX_APPID, SANDBOX_SECRET
from bot.sandbox.server import ServerThread
from bot.sandbox.wechat import WeChatEmulator
from bot.server import create_app
from storage import Storage
from tests.emulators.slack import SlackEmulator
from tests.emulators.wecom import WeComEmulator
from tests.served import Served

KEY = "cms-7d1f3c9b2a8e4f60"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample on the page, read by prometheus-client's own parser (the page must parse)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(page: Samples, name: str, **labels: str) -> float:
    return page.get((name, tuple(sorted(labels.items()))), 0.0)


def signed(body: str, secret: str) -> dict[str, str]:
    ts = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + digest,
            "Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture()
def wecom() -> Iterator[tuple[WeComEmulator, str]]:
    emu = WeComEmulator(secret="wecom-app-secret-0b5e7c1d9f")
    with ServerThread(emu.app) as server:
        yield emu, server.url


@pytest.mark.slow
def test_metrics_readyz_request_ids_and_no_secret_in_the_logs(tmp_path: Path, wecom: tuple[WeComEmulator, str]) -> None:
    wecom_emu, wecom_url = wecom
    signing = "slack-signing-secret-5e2a91"
    secrets = {"SLACK_BOT_TOKEN": "xoxb-1111-2222-secretbot", "SLACK_SIGNING_SECRET": signing,
               "WECOM_SECRET": wecom_emu.secret, "WECOM_TOKEN": "wecom-callback-token-3c4d",
               "WECOM_AES_KEY": "k" * 43, "MINPCODE_API_KEYS": f"cms:{KEY}"}
    with SlackEmulator(bot_token=secrets["SLACK_BOT_TOKEN"]) as slack:
        env = secrets | {"SLACK_API_URL": slack.api_url, "WECOM_CORP_ID": wecom_emu.corp_id,
                         "WECOM_AGENT_ID": str(wecom_emu.agent_id), "WECOM_API_URL": wecom_url,
                         "MINPCODE_LOG_LEVEL": "DEBUG", "MINPCODE_LOG_FORMAT": "json"}
        with Served(tmp_path / "data", env=env) as proc:
            health = proc.get("/healthz").json()
            assert health["ok"] is True and health["version"]
            before = samples(proc.get("/metrics").text)

            made = proc.post("/api/weapp/qrcode", json={"path": "pages/index/index", "scene": "id=7"},
                             headers={"Authorization": f"Bearer {KEY}", "X-Request-Id": "trace-abc123xyz"})
            assert made.status_code == 200, made.text
            assert made.headers["x-request-id"] == "trace-abc123xyz"
            body = "command=%2Fminpcode&text=help&user_id=U0USER&channel_id=C0GENERAL&team_id=T0TEAM" \
                   "&trigger_id=1.2.3&response_url=" + slack.url.replace(":", "%3A").replace("/", "%2F") + "%2Fresp"
            assert proc.post("/slack/events", content=body, headers=signed(body, signing)).status_code == 200
            # a code asked for in Slack: the id set at the entry follows the spawned work to WeChat and back
            body = body.replace("text=help", "text=new+pages%2Findex%2Findex+type%3DB+scene%3Dslack%3D1")
            answer = proc.post("/slack/events", content=body,
                               headers=signed(body, signing) | {"X-Request-Id": "slack-trace-424242"})
            assert answer.status_code == 200 and answer.headers["x-request-id"] == "slack-trace-424242"
            slack.wait_for("files.completeUploadExternal", timeout=20)

            page = proc.get("/metrics")
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
            after = samples(page.text)
            assert value(after, "minpcode_codes_total", type="B", provider="wechat", outcome="done") == \
                value(before, "minpcode_codes_total", type="B", provider="wechat", outcome="done") + 2  # API, Slack
            assert value(after, "minpcode_quota_left", app=SANDBOX_APPID) > 0
            assert ("minpcode_pending_rows", ()) in after
            assert value(after, "minpcode_ack_latency_seconds_count", front_end="slack") >= 1
            assert value(after, "minpcode_upstream_calls_total", provider="wechat",
                         endpoint="/wxa/getwxacodeunlimit") >= 1
            # Not from loopback as far as the app can tell (a proxy in front): off.
            assert proc.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404

            ready = proc.get("/readyz")
            assert ready.status_code == 200 and ready.json()["database"] == {"ok": True}
            assert set(ready.json()["upstreams"]) == {"wecom"}
            log = proc.log()
            wecom_tokens = list(wecom_emu._tokens)
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    traced = [line for line in lines if line["request_id"] == "trace-abc123xyz"]
    assert any(line["logger"].startswith("minpcode.api") for line in traced), traced
    # the job the request queued ran under its id, down to the (sandbox) WeChat call
    assert any(line["logger"] == "httpx" and "getwxacodeunlimit" in line["msg"] for line in traced), traced
    from_slack = [line for line in lines if line["request_id"] == "slack-trace-424242"]
    assert any(line["logger"] == "httpx" and "getwxacodeunlimit" in line["msg"] for line in from_slack), from_slack
    assert "Data folder" in log and str(tmp_path / "data") in log
    for secret in [*secrets.values(), *wecom_tokens]:
        assert secret not in log, f"a secret reached the log: {secret[:4]}…"


@pytest.mark.slow
def test_access_lines_keep_no_query_and_skip_answered_scans(tmp_path: Path) -> None:
    with Served(tmp_path / "data", env={"MINPCODE_API_KEYS": f"cms:{KEY}"}) as proc:
        auth = {"Authorization": f"Bearer {KEY}"}
        made = proc.post("/api/weapp/qrcode", json={"path": "pages/coupon/get?id=5", "live": True}, headers=auth)
        assert made.status_code == 200 and made.json()["code"] == 0, made.text
        key = made.json()["scene"]
        for _ in range(3):
            scan = proc.get(f"/api/scenes/{key}", params={"visitor": "oVisitorOpenId-7f3a"})
            assert scan.status_code == 200 and scan.json()["data"]["live"] is True
        assert proc.get("/api/scenes/k=NoSuchKey0", params={"visitor": "oVisitorOpenId-7f3a"}).status_code == 404
        assert proc.get("/api/codes", params={"q": "春节 secret-campaign-words"}, headers=auth).status_code == 200
        log = proc.log()
    access = [line for line in log.splitlines() if "minpcode.access" in line]
    assert any('127.0.0.1 "GET /api/codes" 200 ' in line for line in access), access
    assert any('"GET /api/scenes/k=NoSuchKey0" 404 ' in line for line in access), access  # refusals stay
    assert not any(key in line for line in access), access          # answered scans: counted, not logged
    assert "oVisitorOpenId-7f3a" not in log and "secret-campaign-words" not in log
    assert any('"POST /api/weapp/qrcode" 200 ' in line for line in access), access
    assert "uvicorn.access" not in log  # one access line per request, ours


@pytest.mark.slow
def test_metrics_with_a_token_need_the_bearer(tmp_path: Path) -> None:
    with Served(tmp_path / "data", env={"MINPCODE_METRICS_TOKEN": "metrics-token-9f8e7d"}) as proc:
        assert proc.get("/metrics").status_code == 404
        assert proc.get("/metrics", headers={"Authorization": "Bearer wrong-token"}).status_code == 404
        page = proc.get("/metrics", headers={"Authorization": "Bearer metrics-token-9f8e7d"})
        assert page.status_code == 200 and samples(page.text)


def test_readyz_says_which_upstream_was_unreachable(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, minpcode_data_dir=tmp_path / "data", minpcode_sandbox=False,  # type: ignore[call-arg]
                        wechat_appid=SANDBOX_APPID, wechat_secret=SecretStr(SANDBOX_SECRET),
                        wechat_api_url="http://127.0.0.1:9", minpcode_api_keys=SecretStr(f"cms:{KEY}"))
    with ServerThread(create_app(settings)) as server:
        answer = httpx.post(server.url + "/api/weapp/qrcode", json={"path": "pages/index/index", "scene": "id=1"},
                            headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
        assert answer.status_code != 200
        ready = httpx.get(server.url + "/readyz")
    assert ready.status_code == 503
    wechat = ready.json()["upstreams"]["wechat"]
    assert wechat["ok"] is False and wechat["error"]


@pytest.mark.slow
def test_sigterm_lets_serve_exit_0_and_leaves_the_code_for_the_next_start(tmp_path: Path) -> None:
    emu = WeChatEmulator(latency=30.0)  # WeChat hangs: the code is in flight when SIGTERM comes
    data = tmp_path / "data"
    with ServerThread(emu.app) as wechat:
        env = {"MINPCODE_SANDBOX": "false", "WECHAT_APPID": SANDBOX_APPID, "WECHAT_SECRET": SANDBOX_SECRET,
               "WECHAT_API_URL": wechat.url, "MINPCODE_API_KEYS": f"cms:{KEY}", "MINPCODE_STOP_GRACE": "1"}
        proc = Served(data, env=env).start()
        answers: list[Any] = []

        def ask() -> None:
            try:
                answers.append(proc.post("/api/weapp/qrcode", json={"path": "pages/index/index", "scene": "id=9"},
                                         headers={"Authorization": f"Bearer {KEY}"}))
            except httpx.HTTPError as exc:
                answers.append(exc)

        asker = threading.Thread(target=ask)
        asker.start()
        deadline = time.monotonic() + 20
        while not emu.calls["/cgi-bin/stable_token"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert emu.calls["/cgi-bin/stable_token"], proc.log()
        assert proc.proc is not None
        started = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        code = proc.proc.wait(timeout=30)
        took = time.monotonic() - started
        asker.join(timeout=30)
        first_log = proc.log()
        proc.stop()
        assert code == 0, first_log
        assert took < 15, took
        assert "stay pending" in first_log
        # the request waiting for that code was answered at the signal ("still making it"), not dropped
        [answer] = answers
        assert isinstance(answer, httpx.Response) and answer.status_code == 503, answer
        assert answer.json()["code"] != 0
        store = Storage.open(data)
        try:
            [pending] = store.history.pending()
        finally:
            store.close()

        emu.latency = 0.0
        with Served(data, env=env) as again:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                got = again.get(f"/api/codes/{pending.id}", headers={"Authorization": f"Bearer {KEY}"}).json()
                if got.get("data", got).get("status") != Status.PENDING.value:
                    break
                time.sleep(0.2)
            assert got.get("data", got)["status"] == Status.DONE.value, got




def test_wecom_callbacks_are_timed(serve: Any, tmp_path: Path) -> None:
    from bot.metrics import render
    from tests.wecom.test_callback import USER, make_site

    def timed() -> float:
        return value(samples(render()[0].decode()), "minpcode_ack_latency_seconds_count", front_end="wecom")

    site = make_site(serve, tmp_path)
    before = timed()
    assert site.sender.send_text(USER, "帮助").status_code == 200
    assert timed() == before + 1


def test_resolver_scans_are_counted(tmp_path: Path, wechat: Any) -> None:
    from bot.metrics import render
    from tests.live.test_live import make_live, resolve, start

    def scans(outcome: str) -> float:
        return value(samples(render()[0].decode()), "minpcode_resolver_scans_total", outcome=outcome)

    server = start(tmp_path, wechat)
    try:
        key = make_live(server)["scene"]
        found, unknown = scans("found"), scans("unknown")
        assert resolve(server, key).status_code == 200
        assert resolve(server, "k=nosuchkey0").status_code == 404
        assert (scans("found"), scans("unknown")) == (found + 1, unknown + 1)

        def uncounted(reason: str) -> float:
            return value(samples(render()[0].decode()), "minpcode_resolver_scans_uncounted_total", reason=reason)

        other = uncounted("other_app")
        referer = {"Referer": "https://servicewechat.com/wx0123456789abcdef/3/page-frame.html"}
        assert server.call("GET", f"/api/scenes/{key}", key=None, headers=referer).status_code == 200
        assert (scans("found"), uncounted("other_app")) == (found + 2, other + 1)
    finally:
        server.thread.stop()


def test_batch_rows_by_state_are_on_the_page(tmp_path: Path) -> None:
    from bot.batch.models import BatchOrigin, RowStatus

    settings = Settings(_env_file=None, minpcode_data_dir=tmp_path / "data", minpcode_sandbox=True)  # type: ignore[call-arg]
    app = create_app(settings)
    app.state.service.storage.batches.create(
        BatchOrigin(user_id="alice"), filename="sheet.csv", sha256="0" * 64, encoding="utf-8",
        rows=[(2, {"page": "pages/a/a"}, RowStatus.DONE, None, None), (3, {"page": "pages/b/b"}, RowStatus.DONE, None, None),
              (4, {"page": "x"}, RowStatus.INVALID, None, "bad page")])
    with ServerThread(app) as server:
        page = samples(httpx.get(server.url + "/metrics").text)
    assert value(page, "minpcode_batch_rows", state="done") == 2
    assert value(page, "minpcode_batch_rows", state="invalid") == 1


@pytest.mark.slow
def test_json_log_format_makes_every_line_json_warnings_included(tmp_path: Path) -> None:
    """Issue 24: the banner, the data-folder line and the start-up warnings were plain text among the JSON
    lines; a pipeline reading stdout and stderr as JSON lines drops exactly the lines an operator needs."""
    env = {"MINPCODE_LOG_FORMAT": "json", "MINPCODE_LANG": "en",
           "WECHAT_APPID": "wx00000000000000aa",       # half of WeChat: no WECHAT_SECRET
           "MINPCODE_LOG_LEVLE": "DEBUG"}              # misspelt MINPCODE_LOG_LEVEL
    with Served(tmp_path / "data", env) as proc:
        assert proc.get("/healthz").status_code == 200
    lines = [line for line in proc.log().splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}\n{proc.log()}")
    said = {(r["level"], r["msg"]) for r in records}
    warnings = [msg for level, msg in said if level == "WARNING"]
    assert any("WeChat is half configured" in m and "WECHAT_SECRET" in m for m in warnings), said
    assert any("MINPCODE_LOG_LEVLE" in m and "MINPCODE_LOG_LEVEL" in m for m in warnings), said
    assert any("minpcode serving on" in msg for _, msg in said), said
    assert any("Data folder" in msg and str(tmp_path / "data") in msg for _, msg in said), said
