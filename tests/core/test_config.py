"""Settings checked at start: each bad value gives one line naming the setting and what to put there,
never the secret itself; a command checks only the settings it uses."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from bot.config import BadSettings, Settings

AES_KEY = "a" * 43


def settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(_env_file=None, minpcode_data_dir=tmp_path, **extra)  # type: ignore[call-arg]


def test_good_defaults_have_no_problem(tmp_path: Path) -> None:
    assert settings(tmp_path).problems() == []
    assert settings(tmp_path).check() is not None


@pytest.mark.parametrize(("extra", "name", "advice"), [
    ({"minpcode_timezone": "Mars/Olympus"}, "MINPCODE_TIMEZONE", "IANA name"),
    ({"minpcode_summary_cron": "61 * * * *"}, "MINPCODE_SUMMARY_CRON", "five fields"),
    ({"minpcode_public_url": "example.com"}, "MINPCODE_PUBLIC_URL", "http:// or https://"),
    ({"slack_api_url": "ftp://slack"}, "SLACK_API_URL", "http:// or https://"),
    ({"minpcode_api_keys": SecretStr("crm:k1,bare-secret-key")}, "MINPCODE_API_KEYS", "entry 2 is not name:key"),
    ({"slack_bot_token": SecretStr("xoxp-user-secret")}, "SLACK_BOT_TOKEN", "starts with xoxb-"),
    ({"slack_app_token": SecretStr("xoxb-not-app-secret")}, "SLACK_APP_TOKEN", "starts with xapp-"),
    ({"wecom_webhook_url": SecretStr("qyapi/send?key=robot-secret")}, "WECOM_WEBHOOK_URL", "webhook address"),
    ({"wecom_corp_id": "ww1", "wecom_token": SecretStr("t-secret")}, "WECOM_AGENT_ID",
     "needs all of WECOM_CORP_ID"),
    ({"wecom_corp_id": "ww1", "wecom_agent_id": "app", "wecom_secret": SecretStr("s-secret"),
      "wecom_token": SecretStr("t-secret"), "wecom_aes_key": SecretStr(AES_KEY)}, "WECOM_AGENT_ID", "numeric"),
    ({"minpcode_router_page": "/pages/minpcode/router"}, "MINPCODE_ROUTER_PAGE", "no leading /"),
    ({"minpcode_fallback_page": "pages/index/index?x=1"}, "MINPCODE_FALLBACK_PAGE", "no ?query"),
    ({"minpcode_trusted_proxies": "127.0.0.1,10.0.0.1/8"}, "MINPCODE_TRUSTED_PROXIES", "such as 10.0.0.0/8"),
    ({"minpcode_trusted_proxies": "nginx"}, "MINPCODE_TRUSTED_PROXIES", "'nginx' is not an address or a CIDR range"),
    ({"minpcode_trusted_proxies": "*"}, "MINPCODE_TRUSTED_PROXIES", "every client name its own address"),
])
def test_a_bad_value_is_one_line_naming_it_and_saying_what_to_put(tmp_path: Path, extra: dict[str, object],
                                                                   name: str, advice: str) -> None:
    s = settings(tmp_path, **extra)
    [line] = s.problems()
    assert line.startswith(name) and advice in line
    assert "secret" not in line  # never the value of a secret
    with pytest.raises(BadSettings) as raised:
        s.check()
    assert raised.value.lines == [line]


def test_trusted_proxies_are_addresses_and_ranges_and_default_to_uvicorns_own(tmp_path: Path) -> None:
    assert settings(tmp_path).minpcode_trusted_proxies == ["127.0.0.1", "::1"]
    given = settings(tmp_path, minpcode_trusted_proxies=" 127.0.0.1, 172.16.0.0/12 ,fd00::/8,::1")
    assert given.minpcode_trusted_proxies == ["127.0.0.1", "172.16.0.0/12", "fd00::/8", "::1"] and not given.problems()
    assert settings(tmp_path, minpcode_trusted_proxies="").minpcode_trusted_proxies == []  # trust no proxy


def test_a_command_checks_only_what_it_uses(tmp_path: Path) -> None:
    s = settings(tmp_path, minpcode_summary_cron="every monday")
    assert s.check("MINPCODE_TIMEZONE") is s
    with pytest.raises(BadSettings):
        s.check("MINPCODE_SUMMARY_CRON")


def test_the_time_zone_is_one_zoneinfo_and_a_bad_one_is_never_replaced(tmp_path: Path) -> None:
    assert settings(tmp_path).zone == ZoneInfo("Asia/Shanghai")
    assert settings(tmp_path, minpcode_timezone=" Europe/Paris ").zone == ZoneInfo("Europe/Paris")
    bad = settings(tmp_path, minpcode_timezone="Mars/Olympus")
    with pytest.raises(BadSettings) as raised:
        bad.zone  # noqa: B018 - reading it is the check
    assert raised.value.lines == bad.problems("MINPCODE_TIMEZONE")


def test_a_whole_wecom_app_and_none_are_both_fine(tmp_path: Path) -> None:
    full = {"wecom_corp_id": "ww1", "wecom_agent_id": "1000002", "wecom_secret": SecretStr("s"),
            "wecom_token": SecretStr("t"), "wecom_aes_key": SecretStr(AES_KEY)}
    assert settings(tmp_path, **full).problems() == []


def test_the_terminal_language_follows_the_locale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MINPCODE_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    assert settings(tmp_path).terminal_lang == "en"
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert settings(tmp_path).terminal_lang == "zh"
    monkeypatch.setenv("MINPCODE_LANG", "en")
    assert settings(tmp_path).terminal_lang == "en"


def test_links_for_people_need_the_public_url_the_operator_gave(tmp_path: Path) -> None:
    default = Settings(_env_file=None, minpcode_data_dir=tmp_path)
    assert default.people_url is None  # the default 127.0.0.1 address is nobody's phone's
    serving = default.listening_at("http://127.0.0.1:8123")
    assert serving.minpcode_public_url == "http://127.0.0.1:8123"  # image links for this machine's callers
    assert serving.people_url is None and default.people_url is None
    given = Settings(_env_file=None, minpcode_data_dir=tmp_path, minpcode_public_url="https://codes.example.com/")
    assert given.people_url == "https://codes.example.com"
    assert given.listening_at("http://127.0.0.1:8123") is given  # serve keeps what was given
