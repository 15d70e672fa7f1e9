"""The Slack front end: ``/minpcode`` (form and text commands), the App Home tab, results in channels.

``slack_front_end(service)`` is what ``minpcode serve`` mounts (bot/ports.py ``FrontEnd``): POST
/slack/events in HTTP mode, or a Socket Mode connection when ``SLACK_APP_TOKEN`` is set. Missing
settings give one clear line at start (and a 503 at /slack/events saying what is missing); the rest
of the server serves either way. ``slack_announcer(settings)`` posts summaries (announce.py).

Modules: ``app`` (Bolt wiring, thin listeners), ``parse`` (payloads → fields), ``views`` (Block Kit),
``deliver`` (posting results), ``home`` (App Home), ``socket`` (Socket Mode), ``announce`` and
``summary_view`` (summaries into a channel).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.config import Settings
from bot.service import Service

if TYPE_CHECKING:
    from bot.ports import Announcer
    from handlers.slack.app import SlackBot
    from handlers.slack.socket import SocketMode

log = logging.getLogger("minpcode.slack")

__all__ = ["SlackFrontEnd", "settings_problem", "slack_announcer", "slack_front_end"]


def _secret(value: SecretStr | None) -> str | None:
    text = value.get_secret_value().strip() if value is not None else ""
    return text or None


def settings_problem(token: str | None, signing_secret: str | None, app_token: str | None) -> str | None:
    """Why Slack cannot run with these settings, or None."""
    if not token:
        return "SLACK_BOT_TOKEN is not set"
    if not app_token and not signing_secret:
        return ("SLACK_SIGNING_SECRET is not set (needed for HTTP mode at /slack/events; "
                "or set SLACK_APP_TOKEN for Socket Mode)")
    return None


class SlackFrontEnd:
    """Slack inside ``minpcode serve``; ``bot`` is None when Slack is off (``off_reason`` says why)."""

    name = "slack"

    def __init__(self, bot: SlackBot | None, socket: SocketMode | None = None, off_reason: str | None = None) -> None:
        self.bot = bot
        self.socket = socket
        self.off_reason = off_reason

    def routes(self) -> list[BaseRoute]:
        if self.bot is None:
            reason = self.off_reason

            async def off(request: Request) -> Response:
                return JSONResponse({"ok": False, "error": "slack_not_configured", "detail": reason},
                                    status_code=503)

            return [Route("/slack/events", off, methods=["POST"])]
        if self.socket is not None:
            return []
        return [Route("/slack/events", self.bot.endpoint, methods=["POST"])]

    async def start(self) -> None:
        if self.bot is None:
            log.warning("Slack: off — %s; the rest of minpcode serves", self.off_reason)
            return
        await self.bot.start()
        if self.socket is not None:
            await self.socket.start()

    async def stop(self) -> None:
        if self.socket is not None:
            await self.socket.stop()
        if self.bot is not None:
            await self.bot.stop()


def slack_front_end(service: Service) -> SlackFrontEnd:
    """The Slack front end for these settings (off, with the reason, when they are incomplete)."""
    settings = service.settings
    token = _secret(settings.slack_bot_token)
    signing_secret = _secret(settings.slack_signing_secret)
    app_token = _secret(settings.slack_app_token)
    problem = settings_problem(token, signing_secret, app_token)
    if problem is not None or token is None:
        return SlackFrontEnd(None, off_reason=problem or "SLACK_BOT_TOKEN is not set")

    from handlers.slack.app import SlackBot

    api_url = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    bot = SlackBot(service, token=token, signing_secret=signing_secret, app_token=app_token, api_url=api_url)
    socket = None
    if app_token:
        from handlers.slack.socket import SocketMode

        socket = SocketMode(bot.bolt, app_token, bot.client, api_url)
    return SlackFrontEnd(bot, socket)


def slack_announcer(settings: Settings) -> Announcer | None:
    """Posts summaries to SLACK_SUMMARY_CHANNEL; None when that (or SLACK_BOT_TOKEN) is not set."""
    from handlers.slack.announce import slack_announcer as build

    return build(settings)
