"""Summaries into a Slack channel: chat.postMessage with Block Kit, then files_upload_v2 of the chart.

Steps (bot/ports.py): ``slack.message`` and ``slack.chart``. A public channel the bot is not in is
joined once on ``not_in_channel``. Slack's SDK errors become PostError here, at the boundary.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.announce import step
from bot.config import Settings
from bot.ports import Announcement, OnStep, PostError

from .summary_view import slack_blocks, slack_text

log = logging.getLogger("minpcode.slack.announce")

TIMEOUT = 20
# Errors a retry cannot fix: the token, the scopes or the channel must change first.
_SLACK_FINAL = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "channel_not_found",
                          "is_archived", "missing_scope", "access_denied", "posting_to_channel_denied"})


# Conversation ids are upper-case (C public, G private, D direct); channel names are always lower-case.
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{8,}")


def slack_client(settings: Settings) -> AsyncWebClient:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    base = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    client = AsyncWebClient(token=token, base_url=base, timeout=TIMEOUT)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    return client


class SlackAnnouncer:
    """Posts summaries into one channel (``SLACK_SUMMARY_CHANNEL``)."""

    name = "slack"

    def __init__(self, client: AsyncWebClient, channel: str) -> None:
        self.client = client
        self.channel = channel.strip()
        self.where = f"Slack {self.channel}"
        self._checked = False

    async def check(self) -> str | None:
        """Turn a channel name (``#growth`` or ``growth``) into its id, once: ``files.completeUploadExternal``
        takes ids only, so the chart of a summary posted by name would fail with channel_not_found.
        Pages through ``conversations.list``. Returns what is wrong, in words for the log, or None."""
        self._checked = True
        if _CHANNEL_ID.fullmatch(self.channel):
            return None
        name = self.channel.lstrip("#")
        try:
            found = await self._find(name, "public_channel,private_channel")
        except SlackApiError as exc:
            if exc.response.get("error") != "missing_scope":
                return f"could not list channels to find #{name}: {exc.response.get('error')}"
            try:  # without groups:read only public channels can be looked up
                found = await self._find(name, "public_channel")
            except SlackApiError as again:
                return (f"could not list channels to find #{name}: {again.response.get('error')} "
                        "(the bot needs channels:read; or put the channel id in SLACK_SUMMARY_CHANNEL)")
        except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            return f"could not reach Slack to find #{name}: {type(exc).__name__}"
        if found is None:
            return (f"no channel named #{name} that the bot can see: check SLACK_SUMMARY_CHANNEL (a name or an id; "
                    "a private channel needs the bot invited)")
        self.channel = str(found["id"])
        self.where = f"Slack #{name} ({self.channel})"
        if not found.get("is_member"):
            if found.get("is_private"):
                return f"the bot is not in the private channel #{name}: invite it (/invite @minpcode)"
            return f"the bot is not in #{name}: it joins on the first summary (or invite it: /invite @minpcode)"
        return None

    async def _find(self, name: str, types: str) -> dict[str, Any] | None:
        cursor: str | None = None
        while True:
            page = await self.client.conversations_list(types=types, exclude_archived=True, limit=1000, cursor=cursor)
            for channel in page.get("channels") or []:
                if channel.get("name") == name:
                    return dict(channel)
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return None

    async def announce(self, announcement: Announcement, *, done: set[str], on_step: OnStep) -> None:
        if not self._checked:
            problem = await self.check()
            if problem:
                log.warning("summary channel: %s", problem)
        summary, lang, png = announcement.summary, announcement.lang, announcement.png
        client, channel = self.client, self.channel
        await step("slack.message", done, on_step, lambda: self._in_channel(lambda: client.chat_postMessage(
            channel=channel, text=slack_text(summary, lang), blocks=slack_blocks(summary, lang),
            unfurl_links=False, unfurl_media=False)))
        if png:
            await step("slack.chart", done, on_step, lambda: self._in_channel(lambda: client.files_upload_v2(
                channel=channel, file=png, filename=announcement.filename, title=announcement.title,
                alt_txt=announcement.title)))

    async def _in_channel(self, call: Callable[[], Awaitable[Any]]) -> None:
        """Run a Slack call; on ``not_in_channel`` join the (public) channel and try once more."""
        try:
            await _slack(call)
        except PostError as exc:
            if "not_in_channel" not in exc.detail:
                raise
            await _slack(lambda: self.client.conversations_join(channel=self.channel))
            await _slack(call)


async def _slack(call: Callable[[], Awaitable[Any]]) -> None:
    try:
        await call()
    except SlackApiError as exc:
        error = str(exc.response.get("error") or exc.response.status_code)
        raise PostError(f"Slack: {error}", retryable=error not in _SLACK_FINAL) from exc
    except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise PostError(f"Slack: {type(exc).__name__}: {exc}") from exc


def slack_announcer(settings: Settings) -> SlackAnnouncer | None:
    """The summary announcer when SLACK_SUMMARY_CHANNEL (with SLACK_BOT_TOKEN) is set, else None."""
    if not settings.slack_summary_channel:
        return None
    if not settings.slack_bot_token:
        log.warning("SLACK_SUMMARY_CHANNEL is set but SLACK_BOT_TOKEN is not: summaries are not posted to Slack")
        return None
    return SlackAnnouncer(slack_client(settings), settings.slack_summary_channel)


__all__ = ["SlackAnnouncer", "slack_announcer", "slack_client"]
