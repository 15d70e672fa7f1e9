"""Socket Mode: when ``SLACK_APP_TOKEN`` is set, Slack's requests arrive over a websocket instead of
POST /slack/events (no public URL needed).

Started by the Slack front end's start(), which returns at once: the connection is made by a background task, so a
Slack outage never holds up the server's start. The app token is tried first with one
``apps.connections.open``: a refusal is one clear log line (and no endless reconnect loop); a network
failure is logged and the socket client keeps retrying on its own.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
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
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Built here: the socket client needs the running event loop.
        self.handler = AsyncSocketModeHandler(self.app, self.app_token, web_client=self.client)
        fix_proxy(self.handler.client, self.api_url)
        self._task = asyncio.get_running_loop().create_task(self._connect(self.handler))

    async def _connect(self, handler: AsyncSocketModeHandler) -> None:
        try:
            await self.client.apps_connections_open(app_token=self.app_token)
        except SlackApiError as exc:
            log.warning("Slack: Socket Mode could not connect (%s); check SLACK_APP_TOKEN (xapp-… with "
                        "connections:write) and that Socket Mode is on in the app settings", slack_error(exc))
            return
        except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("Slack: Socket Mode cannot reach %s (%s); retrying in the background",
                        self.api_url, slack_error(exc))
        await handler.connect_async()  # retries by itself until it is connected or closed
        log.info("Slack: Socket Mode connected")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.handler is not None:
            await self.handler.close_async()
            self.handler = None
