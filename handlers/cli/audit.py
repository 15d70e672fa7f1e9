"""``minpcode audit [ID]``: the audit log's reader, and the history table ``minpcode show`` prints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from bot.history import AuditEntry
from bot.service import Service
from bot.text import local_time
from handlers.cli.app import Cli, Say
from handlers.cli.output import out, say
from handlers.cli.output import print_json_out as print_json
from handlers.cli.terminal import table
from handlers.render import ACTION_WORDS


def audit_table(entries: Sequence[AuditEntry], zone: ZoneInfo, *, with_code: bool = True) -> Table:
    """Entries, one row each, both languages in each cell; times in ``zone``, named in the header."""
    headers = [f"时间 Time ({zone.key})", *(["编号 ID"] if with_code else []), "谁 Who", "做了什么 Action"]
    shown = table(*headers)
    for e in entries:
        zh, en = ACTION_WORDS.get(e.action, (e.action, e.action))
        what = zh if zh == en else f"{zh} {en}"
        if e.action in ("renamed", "repointed"):
            what += f": {e.detail.get('old') or '-'} → {e.detail.get('new') or '-'}"
        cells = [local_time(e.at, zone).rsplit(" ", 1)[0], *([e.code_id or "-"] if with_code else []), e.actor, what]
        shown.add_row(*cells)
    return shown


def print_history(service: Service, code_id: str, out: Console, say: Say) -> None:
    """The history of one code under its details (``minpcode show``)."""
    entries = service.audit(code_id)
    if entries:
        say("历史 History:")
        out.print(audit_table(entries, service.settings.zone, with_code=False))


def register(app: typer.Typer, cli: Cli) -> None:
    run = cli.run

    @app.command()
    def audit(
        code_id: Annotated[str | None, typer.Argument(metavar="[ID]", help="One code's history (default: all).")] = None,
        limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many, newest first.")] = 50,
        as_json: Annotated[bool, typer.Option("--json", help="Print the entries as JSON.")] = False,
    ) -> None:
        """Who made, reused, renamed or deleted what, and when: one code's history, or the newest entries.

        Examples:

            minpcode audit

            minpcode audit 3k9x2m7q1abc --json
        """

        async def body(service: Service) -> int:
            entries = service.audit(code_id, limit)
            if as_json:
                print_json([e.model_dump(mode="json") for e in entries])
                return 0
            if not entries:
                say("审计日志里还没有记录。/ The audit log is empty.")
                return 0
            out.print(audit_table(entries, service.settings.zone, with_code=code_id is None))
            return 0

        run(body, as_json=as_json)


__all__ = ["audit_table", "print_history", "register"]
