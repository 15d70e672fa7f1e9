"""``minpcode``: the process side of the command line (docs/configuration.md).

The commands people run on codes are front-end code in handlers/cli/; this module wires them to the
process (how a command opens its service: :func:`bot.server.compose`, with the sandbox when credentials
are absent) and keeps the commands that run the process itself: serve, chat, backup, restore, migrate
and doctor.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError

from bot.config import Settings
from bot.errors import MinpcodeError
from bot.server import command_logging, compose, prepare, serve_logging
from handlers.cli import Cli, Wiring, add_groups, new_app
from handlers.cli.output import (
    ExitCode,
    Lang,
    check_port,
    fail,
    out,
    print_json_out,
    refuse_history_elsewhere,
    say,
    say_startup,
    tell,
)

__all__ = ["app", "main"]

_cli = Cli(Wiring(open=compose, logging=command_logging))
_settings = _cli.settings
app = new_app()


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 3000,
) -> None:
    """Run the bot: Slack, WeCom callback, HTTP API and scheduler in one process.

    Example:

        minpcode serve --host 0.0.0.0 --port 3000
    """
    from bot.server import create_app, run_server

    settings = _settings("*")
    # First, so that with MINPCODE_LOG_FORMAT=json every line below (refusals too) is a JSON line.
    serve_logging(settings)
    refuse_history_elsewhere(settings)  # else it would serve an empty history and count the quota from 0
    shown = f"[{host}]" if ":" in host else host
    # Image links in API answers and /openapi.json name where this server listens (a wildcard is no address
    # to visit); links for people still need MINPCODE_PUBLIC_URL (Settings.people_url).
    visit = "127.0.0.1" if host in ("0.0.0.0", "::", "") else shown
    settings = settings.listening_at(f"http://{visit}:{port}")
    check_port(host, port, settings)
    try:
        application = create_app(settings)
    except MinpcodeError as exc:  # an unreadable database: one message, not a traceback
        fail(exc, settings)
    if settings.sandbox:
        mode = "SANDBOX 沙盒模式: built-in WeChat/GrowingIO emulators, codes are not real"
    else:
        parts = [f"WeChat {settings.wechat_appid}" if settings.wechat_configured else "",
                 f"GrowingIO {settings.gio_project_uid}" if settings.gio_configured else ""]
        mode = "LIVE 正式模式: " + ", ".join(p for p in parts if p)
    tell(settings, f"minpcode serving on http://{shown}:{port} · {mode}", style="bold")
    say_startup(settings)
    tell(settings, f"数据文件夹 Data folder: {settings.minpcode_data_dir}")
    run_server(application, host, port, settings.minpcode_stop_grace,  # SIGTERM: a graceful stop, exit 0
               settings.minpcode_trusted_proxies)


@app.command()
def chat(lang: Annotated[Lang, typer.Option("--lang", help="Answer in zh or en first.")] = Lang.zh) -> None:
    """The bot in the terminal: the same text commands as Slack and WeCom (new, list, show, ...).

    Reads commands until `exit`, `quit` or Ctrl-D; also reads a pipe. Example:

        echo "new pages/index/index type=B scene=id=42" | minpcode chat
    """
    from handlers.console import chat as run_chat

    settings = _settings("MINPCODE_TIMEZONE", "MINPCODE_ADMINS")
    refuse_history_elsewhere(settings)
    say_startup(settings)
    try:
        service = compose(settings).service
    except MinpcodeError as exc:
        fail(exc)
    try:
        code = asyncio.run(run_chat(service, lang=lang.value))
    except KeyboardInterrupt:
        say("\n再见 / Bye.")
        code = 130
    raise typer.Exit(code)


add_groups(app, _cli)


# -- operations (issue 17): backups, migrations, the live check --------------------------------------------
DataDirOption = Annotated[Path | None, typer.Option("--data-dir", help="Data folder (default MINPCODE_DATA_DIR).")]


@app.command("backup")
def backup_command(path: Annotated[Path, typer.Argument(metavar="PATH", help="The archive to write (.tar.gz).")],
                   data_dir: DataDirOption = None,
                   force: Annotated[bool, typer.Option("--force", help="Replace PATH if it exists.")] = False) -> None:
    """Write the whole history (database and images) to one archive; safe while `minpcode serve` runs.
    An existing PATH is kept unless `--force` (it may be the only good backup).

        minpcode backup /backups/minpcode-$(date +%F).tar.gz
    """
    from storage.backup import BackupError, BackupExists, UsePostgresTools, backup

    if data_dir is None and _settings().database_url:
        fail(UsePostgresTools())
    if path.exists() and not force:  # before the copy: refused at once, not after minutes of work
        _refuse_existing(path)
    if data_dir is None:
        refuse_history_elsewhere(_settings())  # a backup of the empty folder would look like one of the history
    try:
        report = backup(data_dir or _settings().minpcode_data_dir, path, replace=force)
    except BackupExists:  # written meanwhile by someone else
        _refuse_existing(path)
    except BackupError as exc:
        fail(exc)
    codes = report.tables.get("codes", 0)
    say(f"备份已写入 {report.path}（{codes} 个码，{len(report.files)} 个其他文件，{report.size} 字节）\n"
         f"Backup written to {report.path} ({codes} codes, {len(report.files)} other files, {report.size} bytes)")


def _refuse_existing(path: Path) -> NoReturn:
    say(f"{path} 已存在，没有覆盖；要替换它请加 --force。 / {path} exists already and was kept; "
        "add --force to replace it.", to_err=True)
    raise typer.Exit(ExitCode.INPUT)


@app.command("restore")
def restore_command(path: Annotated[Path, typer.Argument(metavar="PATH", help="An archive from `minpcode backup`.")],
                    data_dir: DataDirOption = None) -> None:
    """Restore a backup into an empty data folder, then check it (integrity and row counts).

        MINPCODE_DATA_DIR=/srv/minpcode minpcode restore minpcode-2026-12-01.tar.gz
    """
    from storage.backup import BackupError, UsePostgresTools, restore

    if data_dir is None and _settings().database_url:
        fail(UsePostgresTools())
    target = data_dir or _settings().minpcode_data_dir
    try:
        report = restore(path, target)
    except BackupError as exc:
        fail(exc)
    codes = report.tables.get("codes", 0)
    say(f"已恢复到 {target}，检查通过（{codes} 个码）。\nRestored into {target} and checked ({codes} codes).")


@app.command("migrate")
def migrate_command(check: Annotated[bool, typer.Option("--check", help="Only say what would run; exit 1 if any would.")] = False,
                    as_json: Annotated[bool, typer.Option("--json", help="Print the migrations as JSON.")] = False,
                    data_dir: DataDirOption = None) -> None:
    """Apply the database migrations (serve and every command do it at start). `--check` changes nothing: it
    lists them and exits 1 when any would run (a deploy gate), 0 when the database is up to date."""
    from storage import Storage
    from storage.db import pending_migrations

    if data_dir is None:
        refuse_history_elsewhere(_settings())
    folder = data_dir or _settings().minpcode_data_dir
    url = None if data_dir is not None else _settings().database_url
    where = "PostgreSQL (MINPCODE_DATABASE_URL)" if url else str(folder)
    try:
        todo = pending_migrations(folder, url)
    except MinpcodeError as exc:
        fail(exc)
    if todo and not check:
        try:
            Storage.open(folder, url, migrate=_settings().minpcode_migrate).close()
        except MinpcodeError as exc:
            fail(exc)
    if as_json:
        print_json_out([{"name": name, "changes_existing_tables": changes} for name, changes in todo])
    else:
        for name, changes in todo:
            note = "  (changes existing tables: a backup is made first 会先自动备份)" if changes else ""
            if changes and url:
                note = "  (changes existing tables: pg_dump first, then MINPCODE_MIGRATE=yes 需先备份)"
            say(f"  {name}{note}")
    if not todo:
        say(f"数据库已是最新 / The database in {where} is up to date.", to_err=as_json)
    elif check:
        say(f"{len(todo)} 个迁移待执行 / {len(todo)} migrations would run in {where}.", to_err=as_json)
        raise typer.Exit(1)  # something would change: the deploy is not done until it has run
    else:
        say(f"已执行 {len(todo)} 个迁移 / {len(todo)} migrations applied in {where}.", to_err=as_json)


db_app = typer.Typer(help="The database: move a SQLite history into PostgreSQL.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("copy")
def db_copy_command(
        to: Annotated[str, typer.Option("--to", metavar="postgresql://…", help="The PostgreSQL database to fill.")],
        force: Annotated[bool, typer.Option("--force", help="Replace what the target already holds.")] = False,
        data_dir: DataDirOption = None) -> None:
    """Copy the SQLite history (every table, images included) into PostgreSQL, then check the counts.

        minpcode db copy --to postgresql://minpcode:…@db.internal:5432/minpcode
    """
    from storage.copy import copy_to_postgres

    if data_dir is None:
        refuse_history_elsewhere(_settings())
    folder = data_dir or _settings().minpcode_data_dir
    try:
        report = copy_to_postgres(folder, to, force=force)
    except MinpcodeError as exc:
        fail(exc)
    for table, rows in report.tables.items():
        say(f"  {table:<18} {rows}")
    codes, images = report.tables.get("codes", 0), report.tables.get("images", 0)
    say(f"已复制到 PostgreSQL，两边行数一致（{codes} 个码，{images} 张图）。把 MINPCODE_DATABASE_URL 设成它再启动。\n"
        f"Copied into PostgreSQL; every table's count matches ({codes} codes, {images} images). "
        "Set MINPCODE_DATABASE_URL to it and start again.")


@app.command("doctor")
def doctor_command(as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False) -> None:
    """Check every configured part live (read-only: no quota spent, nothing posted); exit 1 if one fails.

        minpcode doctor            # one table: part, check, result, what to fix
    """
    from bot import doctor
    from bot.server import preflights
    from handlers.cli.terminal import doctor_table

    try:
        settings = Settings()
    except ValidationError as exc:
        rows = doctor.unparsed(exc)
        lang = "en"
    else:
        command_logging(settings)
        prepare(settings)
        rows = asyncio.run(doctor.diagnose(preflights(settings)))
        lang = settings.terminal_lang
        say(f"数据文件夹 Data folder: {settings.minpcode_data_dir}", to_err=as_json)
    if as_json:
        print_json_out(doctor.rows_json(rows))
    else:
        out.print(doctor_table(rows, lang))
    raise typer.Exit(doctor.exit_status(rows))


def main() -> None:
    """The ``minpcode`` console script (also ``python -m bot``)."""
    app(prog_name="minpcode")


if __name__ == "__main__":  # pragma: no cover
    main()
