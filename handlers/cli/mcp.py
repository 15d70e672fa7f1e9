"""``minpcode mcp``: the MCP server over stdio, for an AI assistant that starts it (docs/mcp.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.service import Service
from handlers.cli.app import Cli


def register(app: typer.Typer, cli: Cli) -> None:
    @app.command("mcp")
    def mcp(
        name: Annotated[str | None, typer.Option(
            "--name", help="Who the assistant acts as: its codes are recorded as mcp:NAME (default: your login).")] = None,
    ) -> None:
        """Serve the MCP tools (make_code, find_codes, show_code, make_poster, repoint_live_code, pause_live_code,
        code_stats, quota) over stdin/stdout, for an AI assistant such as Claude Desktop.

        The assistant starts it; nothing but the protocol is written to stdout (logs go to stderr). Example
        client configuration:

            {"mcpServers": {"minpcode": {"command": "minpcode", "args": ["mcp"]}}}
        """
        from handlers.mcp import serve_stdio

        who = (name or "").strip() or cli.settings().user or "local"
        if any(ch.isspace() or ch == ":" for ch in who):
            raise typer.BadParameter("不能包含空格或冒号 / may contain no spaces or colons", param_hint="--name")

        async def body(service: Service) -> int:
            await serve_stdio(service, who)
            return 0

        cli.run(body, worker=True)


__all__ = ["register"]
