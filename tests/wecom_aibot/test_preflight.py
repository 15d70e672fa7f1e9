"""``minpcode doctor`` for the AI bot: its settings, the gateway reached, and no subscription made."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from bot.config import Settings
from handlers.wecom_aibot.preflight import wecom_aibot_preflight
from tests.emulators.wecom_aibot import BOT_ID, SECRET, AiBotGateway
from tests.served import free_port


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(_env_file=None, minpcode_data_dir=tmp_path, **values)  # type: ignore[arg-type]


async def test_not_configured_is_one_skipped_row(tmp_path: Path) -> None:
    [row] = await wecom_aibot_preflight(settings(tmp_path)).checks()
    assert (row.name, row.status) == ("configured", "skipped")


async def test_half_configured_names_the_missing_setting(tmp_path: Path) -> None:
    [row] = await wecom_aibot_preflight(settings(tmp_path, wecom_bot_id=BOT_ID)).checks()
    assert row.status == "failed" and row.setting == "WECOM_BOT_SECRET"
    [row] = await wecom_aibot_preflight(settings(tmp_path, wecom_bot_id=BOT_ID, wecom_bot_secret=SecretStr(SECRET),
                                                 wecom_bot_ws_url="https://openws.work.weixin.qq.com")).checks()
    assert row.status == "failed" and row.setting == "WECOM_BOT_WS_URL"


async def test_the_gateway_is_reached_without_taking_a_running_serve_s_connection(tmp_path: Path) -> None:
    with AiBotGateway() as gw:
        rows = await wecom_aibot_preflight(settings(tmp_path, wecom_bot_id=BOT_ID, wecom_bot_secret=SecretStr(SECRET),
                                                    wecom_bot_ws_url=gw.url)).checks()
        assert [(r.name, r.status) for r in rows] == [("gateway", "ok"), ("credentials", "skipped")]
        assert gw.subscriptions == 0 and gw.refused_subscriptions == 0  # one connection per bot: never displaced


async def test_an_unreachable_gateway_fails_naming_the_url_setting(tmp_path: Path) -> None:
    [row] = await wecom_aibot_preflight(settings(tmp_path, wecom_bot_id=BOT_ID, wecom_bot_secret=SecretStr(SECRET),
                                                 wecom_bot_ws_url=f"ws://127.0.0.1:{free_port()}")).checks()
    assert row.status == "failed" and row.setting == "WECOM_BOT_WS_URL"
