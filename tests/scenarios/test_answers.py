"""Issue 12, "no silent wrong answers": what a new user met, through the real console script.

Each test runs ``minpcode`` (the CLI, the console chat or ``serve``) as a child process; live-mode
tests point it at our WeChat emulator on a loopback port.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot import sandbox
from bot.config import Settings
from bot.sandbox.server import ServerThread, free_port
from bot.sandbox.wechat import WeChatEmulator
from bot.startup import startup_report
from tests.cli.test_cli import COMMAND, clean_env
from tests.cli.test_cli import ConsoleScript as Cli

B_ARGS = ["--page", "pages/index/index", "--type", "B", "--scene", "id=42"]


@pytest.fixture(scope="module")
def wechat_url() -> Iterator[str]:
    with ServerThread(WeChatEmulator().app) as server:
        yield server.url


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def live_wechat(url: str) -> dict[str, str]:
    return {"WECHAT_APPID": sandbox.SANDBOX_APPID, "WECHAT_SECRET": sandbox.SANDBOX_SECRET, "WECHAT_API_URL": url}


def chat(tmp_path: Path, lines: list[str], *args: str, **env: str) -> dict[str, str]:
    """Each echoed command of a piped console chat and what followed it ("" holds the banner)."""
    done = subprocess.run([*COMMAND, "chat", *args], input="\n".join(lines) + "\n", cwd=tmp_path,
                          env=clean_env(tmp_path / "data", "alice", **env), capture_output=True, text=True,
                          encoding="utf-8", timeout=120)
    assert done.returncode == 0, done.stderr
    parts = re.split(r"^> (.*)$", done.stdout, flags=re.MULTILINE)
    return {"": parts[0] + done.stderr, **{parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}}


# -- a tracking link never silently becomes a plain code -------------------------------------------
@pytest.mark.slow
def test_a_campaign_with_growingio_half_configured_is_refused_and_nothing_is_recorded(
        cli: Cli, wechat_url: str) -> None:
    env = live_wechat(wechat_url) | {"GIO_TOKEN": "token-only"}
    done = cli.run("create", "--page", "pages/list/list", "--campaign", "双十一推广", "--channel", "今日头条", **env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "GrowingIO is not configured: GIO_PROJECT_UID, GIO_PRODUCT_ID not set" in done.stderr
    assert "没有配置 GrowingIO" in done.stderr and "via=wechat" in done.stderr
    assert "Please fix" not in done.stderr  # the person cannot fix the settings by changing the command
    assert cli.json("list", **env) == []  # answered, not recorded as a failed code

    plain = cli.json("create", "--page", "pages/list/list", "--campaign", "双十一推广", "--via", "wechat", **env)
    assert plain["provider"] == "wechat" and plain["status"] == "done" and plain["tracking_url"] is None


@pytest.mark.slow
def test_without_credentials_a_b_code_gets_the_right_advice_and_no_failed_row(cli: Cli) -> None:
    done = cli.run("create", *B_ARGS, MINPCODE_SANDBOX="0")
    assert done.returncode == 2
    assert "WeChat is not configured: WECHAT_APPID, WECHAT_SECRET not set" in done.stderr
    assert "GrowingIO cannot make them" in done.stderr and "use GrowingIO" not in done.stderr
    assert cli.json("list", MINPCODE_SANDBOX="0") == []
    summary = cli.json("summary", MINPCODE_SANDBOX="0")
    assert summary["failed"] == 0 and summary["failures"] == []


@pytest.mark.slow
def test_a_b_code_with_a_campaign_is_refused(cli: Cli) -> None:
    done = cli.run("create", *B_ARGS, "--campaign", "spring")
    assert done.returncode == 2
    assert "--campaign: A B code is no tracking link" in done.stderr and "B 码不是监测链接" in done.stderr


@pytest.mark.slow
def test_create_yes_says_what_it_created(tmp_path: Path) -> None:
    first = "new pages/index/index campaign=春季新品 channel=海报 create=yes"
    second = "new pages/index/other campaign=春季新品 channel=海报 create=yes"
    said = chat(tmp_path, [first, second], "--lang", "en")  # one process: one sandbox GrowingIO
    assert "Created the GrowingIO campaign '春季新品'." in said[first]
    assert "Created the GrowingIO channel '海报'." in said[first] and "已在 GrowingIO 新建推广渠道「海报」" in said[first]
    assert "Created" not in said[second]  # they exist now


# -- image links and the server -----------------------------------------------------------------------
@pytest.mark.slow
def test_cli_prints_no_server_link_unless_one_is_configured(cli: Cli) -> None:
    assert "http://" not in cli.ok("create", *B_ARGS)
    shown = cli.ok("create", *B_ARGS, MINPCODE_PUBLIC_URL="https://codes.example.com")
    assert "https://codes.example.com/codes/" in shown


def _wait_for(url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            httpx.get(url + "/healthz", timeout=1, trust_env=False)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("serve did not start")


@pytest.mark.slow
def test_serve_links_images_and_openapi_to_where_it_listens(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(tmp_path / "data", "alice", MINPCODE_API_KEYS="cms:long-random-key-123")
    proc = subprocess.Popen([*COMMAND, "serve", "--port", str(port)], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(base, proc)
        with httpx.Client(trust_env=False, timeout=30, headers={"X-API-Key": "long-random-key-123"}) as client:
            made = client.post(base + "/api/weapp/qrcode", json={"path": "pages/index/index", "scene": "a=1"}).json()
            assert made["data"].startswith(f"{base}/codes/"), made
            assert client.get(base + "/openapi.json").json()["servers"] == [{"url": base}]
            narrow = client.post(base + "/api/weapp/qrcode", json={"path": "pages/index/index", "width": 100})
            assert narrow.status_code == 400
            msg = narrow.json()["msg"]
            assert "宽度不能小于 280" in msg and "at least 280" in msg and "Input should" not in msg
            wrong = client.post(base + "/api/weapp/qrcode", json={"path": "pages/index/index", "width": "abc"})
            assert "whole number" in wrong.json()["msg"] and "Input should" not in wrong.json()["msg"]
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


# -- half a configuration is never silent ------------------------------------------------------------
@pytest.mark.slow
def test_start_says_the_mode_why_what_is_half_configured_and_misspelt(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("WECHAT_APPID=wx123\nGIO_TOKEN=abc\nMINPCODE_SANBOX=0\n", encoding="utf-8")
    said = chat(tmp_path, ["quota"], WECOM_TOKN="x")[""]
    assert "sandbox mode: neither WeChat" in said and "沙盒模式" in said
    assert "WeChat is half configured: WECHAT_SECRET not set" in said
    assert "GrowingIO is half configured: GIO_PROJECT_UID, GIO_PRODUCT_ID not set" in said
    assert "MINPCODE_SANBOX (in the .env) is not a minpcode setting and is ignored; did you mean MINPCODE_SANDBOX?" in said
    assert "WECOM_TOKN (in the environment)" in said and "WECOM_TOKEN?" in said
    assert "=abc" not in said and "wx123" not in said  # names only: values are never shown


def test_the_report_is_data_for_doctor(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("export SLACK_BOT_TOKEN=xoxb-1\nWECHAT_APPID=wx1\n", encoding="utf-8")
    settings = Settings(_env_file=env, minpcode_sandbox=False)  # type: ignore[call-arg]
    report = startup_report(settings, environ={"GIO_PROJECT": "x", "PATH": "/bin"}, env_file=env)
    assert report.mode == "live" and "no code can be made" in report.why.en
    assert {p.name: p.state for p in report.parts} == {"WeChat": "half", "GrowingIO": "off", "Slack": "half",
                                                       "WeCom": "off"}
    assert [(u.name, u.closest) for u in report.unknown] == [("GIO_PROJECT", "GIO_PROJECT_UID")]


# -- what the chat says -------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_chat_speaks_our_words(tmp_path: Path) -> None:
    said = chat(tmp_path, [
        "new pages/index/index width=abc",
        'new pages/index/index name="spring sale" campaign=a channel=b create=yes',
        "help new",
        "quota",
        "show nosuchcode",
        "new pages/index/index type=D",
        "new pages/index/index",
        "new pages/index/index type=B scene=id=1",
        "new pages/index/index type=B scene=id=1",
        "list",
        "summary",
        "summary",
    ], MINPCODE_AC_CAP="10", MINPCODE_TIMEZONE="Europe/Paris")
    width = said["new pages/index/index width=abc"]
    assert "宽度须是整数" in width and "whole number" in width and "Input should" not in width
    assert "spring-sale" in said['new pages/index/index name="spring sale" campaign=a channel=b create=yes']
    helped = said["help new"]
    assert "By type" in helped and "B: scene required" in helped and "campaign and channel required" in helped
    assert "shortlink: opens inside WeChat only (chats, articles); the page to open; title" in helped
    # The A/C cap is the setting's; the 100,000 left is WeChat's cap of permanent Short Links, not a setting.
    assert "(10 per mini program)" in said["quota"] and "100,000 per mini program" not in said["quota"]
    assert "Permanent Short Links made: 0 of 100,000" in said["quota"]
    assert "There is no code with id nosuchcode" in said["show nosuchcode"]
    assert "Please fix" not in said["show nosuchcode"] and "请修改" not in said["show nosuchcode"]
    assert said["new pages/index/index type=D"].count("new <page>") == 1
    assert "via=wechat" in said["new pages/index/index"]
    again = said["new pages/index/index type=B scene=id=1"]  # the second one: dict keeps the last
    assert "reusing it." in again and "quota" not in again and "额度" not in again
    assert "Europe/Paris" in again  # times in MINPCODE_TIMEZONE, named

    listed = said["list"]
    [code_id] = set(re.findall(r"\b[a-z0-9]{12}\b", listed))
    assert listed.count(code_id) == 1  # one table, not one per language
    assert "编号 ID" in listed and "时间 Time (Europe/Paris)" in listed

    charts = sorted((tmp_path / "data" / "out").glob("summary-*.png"))
    assert len(charts) == 2  # each summary chart keeps its own file
    assert not (tmp_path / "data" / "out" / "code.png").exists()


@pytest.mark.slow
def test_serve_does_not_print_serving_before_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run([*COMMAND, "serve", "--port", str(port)], cwd=tmp_path, capture_output=True, text=True,
                              env=clean_env(tmp_path / "data", "alice"), timeout=60)
    assert done.returncode == 2 and "serving on" not in done.stdout and "Cannot listen" in done.stderr
    assert "Traceback" not in done.stderr


# -- the audit log has a reader ---------------------------------------------------------------------
@pytest.mark.slow
def test_audit_and_show_tell_the_history_of_a_code(cli: Cli) -> None:
    made = cli.json("create", *B_ARGS)
    cli.ok("rename", made["id"], "海报二")
    cli.ok("create", *B_ARGS, user="bob")  # a reuse
    history = cli.json("audit", made["id"])
    assert [(e["actor"], e["action"]) for e in history] == [("cli:alice", "requested"), ("cli:alice", "renamed"),
                                                           ("cli:bob", "reused")]
    assert history[1]["detail"]["new"] == "海报二"
    shown = cli.ok("show", made["id"], MINPCODE_TIMEZONE="UTC")
    assert "历史 History:" in shown and "复用 reused" in shown and "Time (UTC)" in shown
    everything = cli.ok("audit")
    assert made["id"] in everything and "改名 renamed" in everything
    missing = cli.run("audit", "nosuchcode")
    assert missing.returncode == 2 and "There is no code with id nosuchcode" in missing.stderr


@pytest.mark.slow
def test_chat_show_has_the_history_in_the_time_zone(tmp_path: Path) -> None:
    said = chat(tmp_path, ["new pages/index/index type=B scene=id=9"], MINPCODE_TIMEZONE="UTC")
    code_id = re.search(r"ID: ([a-z0-9]{12})", said["new pages/index/index type=B scene=id=9"]).group(1)  # type: ignore[union-attr]
    shown = chat(tmp_path, [f"show {code_id}"], "--lang", "en", MINPCODE_TIMEZONE="Asia/Tokyo")[f"show {code_id}"]
    assert "History:" in shown and "requested" in shown and "Asia/Tokyo" in shown and " UTC" not in shown


# -- odds and ends ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_show_out_on_a_short_link_says_it_is_a_link(cli: Cli) -> None:
    link = cli.json("create", "--page", "pages/index/index", "--type", "shortlink")
    done = cli.run("show", link["id"], "--out", "x.png")
    assert done.returncode == 2 and "is a Short Link: it has no image, only its link: #小程序://" in done.stderr
    assert "(done)" not in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("width", [280, 430, 1280])
def test_sandbox_images_are_as_wide_as_asked(cli: Cli, width: int) -> None:
    import zxingcpp
    from PIL import Image

    for kind in ("B", "C"):
        extra = ["--scene", "id=1"] if kind == "B" else ["--via", "wechat"]
        cli.ok("create", "--page", "pages/index/index", "--type", kind, *extra, "--width", str(width),
               "--out", f"{kind}.png")
        image = Image.open(cli.cwd / f"{kind}.png")
        assert image.size == (width, width)
        assert len(zxingcpp.read_barcodes(image)) == 1


@pytest.mark.slow
def test_permission_errors_and_bad_settings_speak_our_words(cli: Cli) -> None:
    made = cli.json("create", *B_ARGS)
    refused = cli.run("rename", made["id"], "别人的码", user="bob")
    assert refused.returncode == 2 and "Only its creator" in refused.stderr
    assert "Please fix" not in refused.stderr and "请修改" not in refused.stderr
    bad = cli.run("list", MINPCODE_AC_CAP="abc")
    assert bad.returncode == 2 and "MINPCODE_AC_CAP must be a whole number, not 'abc'" in bad.stderr
    assert "Input should" not in bad.stderr
