"""``minpcode``, the command line: the typer app, one module per command group, and the terminal rendering.

    app.py        the app, and the plumbing every group shares (settings, who is asking, running a body)
    codes.py      create, list, show, rename, delete
    reports.py    quota, summary
    live.py       repoint, pause, resume, stats, verify-file
    audit.py      audit
    batches.py    bulk, batches, batch
    posters.py    poster, posters, poster-template, poster-logo
    mcp.py        mcp (the MCP server over stdio, handlers/mcp)
    webhooks.py   webhooks add, list, deliveries, remove, test
    output.py     exit codes, errors, notices, the start-up report
    terminal.py   tables, JSON, images written by their file name

The process (bot/cli.py) hands in how to open a service (:class:`Wiring`), adds its own commands (serve,
chat, backup, restore, migrate, doctor) and calls :func:`add_groups`. A new command group is one module
here with ``register(app, cli)``, named in :data:`GROUPS`.
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from handlers.cli import audit, batches, codes, live, mcp, posters, reports, webhooks
from handlers.cli.app import Cli, Wiring, new_app

GROUPS: tuple[Callable[[typer.Typer, Cli], None], ...] = (
    codes.register, reports.register, live.register, audit.register, batches.register, posters.register,
    mcp.register, webhooks.register,
)


def add_groups(app: typer.Typer, cli: Cli) -> None:
    for register in GROUPS:
        register(app, cli)


__all__ = ["GROUPS", "Cli", "Wiring", "add_groups", "new_app"]
