"""Posting results in Slack: the code image into the channel, answers only the asker sees.

Uploads use ``files_upload_v2`` (``files.upload`` is retired). A file share needs real membership,
so (https://docs.slack.dev/reference/methods/conversations.join; which upload errors mean what is
our assumption):

* ``not_in_channel`` — a public channel the bot is not in: ``conversations.join`` and retry once;
* ``channel_not_found`` (a private channel or a DM the bot cannot see) or a refused join — the code
  goes to the requester by DM, with a line saying why.

Ephemeral answers go by ``chat.postEphemeral``; where that is refused, by the command's
``response_url``; failing that, by DM (unless the caller would rather drop the message).
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot import media
from bot.models import CodeRecord
from handlers.http import is_loopback
from handlers.slack.errors import slack_error
from handlers.slack.views import say

log = logging.getLogger("minpcode.slack.deliver")

# completeUploadExternal / postMessage errors after which the requester gets the code by DM instead.
HIDDEN_CHANNEL_ERRORS = frozenset({"channel_not_found", "access_denied", "posting_to_channel_denied",
                                   "is_archived", "restricted_action", "not_allowed_token_type"})


def bypass_proxy(url: str) -> bool:
    """slack_sdk reads HTTP(S)_PROXY but ignores NO_PROXY; loopback and NO_PROXY hosts go direct."""
    host = urlsplit(url).hostname or ""
    if is_loopback(url):
        return True
    return bool(host) and bool(urllib.request.proxy_bypass(host))


def fix_proxy(client: Any, url: str) -> Any:
    if bypass_proxy(url):
        client.proxy = None
    return client


@dataclass(frozen=True)
class Posted:
    channel_id: str
    by_dm: bool = False
    why: str | None = None  # the Slack error that sent it to the DM


class Delivery:
    def __init__(self, client: AsyncWebClient, answerable: Callable[[str], bool] = lambda url: True) -> None:
        self.client = client
        self.answerable = answerable  # response_url hosts we post to (Slack's, or SLACK_API_URL's)
        self._dms: dict[str, str] = {}

    async def dm_channel(self, user_id: str) -> str:
        channel = self._dms.get(user_id)
        if channel is None:
            response = await self.client.conversations_open(users=user_id)
            channel = str(response["channel"]["id"])
            self._dms[user_id] = channel
        return channel

    # -- into a channel ----------------------------------------------------------------------------
    async def into_channel(self, channel_id: str, post: Callable[[], Awaitable[object]]) -> str | None:
        """Run ``post`` (something posted into ``channel_id``), joining a public channel the bot is not in
        first. None when it went in; else the Slack error that keeps it out (the caller sends it by DM).
        An error that is not about the channel is raised."""
        try:
            await post()
            return None
        except SlackApiError as exc:
            error = slack_error(exc)
            if error == "not_in_channel":
                try:
                    await self.client.conversations_join(channel=channel_id)
                    await post()
                    return None
                except SlackApiError as again:
                    error = slack_error(again)
                    log.info("could not join/post in %s: %s", channel_id, error)
                    return error
            if error in HIDDEN_CHANNEL_ERRORS:
                return error
            raise

    async def post_code(self, *, record: CodeRecord, image: bytes | None, mime: str | None, comment: str,
                        user_id: str, channel_id: str | None, lang: str | None,
                        thread_ts: str | None = None) -> Posted:
        """Post ``record`` where it was asked for (in ``thread_ts`` when given); raises the Slack error
        when even the DM fails."""
        if channel_id is None:
            target = await self.dm_channel(user_id)
            await self._post(target, record, image, mime, comment)
            return Posted(target, by_dm=True)
        error = await self.into_channel(channel_id, lambda: self._post(channel_id, record, image, mime, comment,
                                                                       thread_ts))
        if error is None:
            return Posted(channel_id)
        why = self.why_dm(error, channel_id, lang)
        target = await self.dm_channel(user_id)
        await self._post(target, record, image, mime, comment + "\n\n" + why)
        return Posted(target, by_dm=True, why=error)

    async def _post(self, channel_id: str, record: CodeRecord, image: bytes | None, mime: str | None,
                    comment: str, thread_ts: str | None = None) -> None:
        # a file into a thread: files.completeUploadExternal's thread_ts, the parent message's ts
        # (https://docs.slack.dev/reference/methods/files.completeUploadExternal/)
        if image:
            ext = media.extension(mime)
            await self.client.files_upload_v2(
                channel=channel_id, file=image, filename=f"minpcode-{record.id}.{ext}",
                title=record.name or record.id, alt_txt=f"{record.type.value} code {record.name or record.id}",
                initial_comment=comment, thread_ts=thread_ts,
            )
        else:
            await self.client.chat_postMessage(channel=channel_id, text=comment, unfurl_links=False,
                                               thread_ts=thread_ts)

    async def post(self, channel_id: str, text: str, *, blocks: list[dict[str, Any]] | None = None,
                   thread_ts: str | None = None) -> bool:
        """An answer posted where the person wrote (their DM with the bot, the thread of an @mention);
        False when Slack refused it (the caller then answers the asker only)."""
        try:
            # https://docs.slack.dev/reference/methods/chat.postMessage/: thread_ts makes it a reply
            await self.client.chat_postMessage(channel=channel_id, text=text, blocks=blocks, thread_ts=thread_ts,
                                               unfurl_links=False)
            return True
        except SlackApiError as exc:
            log.info("posting in %s refused: %s", channel_id, slack_error(exc))
        except SlackClientError as exc:
            log.warning("posting in %s failed: %s", channel_id, exc)
        return False

    @staticmethod
    def why_dm(error: str, channel_id: str, lang: str | None) -> str:
        if error in ("channel_not_found", "method_not_supported_for_channel_type"):
            return "_" + say(
                lang,
                "我不在那个私有频道或私聊里，所以通过私信发给你。要让码直接发到那里，请在那里输入 /invite @minpcode。",
                "I'm not in that private channel or conversation, so here it is by DM. To get codes posted "
                "there, type /invite @minpcode in it.",
            ) + "_"
        return "_" + say(
            lang,
            f"没能发到 <#{channel_id}>（{error}），所以通过私信发给你。",
            f"I could not post in <#{channel_id}> ({error}), so here it is by DM.",
        ) + "_"

    # -- answers only the asker sees ----------------------------------------------------------------
    async def tell(self, user_id: str, channel_id: str | None, text: str, *,
                   blocks: list[dict[str, Any]] | None = None, response_url: str | None = None,
                   dm_fallback: bool = True) -> str | None:
        """Returns how it went out: ``ephemeral``, ``response_url``, ``dm`` or None (dropped)."""
        if channel_id:
            try:
                await self.client.chat_postEphemeral(channel=channel_id, user=user_id, text=text, blocks=blocks)
                return "ephemeral"
            except SlackApiError as exc:
                log.info("ephemeral to %s in %s refused: %s", user_id, channel_id, slack_error(exc))
            except SlackClientError as exc:
                log.warning("ephemeral to %s failed: %s", user_id, exc)
        if response_url and not self.answerable(response_url):
            log.warning("response_url on a host that is not Slack's ignored")
            response_url = None
        if response_url:
            try:
                hook = fix_proxy(AsyncWebhookClient(response_url), response_url)
                answer = await hook.send(text=text, blocks=blocks, response_type="ephemeral")
                if answer.status_code == 200:
                    return "response_url"
                log.info("response_url answered %s", answer.status_code)
            except Exception as exc:  # a dead response_url must not stop the DM fallback
                log.info("response_url failed: %s", type(exc).__name__)
        if not dm_fallback:
            return None
        channel = await self.dm_channel(user_id)
        await self.client.chat_postMessage(channel=channel, text=text, blocks=blocks, unfurl_links=False)
        return "dm"
