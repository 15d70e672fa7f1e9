"""Slack's ``minpcode doctor`` rows: the bot token (``auth.test``), its scopes, the summary channel.

Only reads: ``auth.test`` and ``conversations.info``; nothing is posted and no channel is joined.
The scopes wanted are the ones manifest.yml asks for (:data:`handlers.slack.app.REQUIRED_SCOPES`,
which a test keeps equal to the manifest).
"""

from __future__ import annotations

import re

from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.ports import Check, CheckStatus
from handlers.slack import settings_problem
from handlers.slack.deliver import fix_proxy
from handlers.slack.errors import SLACK_FAILURES, slack_error

TIMEOUT = 10
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,}")
_REINSTALL = ("在 api.slack.com/apps 用 manifest.yml 更新应用并重新安装，再把新的 Bot Token 填到 SLACK_BOT_TOKEN。",
              "Update the app from manifest.yml at api.slack.com/apps, reinstall it and put the new bot token in "
              "SLACK_BOT_TOKEN.")


def _row(name: str, status: CheckStatus, zh: str, en: str, *, fix: tuple[str, str] | None = None,
         setting: str | None = None) -> Check:
    return Check.of("slack", name, status, zh, en, fix=fix, setting=setting)


class SlackPreflight:
    name = "slack"

    def __init__(self, settings: Settings, required_scopes: tuple[str, ...] | None = None) -> None:
        from handlers.slack.app import REQUIRED_SCOPES

        self.settings = settings
        self.required = required_scopes if required_scopes is not None else REQUIRED_SCOPES

    def _secret(self, name: str) -> str | None:
        value = getattr(self.settings, name)
        return (value.get_secret_value().strip() or None) if value is not None else None

    async def checks(self) -> list[Check]:
        token = self._secret("slack_bot_token")
        signing, app_token = self._secret("slack_signing_secret"), self._secret("slack_app_token")
        if not (token or signing or app_token or self.settings.slack_summary_channel):
            return [_row("configured", "skipped", "没有配置（SLACK_BOT_TOKEN）。", "Not configured (SLACK_BOT_TOKEN).")]
        problem = settings_problem(token, signing, app_token)
        if problem is not None or token is None:
            setting = "SLACK_BOT_TOKEN" if not token else "SLACK_SIGNING_SECRET"
            return [_row("settings", "failed", f"Slack 设置不全：{problem}", f"Slack settings incomplete: {problem}",
                         setting=setting, fix=(f"设置 {setting}。", f"Set {setting}."))]
        base = self.settings.slack_api_url if self.settings.slack_api_url.endswith("/") else self.settings.slack_api_url + "/"
        client = fix_proxy(AsyncWebClient(token=token, base_url=base, timeout=TIMEOUT), base)
        try:
            response = await client.auth_test()
        except SLACK_FAILURES as exc:
            error = slack_error(exc)
            if error in ("timeout", "unreachable"):
                return [_row("auth.test", "failed", f"连不上 Slack（{base}，{error}）。", f"Cannot reach Slack at {base} ({error}).",
                             setting="SLACK_API_URL", fix=("检查网络、代理和 SLACK_API_URL。", "Check the network, proxy and SLACK_API_URL."))]
            return [_row("auth.test", "failed", f"Slack 拒绝了 SLACK_BOT_TOKEN（{error}）。", f"Slack refused SLACK_BOT_TOKEN ({error}).",
                         setting="SLACK_BOT_TOKEN", fix=_REINSTALL)]
        rows = [_row("auth.test", "ok", f"以 @{response.get('user')} 连上 {response.get('team')}。",
                     f"Connected to {response.get('team')} as @{response.get('user')}.")]
        granted = {s.strip() for s in (response.headers.get("x-oauth-scopes") or "").split(",") if s.strip()}
        missing = [s for s in self.required if s not in granted]
        if missing:
            names = ", ".join(missing)
            rows.append(_row("scopes", "failed", f"Bot Token 缺少 manifest.yml 要求的权限：{names}。",
                             f"The bot token lacks scopes manifest.yml asks for: {names}.", setting="SLACK_BOT_TOKEN",
                             fix=_REINSTALL))
        else:
            rows.append(_row("scopes", "ok", f"manifest.yml 要求的 {len(self.required)} 个权限都有。",
                             f"All {len(self.required)} scopes manifest.yml asks for are granted."))
        rows.append(await self._channel(client))
        return rows

    async def _channel(self, client: AsyncWebClient) -> Check:
        channel = (self.settings.slack_summary_channel or "").strip()
        if not channel:
            return _row("summary channel", "skipped", "没有设置 SLACK_SUMMARY_CHANNEL，不发汇总。",
                        "SLACK_SUMMARY_CHANNEL is not set: no summaries are posted there.")
        fix = ("把频道名或 ID 填到 SLACK_SUMMARY_CHANNEL；私有频道请先 /invite @minpcode。",
               "Put the channel's name or ID in SLACK_SUMMARY_CHANNEL; for a private channel /invite @minpcode first.")
        if not _CHANNEL_ID.fullmatch(channel):
            # A name: found the way the summary announcer finds it (conversations.list), then checked by id.
            from handlers.slack.announce import SlackAnnouncer

            announcer = SlackAnnouncer(client, channel)
            problem = await announcer.check()
            if not _CHANNEL_ID.fullmatch(announcer.channel):
                return _row("summary channel", "failed", f"汇总频道有问题：{problem}", f"Summary channel: {problem}",
                            setting="SLACK_SUMMARY_CHANNEL", fix=fix)
            channel = announcer.channel
        try:
            response = await client.conversations_info(channel=channel)
        except SLACK_FAILURES as exc:
            error = slack_error(exc)
            if error == "missing_scope":
                return _row("summary channel", "skipped", f"Bot Token 没有读取频道的权限，无法检查 {channel}。",
                            f"The bot token may not read channels, so {channel} cannot be checked.",
                            fix=("在 manifest.yml 加 channels:read（私有频道 groups:read）并重新安装。",
                                 "Add channels:read (groups:read for private channels) to manifest.yml and reinstall."))
            return _row("summary channel", "failed", f"找不到频道 {channel}（{error}）。", f"Channel {channel} not found ({error}).",
                        setting="SLACK_SUMMARY_CHANNEL", fix=fix)
        info = response.get("channel") or {}
        name = info.get("name") or channel
        if info.get("is_archived"):
            return _row("summary channel", "failed", f"频道 #{name} 已归档。", f"Channel #{name} is archived.",
                        setting="SLACK_SUMMARY_CHANNEL", fix=fix)
        if not info.get("is_member"):
            if info.get("is_private"):
                return _row("summary channel", "failed", f"机器人不在私有频道 #{name} 里。",
                            f"The bot is not in the private channel #{name}.", setting="SLACK_SUMMARY_CHANNEL", fix=fix)
            return _row("summary channel", "ok", f"#{name} 存在；机器人还不在里面，第一次发汇总时会自动加入。",
                        f"#{name} exists; the bot is not in it yet and joins on the first summary (channels:join).")
        return _row("summary channel", "ok", f"#{name} 存在，机器人在里面。", f"#{name} exists and the bot is in it.")


def slack_preflight(settings: Settings) -> SlackPreflight:
    return SlackPreflight(settings)


__all__ = ["SlackPreflight", "slack_preflight"]
