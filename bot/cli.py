"""``minpcode``: the command line. A thin consumer of :mod:`bot.service` (docs/configuration.md).

Every command turns its options into one service call and renders the answer: rich tables for
people, ``--json`` for scripts. Outcomes become exit codes in one place, :func:`exit_code`:
0 done (or reused), 1 the upstream refused or failed, 2 bad input.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from bot import logs
from bot.config import BadSettings, Settings
from bot.errors import FieldError, InvalidRequest, MinpcodeError
from bot.models import CodeRecord, CodeRequest, CodeType, Requester, Status
from bot.ports import Announcer
from bot.server import command_logging, compose, prepare, serve_logging
from bot.service import Service, Submission
from bot.wording import describe
from handlers import cli_audit, cli_batch, cli_live, cli_reports
from handlers import poster_cli as cli_posters
from handlers.cli_output import (
    ExitCode,
    Lang,
    check_port,
    err,
    exit_code,
    fail,
    out,
    print_json_out,
    print_notices,
    print_version,
    report,
    say,
    say_startup,
    warn_old_data_dir,
)
from handlers.commands import reuse_heading
from handlers.terminal import record_json, record_table, records_table, write_image

__all__ = ["ExitCode", "app", "exit_code", "main", "record_json", "write_image"]

app = typer.Typer(
    name="minpcode",
    help="WeChat mini-program codes and GrowingIO tracking links from the terminal. "
         "微信小程序码与 GrowingIO 监测链接。",
    rich_markup_mode="markdown",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold settings: never print them
)

WAIT_SECONDS = 120.0
OutDir = Annotated[Path | None, typer.Option("--out", help="Folder for the images (default DATA_DIR/out).")]
OutFile = Annotated[Path | None, typer.Option("--out", help="Write the image here (.png, .jpg, ...).")]


def _requester() -> Requester:
    login = _settings().user or "local"
    return Requester(chat="cli", user_id=login, user_name=login)


def _settings(*needed: str) -> Settings:
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


def _run(body: Callable[[Service], Awaitable[ExitCode]], *, worker: bool = False, as_json: bool = False,
         settings: Settings | None = None, announcers: list[Announcer] | None = None) -> NoReturn:
    """Run one command against a fresh service; the worker only runs for commands that make codes."""
    settings = settings or _settings("MINPCODE_ADMINS")  # who may change whose code

    async def go() -> ExitCode:
        process = compose(settings)
        service = process.service
        if announcers is not None:
            announcers[:] = process.announcers
        try:
            if worker:
                await service.start()
            return await body(service)
        finally:
            await service.close()

    command_logging(settings)
    try:
        with logs.request_id():  # every line of one command, down to the upstream calls, shares it
            code = asyncio.run(go())
    except MinpcodeError as exc:
        report(exc, as_json)
        code = exit_code(exc)
    raise typer.Exit(int(code))


def _save_record_image(service: Service, record: CodeRecord, path: Path) -> Path:
    data, mime = service.image(record.id)
    return write_image(data, mime, path)


# -- commands ------------------------------------------------------------------------------------------
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
    shown = f"[{host}]" if ":" in host else host
    # Image links in API answers and /openapi.json name where this server listens (a wildcard is no address
    # to visit); links for people still need MINPCODE_PUBLIC_URL (Settings.people_url).
    visit = "127.0.0.1" if host in ("0.0.0.0", "::", "") else shown
    settings = settings.listening_at(f"http://{visit}:{port}")
    check_port(host, port)
    serve_logging(settings)
    application = create_app(settings)
    if settings.sandbox:
        mode = "SANDBOX 沙盒模式: built-in WeChat/GrowingIO emulators, codes are not real"
    else:
        parts = [f"WeChat {settings.wechat_appid}" if settings.wechat_configured else "",
                 f"GrowingIO {settings.gio_project_uid}" if settings.gio_configured else ""]
        mode = "LIVE 正式模式: " + ", ".join(p for p in parts if p)
    say(f"minpcode serving on http://{shown}:{port} · {mode}", style="bold")
    say_startup(settings)
    say(f"数据文件夹 Data folder: {settings.minpcode_data_dir}")
    run_server(application, host, port, settings.minpcode_stop_grace)  # SIGTERM: a graceful stop, exit 0


@app.command()
def chat(lang: Annotated[Lang, typer.Option("--lang", help="Answer in zh or en first.")] = Lang.zh) -> None:
    """The bot in the terminal: the same text commands as Slack and WeCom (new, list, show, ...).

    Reads commands until `exit`, `quit` or Ctrl-D; also reads a pipe. Example:

        echo "new pages/index/index type=B scene=id=42" | minpcode chat
    """
    from handlers.console import chat as run_chat

    settings = _settings("MINPCODE_TIMEZONE", "MINPCODE_ADMINS")
    say_startup(settings)
    try:
        code = asyncio.run(run_chat(compose(settings).service, lang=lang.value))
    except KeyboardInterrupt:
        say("\n再见 / Bye.")
        code = 130
    raise typer.Exit(code)


@app.command()
def create(
    page: Annotated[str, typer.Option("--page", help="Page path (A/C: may carry a ?query; B: no / or query).")],
    type_: Annotated[str | None, typer.Option("--type", help="A, B, C or shortlink (default A).")] = None,
    via: Annotated[str | None, typer.Option("--via", help="A/C: gio (tracking link) or wechat (plain).")] = None,
    scene: Annotated[str | None, typer.Option("--scene", help="B: 1-32 characters for the page.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Name (GrowingIO rules; made up if left out).")] = None,
    campaign: Annotated[str | None, typer.Option("--campaign", help="GrowingIO campaign, name or id.")] = None,
    channel: Annotated[str | None, typer.Option("--channel", help="GrowingIO channel, name or id.")] = None,
    medium: Annotated[str | None, typer.Option("--medium", help="utm medium.")] = None,
    content: Annotated[str | None, typer.Option("--content", help="utm content.")] = None,
    term: Annotated[str | None, typer.Option("--term", help="utm term.")] = None,
    comments: Annotated[str | None, typer.Option("--comments", help="Comments.")] = None,
    create_missing: Annotated[bool, typer.Option("--create", help="Create a missing campaign/channel.")] = False,
    width: Annotated[int | None, typer.Option("--width", help="Width in pixels, 280-1280 (default 430).")] = None,
    transparent: Annotated[bool, typer.Option("--transparent", help="Transparent background (A/B).")] = False,
    title: Annotated[str | None, typer.Option("--title", help="Short Link page title; with --poster the poster's.")] = None,
    permanent: Annotated[bool, typer.Option("--permanent", help="Permanent Short Link.")] = False,
    env: Annotated[str | None, typer.Option("--env", help="A/B: release, trial or develop (default release).")] = None,
    no_check: Annotated[bool, typer.Option("--no-check", help="B: skip the released-page check.")] = False,
    long_scene: Annotated[bool, typer.Option("--long-scene",
                                             help="B: store a scene that does not fit; the code carries k=<key>.")] = False,
    live: Annotated[bool, typer.Option("--live", help="A live code (活码): --page is where it leads, changeable later.")] = False,
    expires: Annotated[str | None, typer.Option("--expires", help="A live code's last day, YYYY-MM-DD.")] = None,
    out_file: OutFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
    poster: Annotated[str | None, typer.Option("--poster", help="Also make a poster: a4, a5-tent, ... (see posters).")] = None,
    subtitle: cli_posters.Subtitle = None,
    footer: cli_posters.Footer = None,
    logo: cli_posters.Logo = None,
    sharper: cli_posters.Sharper = False,
) -> None:
    """Make one code, or reuse the identical one made before (no quota spent).

    Example:

        minpcode create --page pages/index/index --type B --scene id=42 --out code.png
    """
    fields: dict[str, Any] = {
        "page": page, "type": type_, "via": via, "scene": scene, "name": name, "campaign": campaign,
        "channel": channel, "medium": medium, "content": content, "term": term, "comments": comments,
        "create_missing": create_missing, "width": width, "transparent": transparent, "title": title,
        "permanent": permanent, "env_version": env, "check_path": False if no_check else None,
        "live": live or None, "expires": expires,
    }
    fields = {k: v for k, v in fields.items() if v is not None}
    requester = _requester()

    async def body(service: Service) -> ExitCode:
        if poster is not None:
            fields.pop("title", None)
            asked = cli_posters.poster_fields(poster, title, subtitle, footer, out_file)
            return ExitCode(await cli_posters.create_poster(_posters, service, fields, asked, logo, sharper, out_file,
                                                            as_json))
        if subtitle or footer or logo or sharper:
            raise FieldError("poster", "--subtitle、--footer、--logo、--sharper 是海报的选项，请同时给出 --poster。",
                             "--subtitle, --footer, --logo and --sharper belong to a poster; add --poster.")
        if out_file is not None:
            _check_has_image(fields)
        submission = await service.submit(fields, requester, timeout=WAIT_SECONDS, long_scene=long_scene)
        return _show_submission(service, submission, out_file, as_json)

    _run(body, worker=True, as_json=as_json)


def _check_has_image(fields: dict[str, Any]) -> None:
    try:
        kind = CodeRequest.parse(fields).type
    except InvalidRequest:
        return  # the service reports every field problem in one go
    if kind is CodeType.SHORTLINK:
        raise FieldError("out", "短链没有图片，请去掉 --out。", "A Short Link has no image; leave out --out.")


def _show_submission(service: Service, submission: Submission, out_file: Path | None, as_json: bool) -> ExitCode:
    record = submission.record
    written = None
    if out_file is not None and record.status is Status.DONE and record.image_sha256:
        written = _save_record_image(service, record, out_file)
    code = exit_code(record)
    if as_json:
        data = record_json(record, service.settings, service.live_totals([record]).get(record.id)) | {
            "reused": submission.reused, "original_by": submission.original_by,
            "notices": [n.model_dump() for n in submission.notices],
            "out": str(written) if written else None,
        }
        print_json_out(data)
        return code
    if record.status is Status.DONE and submission.reused:
        say("\n".join(reuse_heading(submission)), style="green")
    elif record.status is Status.DONE:
        say("码已生成。\nYour code is ready.", style="green")
    elif record.status is Status.PENDING:
        say("还在生成中，稍后用 minpcode show 查看。\nStill working on it; check again with minpcode show.",
             style="yellow")
    else:
        say("生成失败。\nCould not make the code.", style="red")
    out.print(record_table(record, service.settings))
    cli_live.print_live(service, record, say)
    print_notices(submission.notices)
    if written is not None:
        say(f"图片已保存到 Image saved to: {written}")
    return code


@app.command("list")
def list_codes(
    query: Annotated[str | None, typer.Option("--query", "-q", help="Match names, pages, scenes, ...")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the records as JSON.")] = False,
) -> None:
    """List codes, newest first, optionally matching a query.

    Example:

        minpcode list --query spring --limit 5
    """
    async def body(service: Service) -> ExitCode:
        records = service.recent(_requester(), query=query, limit=limit)
        if as_json:
            live = service.live_totals(records)
            print_json_out([record_json(r, service.settings, live.get(r.id)) for r in records])
            return ExitCode.OK
        if not records:
            say("没有找到码。/ No codes found.")
            return ExitCode.OK
        out.print(records_table(records, service.settings.zone))
        return ExitCode.OK

    _run(body, as_json=as_json)


@app.command()
def show(
    code_id: Annotated[str, typer.Argument(metavar="ID", help="The code's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
    out_file: OutFile = None,
) -> None:
    """Show one code, and write its image with --out.

    Example:

        minpcode show 3k9x2m7q1abc --out code.png
    """

    async def body(service: Service) -> ExitCode:
        record = service.get(code_id)
        written = _save_record_image(service, record, out_file) if out_file is not None else None
        if as_json:
            view = service.live_view(record)
            print_json_out(record_json(record, service.settings, service.live_totals([record]).get(record.id))
                        | {"out": str(written) if written else None}
                        | ({"live_code": view.model_dump(mode="json")} if view else {}))
        else:
            out.print(record_table(record, service.settings))
            cli_live.print_live(service, record, say)
            cli_audit.print_history(service, record.id, out, say)
            if written is not None:
                say(f"图片已保存到 Image saved to: {written}")
        return ExitCode.OK

    _run(body, as_json=as_json)


@app.command()
def rename(
    code_id: Annotated[str, typer.Argument(metavar="ID", help="The code's id.")],
    name: Annotated[str, typer.Argument(metavar="NAME", help="The new name (GrowingIO rules).")],
) -> None:
    """Rename a code (its creator or an admin).

    Example:

        minpcode rename 3k9x2m7q1abc 春季活动-海报
    """

    async def body(service: Service) -> ExitCode:
        record = service.rename(code_id, name, _requester())
        say(f"已改名为「{record.name}」。\nRenamed to '{record.name}'.", style="green")
        return ExitCode.OK

    _run(body)


@app.command()
def delete(code_id: Annotated[str, typer.Argument(metavar="ID", help="The code's id.")]) -> None:
    """Delete a code from the list (its creator or an admin). Printed codes keep working.

    Example:

        minpcode delete 3k9x2m7q1abc
    """

    async def body(service: Service) -> ExitCode:
        record = service.delete(code_id, _requester())
        say(f"已删除 {record.id}。已经印出或发出的码仍然可以扫码使用，GrowingIO 也会继续统计。\n"
             f"Deleted {record.id}. Codes already printed or shared keep working, and GrowingIO keeps "
             "counting their scans.", style="green")
        return ExitCode.OK

    _run(body)


cli_reports.register(app, run=_run, settings=_settings)


# -- operations (issue 17): version, logging, backups, migrations -------------------------------------------
@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=print_version, is_eager=True,
                                                help="Print the version and exit. 显示版本。")] = False) -> None:
    """WeChat mini-program codes and GrowingIO tracking links from the terminal."""
    warn_old_data_dir()


DataDirOption = Annotated[Path | None, typer.Option("--data-dir", help="Data folder (default MINPCODE_DATA_DIR).")]


@app.command("backup")
def backup_command(path: Annotated[Path, typer.Argument(metavar="PATH", help="The archive to write (.tar.gz).")],
                   data_dir: DataDirOption = None) -> None:
    """Write the whole history (database and images) to one archive; safe while `minpcode serve` runs.

        minpcode backup /backups/minpcode-$(date +%F).tar.gz
    """
    from storage.backup import BackupError, backup

    try:
        report = backup(data_dir or _settings().minpcode_data_dir, path)
    except BackupError as exc:
        fail(exc)
    codes = report.tables.get("codes", 0)
    say(f"备份已写入 {report.path}（{codes} 个码，{len(report.files)} 个其他文件，{report.size} 字节）\n"
         f"Backup written to {report.path} ({codes} codes, {len(report.files)} other files, {report.size} bytes)")


@app.command("restore")
def restore_command(path: Annotated[Path, typer.Argument(metavar="PATH", help="An archive from `minpcode backup`.")],
                    data_dir: DataDirOption = None) -> None:
    """Restore a backup into an empty data folder, then check it (integrity and row counts).

        MINPCODE_DATA_DIR=/srv/minpcode minpcode restore minpcode-2026-12-01.tar.gz
    """
    from storage.backup import BackupError, restore

    target = data_dir or _settings().minpcode_data_dir
    try:
        report = restore(path, target)
    except BackupError as exc:
        fail(exc)
    codes = report.tables.get("codes", 0)
    say(f"已恢复到 {target}，检查通过（{codes} 个码）。\nRestored into {target} and checked ({codes} codes).")


@app.command("migrate")
def migrate_command(check: Annotated[bool, typer.Option("--check", help="Only say what would run.")] = False,
                    data_dir: DataDirOption = None) -> None:
    """Apply the database migrations (serve and every command do it at start); `--check` only lists them."""
    from storage import Storage
    from storage.db import pending_migrations

    folder = data_dir or _settings().minpcode_data_dir
    todo = pending_migrations(folder)
    for name, changes in todo:
        note = "  (changes existing tables: a backup is made first 会先自动备份)" if changes else ""
        say(f"  {name}{note}")
    if not todo:
        say(f"数据库已是最新 / The database in {folder} is up to date.")
    elif check:
        say(f"{len(todo)} 个迁移待执行 / {len(todo)} migrations would run in {folder}.")
    else:
        Storage.open(folder).close()
        say(f"已执行 {len(todo)} 个迁移 / {len(todo)} migrations applied in {folder}.")


@app.command("doctor")
def doctor_command(as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False) -> None:
    """Check every configured part live (read-only: no quota spent, nothing posted); exit 1 if one fails.

        minpcode doctor            # one table: part, check, result, what to fix
    """
    from bot import doctor
    from bot.server import preflights
    from handlers.terminal import doctor_table

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


cli_live.register(app, run=_run, requester=_requester, print_json=print_json_out, say=say)
cli_audit.register(app, run=_run, print_json=print_json_out, say=say, out=out)
cli_batch.register(app, run=_run, requester=_requester, data_dir=lambda: _settings().minpcode_data_dir,
                   print_json=print_json_out, say=say, out=out, err=err)
_posters = cli_posters.Plumbing(run=_run, requester=_requester, out=out, err=err)
cli_posters.register(app, _posters)


def main() -> None:
    """The ``minpcode`` console script (also ``python -m bot``)."""
    app(prog_name="minpcode")


if __name__ == "__main__":  # pragma: no cover
    main()
