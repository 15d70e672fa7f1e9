"""The CLI's report commands: ``quota`` and ``summary``."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.announce import cli_summary
from bot.ports import Announcer
from bot.service import Service
from bot.summary import DEFAULT_DAYS, MAX_DAYS
from handlers.cli.app import Cli
from handlers.cli.output import ExitCode, out, print_json_out, print_notices, say
from handlers.cli.terminal import quota_table


def register(app: typer.Typer, cli: Cli) -> None:
    """Add ``quota`` and ``summary`` to ``app``."""
    _run, _settings = cli.run, cli.settings

    @app.command()
    def quota(as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False) -> None:
        """How much of each mini program's lifetime A+C code quota (MINPCODE_AC_CAP, 100,000 by default) is used.

        Example:

            minpcode quota --json
        """

        async def body(service: Service) -> ExitCode:
            rows = service.quota()
            if as_json:
                print_json_out([q.model_dump() | {"left": q.left, "ratio": q.ratio} for q in rows])
                return ExitCode.OK
            if not rows:
                say("还没有生成过 A/C 码。/ No A/C codes made yet.")
                return ExitCode.OK
            out.print(quota_table(rows))
            for q in rows:  # the links WeChat limits, beside the A/C codes (a table that wide would fold)
                say(f"{q.app}:\n" + q.link_lines().render(None))
            print_notices(n for q in rows if (n := q.notice()))
            return ExitCode.OK

        _run(body, as_json=as_json)


    @app.command()
    def summary(
        days: Annotated[int, typer.Option("--days", min=1, max=MAX_DAYS, help="Report on the last N days.")] = DEFAULT_DAYS,
        post: Annotated[bool, typer.Option("--post", help="Also post it to the Slack/WeCom channels.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    ) -> None:
        """Report on the codes made in the last N days; --post sends it to the chats as well.

        Example:

            minpcode summary --days 30 --post
        """

        settings = _settings("MINPCODE_TIMEZONE", *(("SLACK_API_URL", "WECOM_WEBHOOK_URL") if post else ()))
        places: list[Announcer] = []

        async def body(service: Service) -> ExitCode:
            text, code = await cli_summary(service, places, days=days, post=post, as_json=as_json)
            if as_json:
                out.file.write(text.rstrip("\n") + "\n")
            else:
                say(text)
            return ExitCode(code)

        _run(body, as_json=as_json, settings=settings, announcers=places)


__all__ = ["register"]
