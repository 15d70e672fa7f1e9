"""The AI bot's ``minpcode doctor`` rows: its settings, and the gateway reached (a websocket opened and closed).

The Bot ID and Secret are not sent: WeCom keeps one connection per bot, and a subscription displaces the one
before it (https://developer.work.weixin.qq.com/document/path/101463, 连接数量限制; the gateway then sends the
older connection a ``disconnected_event``), so subscribing here would take the connection from a running
``serve``. Whether the gateway took them is what a running ``serve`` shows: its log line, and ``/readyz`` and
``/metrics`` (``gateways.wecom_aibot.state``: ``connected`` or ``refused``).
"""

from __future__ import annotations

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidURI

from bot.config import Settings
from bot.ports import Check, CheckStatus

PART = "wecom_aibot"
TIMEOUT = 10.0


def _row(name: str, status: CheckStatus, zh: str, en: str, *, fix: tuple[str, str] | None = None,
         setting: str | None = None) -> Check:
    return Check.of(PART, name, status, zh, en, fix=fix, setting=setting)


class AiBotPreflight:
    name = PART

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def checks(self) -> list[Check]:
        s = self.settings
        if not (s.wecom_bot_id or s.wecom_bot_secret):
            return [_row("configured", "skipped", "没有配置企业微信智能机器人（WECOM_BOT_ID、WECOM_BOT_SECRET）。",
                         "The WeCom AI bot is not configured (WECOM_BOT_ID, WECOM_BOT_SECRET).")]
        if problems := s.problems("WECOM_BOT"):
            setting = problems[0].split(" ", 1)[0].split("=", 1)[0]
            return [_row("settings", "failed", problems[0], problems[0], setting=setting,
                         fix=("按这一行的说明修改。", "Change it as the line says."))]
        url = s.wecom_bot_ws_url
        try:
            async with connect(url, open_timeout=TIMEOUT, ping_interval=None, proxy=None):
                pass
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            return [_row("gateway", "failed", f"连不上企业微信长连接网关 {url}（{type(exc).__name__}）。",
                         f"The WeCom long-connection gateway {url} cannot be reached ({type(exc).__name__}).",
                         setting="WECOM_BOT_WS_URL",
                         fix=("检查网络（允许连出到 openws.work.weixin.qq.com:443）和 WECOM_BOT_WS_URL。",
                              "Check the network (outbound to openws.work.weixin.qq.com:443) and WECOM_BOT_WS_URL."))]
        return [_row("gateway", "ok", f"长连接网关 {url} 可以连上。", f"The long-connection gateway {url} answers."),
                _row("credentials", "skipped",
                     "Bot ID 和 Secret 由运行中的 serve 在连接时验证（在这里订阅会顶掉它的连接）：看它的日志或 /readyz。",
                     "The Bot ID and Secret are checked by serve when it connects (subscribing here would take its "
                     "connection): see its log or /readyz.")]


def wecom_aibot_preflight(settings: Settings) -> AiBotPreflight:
    return AiBotPreflight(settings)


__all__ = ["AiBotPreflight", "wecom_aibot_preflight"]
