"""Socket Mode: when ``SLACK_APP_TOKEN`` is set, Slack's requests arrive over a websocket instead of
POST /slack/events (no public URL needed). Started as an on_start hook of the server; a failed
connection is one clear log line, and the rest of the server keeps serving."""

from __future__ import annotations

import logging

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from handlers.slack.deliver import fix_proxy, slack_error

log = logging.getLogger("minpcode.slack.socket")


class SocketMode:
    def __init__(self, app: AsyncApp, app_token: str, client: AsyncWebClient, api_url: str) -> None:
        self.app = app
        self.app_token = app_token
        self.client = client
        self.api_url = api_url
        self.handler: AsyncSocketModeHandler | None = None

    async def start(self) -> None:
        if not self.app_token.startswith("xapp-"):
            log.warning("Slack: SLACK_APP_TOKEN should be an app-level token (xapp-…) with connections:write")
        # Built here: the socket client needs the running event loop.
        self.handler = AsyncSocketModeHandler(self.app, self.app_token, web_client=self.client)
        fix_proxy(self.handler.client, self.api_url)
        try:
            await self.handler.connect_async()
        except Exception as exc:  # one clear line; the HTTP API and the rest keep serving
            log.warning("Slack: Socket Mode could not connect (%s); check SLACK_APP_TOKEN (xapp-… with "
                        "connections:write) and that Socket Mode is on in the app settings", slack_error(exc))
            return
        log.info("Slack: Socket Mode connected")

    async def stop(self) -> None:
        if self.handler is not None:
            await self.handler.close_async()
            self.handler = None
