"""The MCP server (Model Context Protocol): the tools an AI assistant uses to make and find codes.

Two transports of the official Python SDK (PyPI ``mcp``), one set of tools (:mod:`handlers.mcp.tools`):

    minpcode mcp [--name NAME]   stdio, for an assistant on this machine (Claude Desktop …); acts as mcp:<NAME>,
                                 by default the terminal's login (as the CLI records cli:<login>)
    POST /mcp under serve        streamable HTTP, behind a key of MINPCODE_API_KEYS (Authorization: Bearer <key>
                                 or X-API-Key, as the HTTP API); acts as mcp:<the key's name>

The name is the front-end's own (``mcp:``), as the chats and the API have theirs, so MINPCODE_ADMINS can
name an MCP identity and ``find_codes requested_by=mcp:<name>`` lists what an assistant made. docs/mcp.md.
"""

from __future__ import annotations

import contextlib
import logging

from mcp.server.mcpserver import Context
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.errors import MinpcodeError
from bot.service import Service
from handlers.api.auth import ApiKeys
from handlers.api.errors import KeyRefused, error_response
from handlers.http import request_lang
from handlers.mcp.tools import FRONT_END, McpTools

log = logging.getLogger("minpcode.mcp")

ROUTE = "/mcp"
_CALLER = "minpcode_mcp_caller"  # where the key's name rides from the guard to the tools, in the request's state


async def serve_stdio(service: Service, name: str) -> None:
    """The tools over stdin and stdout until the client closes them, acting as ``mcp:<name>``."""
    await McpTools(service, lambda ctx: name).server().run_stdio_async()


def _caller(ctx: Context) -> str:
    """The key's name the guard found for this request (every request passed it: see :class:`Guarded`)."""
    state = getattr(ctx.request_context.request, "state", None)
    name = getattr(state, _CALLER, None) if state is not None else None
    if not isinstance(name, str):  # not reached through the guard: refuse rather than act as nobody
        raise KeyRefused("这个 API 密钥无效或未获授权。", "This API key is not valid or not allowed.")
    return name


class Guarded:
    """ASGI: a request without a valid key of MINPCODE_API_KEYS is answered as the HTTP API answers it (401
    without a key, 403 with a wrong one); with one, the key's name goes with the request to the tools."""

    def __init__(self, keys: ApiKeys, app: ASGIApp) -> None:
        self.keys = keys
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            name = self.keys.authenticate(request)
        except MinpcodeError as exc:
            await error_response(exc, request_lang(request))(scope, receive, send)
            return
        scope.setdefault("state", {})[_CALLER] = name
        await self.app(scope, receive, send)


class McpFrontEnd:
    """``POST /mcp`` under ``minpcode serve`` (``bot.ports.FrontEnd``): the SDK's streamable HTTP transport."""

    name = FRONT_END

    def __init__(self, service: Service) -> None:
        self.server = McpTools(service, _caller).server()
        # Stateless, answered as JSON: each POST carries its key and is a whole exchange, so no session outlives
        # a request or is shared between keys, and any of several serve processes can answer it. The SDK's
        # DNS-rebinding check (Host and Origin against a list) is off: every request must carry an API key,
        # which a page rebinding its name to this server does not have.
        app = self.server.streamable_http_app(
            streamable_http_path=ROUTE, stateless_http=True, json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
        self.guarded = Guarded(ApiKeys(service.settings.minpcode_api_keys), app)
        # A stateless exchange "terminates" its session at every request, which the SDK logs at INFO: one line
        # per call beside our access line, saying nothing.
        logging.getLogger("mcp.server.streamable_http").setLevel(logging.WARNING)
        self._running = contextlib.AsyncExitStack()

    def routes(self) -> list[BaseRoute]:
        return [Route(ROUTE, self.guarded, methods=["GET", "POST", "DELETE"])]

    async def start(self) -> None:
        # The SDK's session manager serves requests only inside its run(), which its own app's lifespan would
        # enter; mounted as a route, the server's lifespan enters it here.
        await self._running.enter_async_context(self.server.session_manager.run())

    async def stop(self) -> None:
        await self._running.aclose()


def mcp_front_end(service: Service) -> McpFrontEnd:
    """The MCP endpoint, always mounted (without MINPCODE_API_KEYS it refuses every request, as the API does)."""
    return McpFrontEnd(service)


__all__ = ["ROUTE", "Guarded", "McpFrontEnd", "McpTools", "mcp_front_end", "serve_stdio"]
