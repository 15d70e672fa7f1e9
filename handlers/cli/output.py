"""The CLI's terminal output, one place: exit codes, errors, notices and the start-up report.

The commands (handlers/cli/) parse the options and call the service; everything a person sees in the
terminal is written here (tables and images are in :mod:`handlers.cli.terminal`).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from bot import logs
from bot.config import Settings
from bot.errors import (
    FieldError,
    InputError,
    InvalidRequest,
    MinpcodeError,
    NotConfigured,
    UpstreamError,
    UsageError,
)
from bot.models import CodeRecord, Status
from bot.quota import Notice
from bot.startup import history_elsewhere, startup_report
from handlers.cli.terminal import print_json


class Terminal(Console):
    """A console on whatever ``sys.stdout`` (or ``sys.stderr``) is at each write, as rich's is.

    Rich measures the width (``COLUMNS``) and the colours once, when a console is built; :meth:`reset`
    measures again. The app does it as each command starts, so a command run in-process (typer's
    ``CliRunner`` swaps the streams and the environment) is measured as a new process would be.
    """

    def __init__(self, *, stderr: bool = False) -> None:
        super().__init__(stderr=stderr, highlight=False)

    def reset(self) -> None:
        Terminal.__init__(self, stderr=self.stderr)


out = Terminal()
err = Terminal(stderr=True)


# -- exit codes: the one place ---------------------------------------------------------------------
class ExitCode(IntEnum):
    OK = 0
    UPSTREAM = 1
    INPUT = 2


def exit_code(outcome: BaseException | CodeRecord | None = None) -> ExitCode:
    """What an outcome means for the shell.

    A record is OK when it is done (or deleted: the command did what was asked) and UPSTREAM when it
    failed or is still waiting on the upstream. Input errors (and invalid settings) are INPUT;
    every other minpcode error (upstream refusals, our own A/C quota ledger) is UPSTREAM.
    """
    if outcome is None:
        return ExitCode.OK
    if isinstance(outcome, CodeRecord):
        return ExitCode.OK if outcome.status in (Status.DONE, Status.DELETED) else ExitCode.UPSTREAM
    if isinstance(outcome, InputError | ValidationError):
        return ExitCode.INPUT
    if isinstance(outcome, MinpcodeError):
        return ExitCode.UPSTREAM
    raise TypeError(f"no exit code for {type(outcome).__name__}")


def worst(codes: Iterable[ExitCode]) -> ExitCode:
    """Several outcomes at once (bulk): bad input first, since retrying cannot fix it."""
    found = set(codes)
    for code in (ExitCode.INPUT, ExitCode.UPSTREAM):
        if code in found:
            return code
    return ExitCode.OK


# -- plumbing ----------------------------------------------------------------------------------------
class Lang(StrEnum):
    zh = "zh"
    en = "en"


def say(text: str, *, style: str | None = None, to_err: bool = False) -> None:
    (err if to_err else out).print(text, markup=False, soft_wrap=True, style=style)


_told = logging.getLogger("minpcode.cli")


def tell(settings: Settings | None, text: str, *, level: int = logging.INFO, style: str | None = None,
         to_err: bool = False) -> None:
    """:func:`say`, or with MINPCODE_LOG_FORMAT=json a log record: in that mode a pipeline reads stdout and
    stderr as JSON lines, and one plain line among them (the banner, a warning) is one it cannot read."""
    if settings is None or settings.minpcode_log_format != "json":
        say(text, style=style, to_err=to_err)
        return
    if not logs.is_setup():  # said before the command set logging up (the check every command makes first)
        logs.setup(settings.minpcode_log_level, "json", secrets=settings.secret_values())
    _told.log(level, text)


def option(field_name: str) -> str:
    return {"create_missing": "--create", "env_version": "--env", "check_path": "--no-check"}.get(
        field_name, "--" + field_name.replace("_", "-"))


def error_lines(exc: MinpcodeError, label: Callable[[str], str] = option) -> list[str]:
    """Each problem on its own lines, Chinese then English; field errors name the option."""
    if isinstance(exc, InvalidRequest):
        lines: list[str] = []
        for item in exc.errors:
            lines += [f"{label(item.field)}: {item.zh}", f"{label(item.field)}: {item.en}"]
        return lines
    if isinstance(exc, FieldError):
        return [f"{label(exc.field)}: {exc.zh}", f"{label(exc.field)}: {exc.en}"]
    if isinstance(exc, UpstreamError):
        where = "微信 WeChat" if exc.provider == "wechat" else "GrowingIO"
        return [f"{exc.zh}（{where} {exc.code}）", f"{exc.en} ({where} {exc.code})"]
    return [exc.zh, exc.en]


def report(exc: MinpcodeError, as_json: bool) -> None:
    fixable = isinstance(exc, FieldError | InvalidRequest | UsageError) and not isinstance(exc, NotConfigured)
    heading = "请修改后再试 / Please fix and try again:" if fixable else "没有完成 / Not done:"
    say(heading, style="red", to_err=True)
    for line in error_lines(exc):
        say(line, to_err=True)
    if as_json:
        errors = exc.errors if isinstance(exc, InvalidRequest) else [exc] if isinstance(exc, FieldError) else []
        payload: dict[str, Any] = {"kind": type(exc).__name__, "zh": exc.zh, "en": exc.en,
                                   "fields": [{"field": e.field, "zh": e.zh, "en": e.en} for e in errors]}
        if isinstance(exc, UpstreamError):
            payload |= {"provider": exc.provider, "code": exc.code}
        print_json_out({"ok": False, "exit_code": int(exit_code(exc)), "error": payload})


def print_json_out(data: Any) -> None:
    print_json(out, data)


def print_notices(notices: Iterable[Notice]) -> None:
    for notice in notices:
        say(notice.text("zh"), style="yellow")


def check_port(host: str, port: int, settings: Settings | None = None) -> None:
    """Refuse a port another program holds before saying "serving on" (uvicorn would fail after it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as exc:
            tell(settings, f"不能监听 {host}:{port}（{exc.strerror}）：端口可能已被占用，请停止占用它的程序或换一个 "
                 f"--port。\nCannot listen on {host}:{port} ({exc.strerror}): the port may be in use; stop the "
                 "program holding it or choose another --port.", level=logging.ERROR, style="red", to_err=True)
            raise typer.Exit(ExitCode.INPUT) from None


def say_startup(settings: Settings) -> None:
    """The mode and why, and every half-configured part or unknown variable (bot/startup.py)."""
    report = startup_report(settings)
    lines = report.lines(settings.terminal_lang)
    tell(settings, lines[0], style="bold")
    for line in lines[1:]:
        tell(settings, line, level=logging.WARNING, style="yellow", to_err=True)


def warn_old_data_dir() -> None:
    """Earlier versions kept the history in ./data: say so rather than silently start a second one.

    Said as a note when both folders hold codes (two histories someone already uses); when the chosen
    folder is empty the commands that open it refuse instead (:func:`refuse_history_elsewhere`)."""
    old = Path("data") / "minpcode.db"
    if not old.is_file():
        return
    try:
        settings = Settings()
    except ValidationError:
        return  # the command itself reports the settings
    if "minpcode_data_dir" in settings.model_fields_set:
        return  # chosen on purpose
    current = settings.minpcode_data_dir
    if current.resolve() != old.parent.resolve() and history_elsewhere(settings) is None:
        where = old.parent.resolve()
        tell(settings, f"注意：{where} 里有旧版本的历史记录，但现在的数据文件夹是 {current}。请把它移过去，或设置 "
             f"MINPCODE_DATA_DIR={where}。\nNote: {where} holds the history of an earlier version, but the data "
             f"folder is now {current}. Move it there, or set MINPCODE_DATA_DIR={where}.", level=logging.WARNING,
             style="yellow", to_err=True)


def refuse_history_elsewhere(settings: Settings) -> None:
    """Stop (exit 2, one line) a command about to open an empty default folder while an earlier version's
    history sits in ./data (bot/startup.py). Refused rather than warned: ``list`` would answer "No codes
    found" and ``create`` count the quota from 0, answers that look right and are not; a note above them
    is easy to miss, and one setting (or moving the files) makes the command work as the person expects."""
    stranded = history_elsewhere(settings)
    if stranded is not None:
        tell(settings, stranded.line(settings.terminal_lang), level=logging.ERROR, style="red", to_err=True)
        raise typer.Exit(ExitCode.INPUT)


def print_version(value: bool) -> None:
    if value:
        from bot.version import describe

        say(f"minpcode {describe()}")
        raise typer.Exit()


def fail(exc: MinpcodeError, settings: Settings | None = None) -> NoReturn:
    if settings is not None and settings.minpcode_log_format == "json":
        tell(settings, f"没有完成 / Not done: {exc.zh} / {exc.en}", level=logging.ERROR)
    else:
        say("没有完成 / Not done:", style="red", to_err=True)
        say(f"{exc.zh}\n{exc.en}", to_err=True)
    raise typer.Exit(exit_code(exc))


__all__ = ["ExitCode", "Lang", "Terminal", "check_port", "err", "error_lines", "exit_code", "fail", "option", "out",
           "print_json_out", "print_notices", "print_version", "refuse_history_elsewhere", "report", "say", "say_startup",
           "tell", "warn_old_data_dir", "worst"]
