"""The Slack front end: ``/minpcode`` (form and text commands), the App Home tab, results in channels.

``mount(service, front_ends)`` adds it to ``minpcode serve``: POST /slack/events in HTTP mode, or a
Socket Mode connection when ``SLACK_APP_TOKEN`` is set. Missing settings give one clear line at start
(and a 503 at /slack/events saying what is missing); the rest of the server serves either way.

Modules: ``app`` (Bolt wiring, thin listeners), ``parse`` (payloads → fields), ``views`` (Block Kit),
``deliver`` (posting results), ``home`` (App Home), ``socket`` (Socket Mode).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.service import Service

if TYPE_CHECKING:
    from bot.server import FrontEnds
    from handlers.slack.app import SlackBot

log = logging.getLogger("minpcode.slack")

__all__ = ["mount", "settings_problem"]


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


def mount(service: Service, mounted: FrontEnds) -> SlackBot | None:
    """Add the Slack routes and hooks to ``mounted``; returns the bot (None when Slack is off)."""
    settings = service.settings
    token = _secret(settings.slack_bot_token)
    signing_secret = _secret(settings.slack_signing_secret)
    app_token = _secret(settings.slack_app_token)
    problem = settings_problem(token, signing_secret, app_token)
    if problem is not None or token is None:
        reason = problem or "SLACK_BOT_TOKEN is not set"

        async def off(request: Request) -> Response:
            return JSONResponse({"ok": False, "error": "slack_not_configured", "detail": reason}, status_code=503)

        async def say_off() -> None:
            log.warning("Slack: off — %s; the rest of minpcode serves", reason)

        mounted.routes.append(Route("/slack/events", off, methods=["POST"]))
        mounted.on_start.append(say_off)
        return None

    from handlers.slack.app import SlackBot

    if not token.startswith("xoxb-"):
        log.warning("Slack: SLACK_BOT_TOKEN should be a bot token (xoxb-…)")
    api_url = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    bot = SlackBot(service, token=token, signing_secret=signing_secret, app_token=app_token, api_url=api_url)
    mounted.on_start.append(bot.start)
    mounted.on_stop.append(bot.stop)
    if app_token:
        from handlers.slack.socket import SocketMode

        socket = SocketMode(bot.bolt, app_token, bot.client, api_url)
        mounted.on_start.append(socket.start)
        mounted.on_stop.append(socket.stop)
    else:
        mounted.routes.append(Route("/slack/events", bot.endpoint, methods=["POST"]))
    return bot
