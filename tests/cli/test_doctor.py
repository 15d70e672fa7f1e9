"""``minpcode doctor`` against the emulators on loopback ports: each broken credential named, with the fix.

Every test talks to a real HTTP server (bot/sandbox emulators, tests/emulators/slack.py,
tests/emulators/wecom.py); the last ones run the ``minpcode doctor`` command (in-process) and read what it prints.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot import doctor
from bot.config import Settings
from bot.ports import Check
from bot.preflight import (
    DataDirPreflight,
    FontPreflight,
    GrowingIOPreflight,
    PublicUrlPreflight,
    SvgPreflight,
    WeChatPreflight,
)
from bot.sandbox import GIO_PRODUCT_ID, GIO_PROJECT_UID, GIO_TOKEN, SANDBOX_APPID, SANDBOX_SECRET
from bot.sandbox.growingio import GrowingIOEmulator
from bot.sandbox.server import ServerThread
from bot.sandbox.wechat import WeChatEmulator
from bot.server import create_app, preflights, svg_loaded
from handlers.slack.app import REQUIRED_SCOPES
from handlers.slack.preflight import SlackPreflight
from handlers.wecom.preflight import WeComPreflight
from tests.cli.test_cli import Ran, invoke
from tests.emulators.slack import (
    DEFAULT_TOKEN,
    OTHER_PUBLIC_CHANNEL,
    PRIVATE_CHANNEL,
    PUBLIC_CHANNEL,
    SlackEmulator,
)
from tests.emulators.wecom import WeComEmulator

ROOT = Path(__file__).resolve().parents[2]
AES_KEY = "a" * 43


def settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(_env_file=None, **({"minpcode_data_dir": tmp_path / "data"} | values))  # type: ignore[call-arg]


def run(check: Any) -> list[Check]:
    return asyncio.run(doctor.diagnose([check]))


def only(rows: list[Check], name: str) -> Check:
    [found] = [r for r in rows if r.name == name]
    return found


@pytest.fixture(scope="module")
def wechat() -> Iterator[tuple[WeChatEmulator, str]]:
    emulator = WeChatEmulator()
    with ServerThread(emulator.app) as server:
        yield emulator, server.url


@pytest.fixture(scope="module")
def gio() -> Iterator[str]:
    with ServerThread(GrowingIOEmulator().app) as server:
        yield server.url


# -- WeChat ----------------------------------------------------------------------------------------------
def test_wechat_good_credentials_pass_and_spend_no_code(tmp_path: Path, wechat: tuple[WeChatEmulator, str]) -> None:
    emulator, url = wechat
    rows = run(WeChatPreflight(settings(tmp_path, wechat_appid=SANDBOX_APPID, wechat_secret=SANDBOX_SECRET,
                                        wechat_api_url=url)))
    assert [r.status for r in rows] == ["ok"]
    assert emulator.ac_used() == 0
    assert set(emulator.calls) == {"/cgi-bin/stable_token"}


def test_wechat_wrong_appid_and_secret_name_their_settings(tmp_path: Path, wechat: tuple[WeChatEmulator, str]) -> None:
    _, url = wechat
    bad_app = run(WeChatPreflight(settings(tmp_path, wechat_appid="wx0000000000000bad", wechat_secret=SANDBOX_SECRET,
                                           wechat_api_url=url)))
    assert bad_app[0].status == "failed" and bad_app[0].setting == "WECHAT_APPID" and "40013" in bad_app[0].detail.en
    bad_secret = run(WeChatPreflight(settings(tmp_path, wechat_appid=SANDBOX_APPID, wechat_secret="not-the-secret-123",
                                              wechat_api_url=url)))
    row = bad_secret[0]
    assert row.status == "failed" and row.setting == "WECHAT_SECRET" and "40125" in row.detail.en
    assert row.fix is not None and "WECHAT_SECRET" in row.fix.en
    assert "not-the-secret-123" not in row.model_dump_json()


def test_wechat_ip_whitelist_names_the_ip_to_add(tmp_path: Path, wechat: tuple[WeChatEmulator, str]) -> None:
    emulator, url = wechat
    # WeChat's words for 40164 carry the caller's IP ("invalid ip … not in whitelist": our assumption, from answers seen).
    emulator.inject(40164, path="/cgi-bin/stable_token",
                    errmsg="invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist")
    row = run(WeChatPreflight(settings(tmp_path, wechat_appid=SANDBOX_APPID, wechat_secret=SANDBOX_SECRET,
                                       wechat_api_url=url)))[0]
    assert row.status == "failed" and row.name == "ip whitelist"
    assert "203.0.113.7" in row.detail.en and row.fix is not None and "add 203.0.113.7" in row.fix.en.lower()


def test_wechat_half_configured_and_unreachable(tmp_path: Path) -> None:
    half = run(WeChatPreflight(settings(tmp_path, wechat_appid=SANDBOX_APPID)))[0]
    assert half.status == "failed" and half.setting == "WECHAT_SECRET"
    gone = run(WeChatPreflight(settings(tmp_path, wechat_appid=SANDBOX_APPID, wechat_secret=SANDBOX_SECRET,
                                        wechat_api_url="http://127.0.0.1:9")))[0]
    assert gone.status == "failed" and gone.setting == "WECHAT_API_URL"


# -- GrowingIO -------------------------------------------------------------------------------------------
def gio_settings(tmp_path: Path, url: str, **values: Any) -> Settings:
    base = {"gio_project_uid": GIO_PROJECT_UID, "gio_token": GIO_TOKEN, "gio_product_id": GIO_PRODUCT_ID,
            "gio_api_url": url}
    return settings(tmp_path, **(base | values))


def test_gio_token_project_and_product(tmp_path: Path, gio: str) -> None:
    rows = run(GrowingIOPreflight(gio_settings(tmp_path, gio)))
    assert [r.status for r in rows] == ["ok", "ok"]
    token = run(GrowingIOPreflight(gio_settings(tmp_path, gio, gio_token="wrong-token-abcdef")))[0]
    assert token.status == "failed" and token.setting == "GIO_TOKEN" and "401" in token.detail.en
    project = run(GrowingIOPreflight(gio_settings(tmp_path, gio, gio_project_uid="nosuchproject")))[0]
    assert project.status == "failed" and project.setting == "GIO_PROJECT_UID"
    product = only(run(GrowingIOPreflight(gio_settings(tmp_path, gio, gio_product_id="nope"))), "product")
    assert product.status == "failed" and product.setting == "GIO_PRODUCT_ID" and GIO_PRODUCT_ID in product.detail.en


# -- Slack -----------------------------------------------------------------------------------------------
def slack_settings(tmp_path: Path, url: str, **values: Any) -> Settings:
    base = {"slack_bot_token": DEFAULT_TOKEN, "slack_signing_secret": "signing-secret-123456",
            "slack_api_url": url, "slack_summary_channel": PUBLIC_CHANNEL}
    return settings(tmp_path, **(base | values))


def test_manifest_scopes_are_the_ones_checked() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == set(REQUIRED_SCOPES)


def test_slack_token_scopes_and_channel(tmp_path: Path) -> None:
    with SlackEmulator() as emu:
        rows = run(SlackPreflight(slack_settings(tmp_path, emu.api_url)))
        assert [(r.name, r.status) for r in rows] == [("auth.test", "ok"), ("scopes", "ok"), ("summary channel", "ok")]
        bad = run(SlackPreflight(slack_settings(tmp_path, emu.api_url, slack_bot_token="xoxb-revoked-999")))
        assert bad[0].status == "failed" and bad[0].setting == "SLACK_BOT_TOKEN" and "invalid_auth" in bad[0].detail.en
        emu.scopes = [s for s in emu.scopes if s != "files:write"]
        scopes = only(run(SlackPreflight(slack_settings(tmp_path, emu.api_url))), "scopes")
        assert scopes.status == "failed" and "files:write" in scopes.detail.en and scopes.fix is not None
        missing = only(run(SlackPreflight(slack_settings(tmp_path, emu.api_url, slack_summary_channel="C0NOSUCH"))),
                       "summary channel")
        assert missing.status == "failed" and missing.setting == "SLACK_SUMMARY_CHANNEL"
        private = only(run(SlackPreflight(slack_settings(tmp_path, emu.api_url, slack_summary_channel=PRIVATE_CHANNEL))),
                       "summary channel")
        assert private.status == "failed"
        outside = only(run(SlackPreflight(slack_settings(tmp_path, emu.api_url,
                                                         slack_summary_channel=OTHER_PUBLIC_CHANNEL))), "summary channel")
        assert outside.status == "ok" and "joins" in outside.detail.en
        by_name = only(run(SlackPreflight(slack_settings(tmp_path, emu.api_url, slack_summary_channel="#general"))),
                       "summary channel")
        assert by_name.status == "ok" and "#general" in by_name.detail.en
        no_name = only(run(SlackPreflight(slack_settings(tmp_path, emu.api_url, slack_summary_channel="#nowhere"))),
                       "summary channel")
        assert no_name.status == "failed" and no_name.setting == "SLACK_SUMMARY_CHANNEL" and "#nowhere" in no_name.detail.en
        assert not emu.calls_to("chat.postMessage") and not emu.calls_to("conversations.join")


# -- WeCom -----------------------------------------------------------------------------------------------
def wecom_settings(tmp_path: Path, emu: WeComEmulator, url: str, **values: Any) -> Settings:
    base = {"wecom_corp_id": emu.corp_id, "wecom_agent_id": str(emu.agent_id), "wecom_secret": emu.secret,
            "wecom_token": "callback-token-1", "wecom_aes_key": AES_KEY, "wecom_api_url": url}
    return settings(tmp_path, **(base | values))


def test_wecom_gettoken_agent_and_trusted_ip(tmp_path: Path) -> None:
    emu = WeComEmulator()
    with ServerThread(emu.app) as server:
        rows = run(WeComPreflight(wecom_settings(tmp_path, emu, server.url)))
        assert [(r.name, r.status) for r in rows] == [("gettoken", "ok"), ("agent", "ok")]
        corp = run(WeComPreflight(wecom_settings(tmp_path, emu, server.url, wecom_corp_id="wwnotthecorp")))[0]
        assert corp.status == "failed" and corp.setting == "WECOM_CORP_ID"
        secret = run(WeComPreflight(wecom_settings(tmp_path, emu, server.url, wecom_secret="wrong-secret-xyz")))[0]
        assert secret.status == "failed" and secret.setting == "WECOM_SECRET"
        assert "wrong-secret-xyz" not in secret.model_dump_json()
        emu.add_app(1000009, "another-apps-secret-000")
        other = only(run(WeComPreflight(wecom_settings(tmp_path, emu, server.url, wecom_agent_id="1000009"))), "agent")
        assert other.status == "failed" and other.setting == "WECOM_AGENT_ID"
        emu.trusted_ips = {"198.51.100.1"}
        ip = only(run(WeComPreflight(wecom_settings(tmp_path, emu, server.url))), "agent")
        assert ip.status == "failed" and "60020" in ip.detail.en
        assert ip.fix is not None and "add 127.0.0.1" in ip.fix.en
        assert not emu.sent_messages


# -- the machine -----------------------------------------------------------------------------------------
def test_data_folder_font_and_public_url(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("x")
    row = run(DataDirPreflight(settings(tmp_path, minpcode_data_dir=blocked / "data")))[0]
    assert row.status == "failed" and row.setting == "MINPCODE_DATA_DIR"
    full = run(DataDirPreflight(settings(tmp_path), low_space=1 << 62))[0]
    assert full.status == "failed" and "MiB" in full.detail.en
    font = run(FontPreflight(settings(tmp_path, minpcode_cjk_font=tmp_path / "none.ttf")))[0]
    assert font.status == "failed" and font.setting == "MINPCODE_CJK_FONT"
    assert run(FontPreflight(settings(tmp_path), find=lambda: None))[0].status == "failed"
    unset = run(PublicUrlPreflight(settings(tmp_path)))[0]  # issue 24: it said "a loopback address"
    assert unset.status == "warning" and unset.setting == "MINPCODE_PUBLIC_URL"
    assert "not set" in unset.detail.en and "loopback" not in unset.detail.en
    assert "upload links" in unset.detail.en and "poster buttons" in unset.detail.en and "没有设置" in unset.detail.zh
    loop = run(PublicUrlPreflight(settings(tmp_path, minpcode_public_url="http://127.0.0.1:3000")))[0]
    assert loop.status == "skipped" and "loopback address" in loop.detail.en
    with ServerThread(create_app(settings(tmp_path, minpcode_sandbox=True))) as server:
        up, *warnings = run(PublicUrlPreflight(settings(tmp_path, minpcode_public_url=server.url), even_loopback=True))
        assert up.status == "ok" and "minpcode" in up.detail.en
        # live codes: the router page's wx.request reaches only an https, ICP-registered domain
        assert [(w.status, w.name, w.setting) for w in warnings] == [("warning", "live codes", "MINPCODE_PUBLIC_URL")] * 2
        assert "https request合法域名" in warnings[0].detail.en and "never an IP address" in warnings[1].detail.en
    down = run(PublicUrlPreflight(settings(tmp_path, minpcode_public_url=server.url), even_loopback=True))[0]
    assert down.status == "failed" and down.setting == "MINPCODE_PUBLIC_URL"


# -- the command -----------------------------------------------------------------------------------------
def minpcode(env: dict[str, str], *args: str) -> Ran:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "GIO_", "SLACK_", "WECOM_", "MINPCODE_"))}
    return invoke(args, env=clean | env, cwd=Path(env["MINPCODE_DATA_DIR"]))


def test_doctor_names_every_broken_credential_and_prints_no_secret(tmp_path: Path, wechat: tuple[WeChatEmulator, str],
                                                                  gio: str) -> None:
    _, wechat_url = wechat
    emu = WeComEmulator()
    secrets = {"WECHAT_SECRET": "wx-wrong-secret-31337", "GIO_TOKEN": "gio-wrong-token-31337",
               "SLACK_BOT_TOKEN": "xoxb-wrong-token-31337", "SLACK_SIGNING_SECRET": "signing-secret-31337",
               "WECOM_SECRET": "wecom-wrong-secret-31337", "WECOM_TOKEN": "callback-token-31337",
               "WECOM_AES_KEY": "b" * 43}
    (tmp_path / "data").mkdir()
    with SlackEmulator() as slack, ServerThread(emu.app) as wecom:
        env = secrets | {"MINPCODE_DATA_DIR": str(tmp_path / "data"), "WECHAT_APPID": SANDBOX_APPID,
                         "WECHAT_API_URL": wechat_url, "GIO_PROJECT_UID": GIO_PROJECT_UID, "GIO_API_URL": gio,
                         "GIO_PRODUCT_ID": GIO_PRODUCT_ID, "SLACK_API_URL": slack.api_url, "WECOM_API_URL": wecom.url,
                         "WECOM_CORP_ID": emu.corp_id, "WECOM_AGENT_ID": str(emu.agent_id)}
        done = minpcode(env, "doctor", "--json")
        shown = minpcode(env, "doctor")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    failed = {r["setting"] for r in report["checks"] if r["status"] == "failed"}
    assert {"WECHAT_SECRET", "GIO_TOKEN", "SLACK_BOT_TOKEN", "WECOM_SECRET"} <= failed
    assert all(r["fix"] for r in report["checks"] if r["status"] == "failed")
    assert shown.returncode == 1 and "WECHAT_SECRET" in shown.stdout
    for value in secrets.values():
        for text in (done.stdout, done.stderr, shown.stdout, shown.stderr):
            assert value not in text


def test_doctor_passes_when_every_configured_part_passes(tmp_path: Path, wechat: tuple[WeChatEmulator, str]) -> None:
    _, url = wechat
    (tmp_path / "data").mkdir()
    done = minpcode({"MINPCODE_DATA_DIR": str(tmp_path / "data"), "WECHAT_APPID": SANDBOX_APPID,
                     "WECHAT_SECRET": SANDBOX_SECRET, "WECHAT_API_URL": url}, "doctor", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    statuses = {r["part"]: r["status"] for r in json.loads(done.stdout)["checks"]}
    assert statuses["wechat"] == "ok" and statuses["slack"] == "skipped" and statuses["wecom"] == "skipped"
    assert str(tmp_path / "data") in done.stderr


def test_the_start_up_report_gives_the_mode_and_warns_of_misspelt_names(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    done = minpcode({"MINPCODE_DATA_DIR": str(tmp_path / "data"), "MINPCODE_SANBOX": "0",
                     "MINPCODE_PUBLIC_URL": "http://127.0.0.1:3000"}, "doctor", "--json")  # not set is a warning too
    assert done.returncode == 0, done.stdout + done.stderr  # a warning is no failure
    rows = json.loads(done.stdout)["checks"]
    assert any(r["name"] == "mode" and r["status"] == "ok" and "sandbox" in r["detail"]["en"] for r in rows)
    [warned] = [r for r in rows if r["status"] == "warning"]
    assert warned["setting"] == "MINPCODE_SANBOX" and "MINPCODE_SANDBOX" in warned["fix"]["en"]


def test_unparseable_settings_are_one_failed_row(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    done = minpcode({"MINPCODE_DATA_DIR": str(tmp_path / "data"), "MINPCODE_AC_CAP": "lots"}, "doctor", "--json")
    assert done.returncode == 1
    [row] = json.loads(done.stdout)["checks"]
    assert row["setting"] == "MINPCODE_AC_CAP"


def test_process_composes_every_part() -> None:
    names = [p.name for p in preflights(Settings(_env_file=None))]  # type: ignore[call-arg]
    assert names == ["settings", "mode", "data", "database", "font", "wechat", "gio", "public url", "posters", "slack", "wecom",
                     "wecom_aibot"]


# -- SVG logos (issue 24: the image lacked libcairo and nothing said so) ------------------------------------
NO_CAIRO = Path(__file__).with_name("no_cairo")


def test_svg_logos_are_a_row_saying_what_to_install() -> None:
    [here] = run(SvgPreflight(svg_loaded))  # this machine has libcairo (Debian's libcairo2), as the image now does
    assert (here.part, here.name, here.status) == ("posters", "svg logos", "ok") and "libcairo" in here.detail.en
    [gone] = run(SvgPreflight(load=lambda: (None, "libcairo")))
    assert gone.status == "warning" and "SVG logos unavailable: libcairo is missing" in gone.detail.en
    assert gone.fix is not None and "apt-get install libcairo2" in gone.fix.en and "libcairo2" in gone.fix.zh
    [package] = run(SvgPreflight(load=lambda: (None, "cairosvg")))
    assert package.status == "warning" and package.fix is not None and "pip install" in package.fix.en


@pytest.mark.slow
def test_doctor_without_libcairo_warns_and_names_the_package(tmp_path: Path) -> None:
    """A real ``minpcode doctor`` on a machine whose cairocffi finds no libcairo (tests/cli/no_cairo)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "GIO_", "SLACK_", "WECOM_", "MINPCODE_"))}
    env.update(MINPCODE_DATA_DIR=str(tmp_path / "data"), MINPCODE_PUBLIC_URL="http://127.0.0.1:3000",
               PYTHONPATH=os.pathsep.join([str(NO_CAIRO), str(ROOT)]))
    done = subprocess.run([sys.executable, "-m", "bot", "doctor", "--json"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    rows = json.loads(done.stdout)["checks"]
    [svg] = [r for r in rows if r["part"] == "posters"]
    assert svg["status"] == "warning" and "libcairo is missing" in svg["detail"]["en"], svg
    assert "apt-get install libcairo2" in svg["fix"]["en"] and "libcairo2" in svg["fix"]["zh"]
    assert done.returncode == 0, done.stderr  # a warning: PNG and JPEG logos and the rest still work
