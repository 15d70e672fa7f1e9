"""Scheduled summaries to a WeCom group the AI bot is in (``WECOM_BOT_SUMMARY_CHAT``): markdown, then the
chart as an image, pushed on the running long connection (``aibot_send_msg``,
https://developer.work.weixin.qq.com/document/path/101463 主动推送消息; the image uploaded over the socket first,
上传临时素材). An alternative to the group robot's webhook (handlers/wecom/announce.py).

There is one connection per bot (a second subscription would take it from ``serve``), so the announcer posts
through the front-end's: :func:`attach` is called by the front-end when it starts. Steps (bot/ports.py):
``wecom_aibot.markdown`` and ``wecom_aibot.image``; a retry skips the steps done.
"""

from __future__ import annotations

import logging
from typing import Protocol

from bot.announce import step
from bot.config import Settings
from bot.ports import Announcement, OnStep, PostError
from handlers.wecom.summary_view import wecom_markdown

from . import protocol as p
from .gateway import Gateway, GatewayRefused, GatewayUnreachable


class AiBotFrontEnd(Protocol):
    """What the announcer needs of the running front-end (front.py): its connection and its uploads."""

    gateway: Gateway

    async def upload(self, data: bytes, filename: str, kind: str = "image") -> str: ...

log = logging.getLogger("minpcode.wecom.aibot")

_RUNNING: list[AiBotFrontEnd] = []
"""The process's AI-bot front-end while it runs (at most one: one connection per bot)."""


def attach(front: AiBotFrontEnd) -> None:
    _RUNNING[:] = [front]


def detach(front: AiBotFrontEnd) -> None:
    if front in _RUNNING:
        _RUNNING.remove(front)


class AiBotAnnouncer:
    name = "wecom_aibot"

    def __init__(self, chat_id: str) -> None:
        self.chat_id = chat_id
        self.where = f"WeCom group {chat_id} (AI bot)"

    async def check(self) -> str | None:
        return None if _RUNNING else "the WeCom AI bot is not running (WECOM_BOT_ID, WECOM_BOT_SECRET)"

    async def announce(self, announcement: Announcement, *, done: set[str], on_step: OnStep) -> None:
        front = _RUNNING[0] if _RUNNING else None
        if front is None:
            raise PostError("WeCom AI bot: not running", retryable=True)
        # the markdown limit of a push is not on the page: the group robot's 4096 bytes, well within a stream's
        markdown = wecom_markdown(announcement.summary, announcement.lang)
        try:
            await step("wecom_aibot.markdown", done, on_step,
                       lambda: front.gateway.call(p.SEND, p.markdown(self.chat_id, markdown)))
            png = announcement.png
            if png:
                async def image() -> None:
                    media_id = await front.upload(png, announcement.filename)
                    await front.gateway.call(p.SEND, p.media_message(self.chat_id, "image", media_id))

                await step("wecom_aibot.image", done, on_step, image)
        except GatewayRefused as exc:
            log.warning("summary post to %s refused: errcode %s %s", self.where, exc.errcode, exc.errmsg)
            raise PostError(f"WeCom AI bot: errcode {exc.errcode} {exc.errmsg}".strip(), retryable=False) from exc
        except GatewayUnreachable as exc:
            raise PostError("WeCom AI bot: not connected", retryable=True) from exc


def wecom_aibot_announcer(settings: Settings) -> AiBotAnnouncer | None:
    """The announcer when WECOM_BOT_SUMMARY_CHAT is set with the AI bot's settings, else None."""
    chat = (settings.wecom_bot_summary_chat or "").strip()
    if not chat or not settings.wecom_bot_id or not settings.wecom_bot_secret:
        return None
    return AiBotAnnouncer(chat)


__all__ = ["AiBotAnnouncer", "attach", "detach", "wecom_aibot_announcer"]
