"""The ``minpcode`` typer app and what every command group runs on (:class:`Cli`).

A front-end never composes a service (that takes storage, the upstream client or the sandbox), so the
process hands in how to open one, :class:`Wiring`, when it builds the app (bot/cli.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn, Protocol

import typer
from pydantic import ValidationError

from bot import logs
from bot.config import BadSettings, Settings
from bot.errors import MinpcodeError
from bot.models import Requester
from bot.ports import Announcer
from bot.service import Service
from bot.wording import describe
from handlers.cli.output import (
    ExitCode,
    err,
    exit_code,
    out,
    print_version,
    refuse_history_elsewhere,
    report,
    say,
    warn_old_data_dir,
)

Say = Callable[..., None]


class Run(Protocol):
    def __call__(self, body: Any, *, worker: bool = False, as_json: bool = False) -> NoReturn: ...


class Opened(Protocol):
    """What the process opens for one command: the service and where summaries are posted."""

    @property
    def service(self) -> Service: ...

    @property
    def announcers(self) -> list[Announcer]: ...


@dataclass(frozen=True)
class Wiring:
    """What the process lends the CLI: how to open a service (bot.server.compose: with the sandbox when
    credentials are absent) and how a command logs (bot.server.command_logging)."""

    open: Callable[[Settings], Opened]
    logging: Callable[[Settings], None]


class Cli:
    """The plumbing every command group shares: the settings, who is asking, and running a body on a service."""

    def __init__(self, wiring: Wiring) -> None:
        self.wiring = wiring

    def settings(self, *needed: str) -> Settings:
        """The settings, with the ones this command uses (``needed``; "*" for all) checked: one line each."""
        try:
            settings = Settings()
            if needed:
                settings.check(*(() if needed == ("*",) else needed))
        except ValidationError as exc:
            say("设置有误 / The settings are not valid:", style="red", to_err=True)
            for item in exc.errors():
                name = ".".join(str(p) for p in item.get("loc", ())).upper()
                said = describe(name, item, {})  # our words, never pydantic's
                say(f"  {said.zh}\n  {said.en}", to_err=True)
            raise typer.Exit(exit_code(exc)) from None
        except BadSettings as exc:
            for line in exc.lines:
                say(line, style="red", to_err=True)
            raise typer.Exit(ExitCode.INPUT) from None
        return settings

    def requester(self) -> Requester:
        login = self.settings().user or "local"
        return Requester(chat="cli", user_id=login, user_name=login)

    def data_dir(self) -> Path:
        return self.settings().minpcode_data_dir

    def run(self, body: Callable[[Service], Awaitable[int]], *, worker: bool = False, as_json: bool = False,
            settings: Settings | None = None, announcers: list[Announcer] | None = None) -> NoReturn:
        """Run one command against a fresh service; the worker only runs for commands that make codes."""
        settings = settings or self.settings("MINPCODE_ADMINS")  # who may change whose code
        refuse_history_elsewhere(settings)
        wiring = self.wiring

        async def go() -> int:
            opened = wiring.open(settings)
            service = opened.service
            if announcers is not None:
                announcers[:] = opened.announcers
            try:
                if worker:
                    await service.start()
                return await body(service)
            finally:
                await service.close()

        wiring.logging(settings)
        try:
            with logs.request_id():  # every line of one command, down to the upstream calls, shares it
                code = asyncio.run(go())
        except MinpcodeError as exc:
            report(exc, as_json)
            code = exit_code(exc)
        raise typer.Exit(int(code))


def new_app() -> typer.Typer:
    """The ``minpcode`` app with its ``--version`` and the check every command makes first; no commands yet."""
    app = typer.Typer(
        name="minpcode",
        help="WeChat mini-program codes and GrowingIO tracking links from the terminal. "
             "微信小程序码与 GrowingIO 监测链接。",
        rich_markup_mode="markdown",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_show_locals=False,  # locals may hold settings: never print them
    )

    @app.callback()
    def _main(version: Annotated[bool, typer.Option("--version", callback=print_version, is_eager=True,
                                                    help="Print the version (with the commit, when known) and exit. 显示版本（已知时附提交号）。")] = False) -> None:
        """WeChat mini-program codes and GrowingIO tracking links from the terminal."""
        # Measured afresh for each command, as a new process would be (a test runner swaps the streams).
        out.reset()
        err.reset()
        warn_old_data_dir()

    return app


__all__ = ["Cli", "Opened", "Run", "Say", "Wiring", "new_app"]
