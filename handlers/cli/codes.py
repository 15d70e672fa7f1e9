"""The CLI's code commands: ``create``, ``list``, ``show``, ``rename`` and ``delete``.

Every command turns its options into one service call and renders the answer: rich tables for
people, ``--json`` for scripts. Outcomes become exit codes in one place, :func:`exit_code`:
0 done (or reused), 1 the upstream refused or failed, 2 bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bot.codes import Submission
from bot.errors import FieldError, InvalidRequest
from bot.models import TYPE_WORDS, CodeRecord, CodeRequest, Status
from bot.service import Service
from handlers.cli import audit as cli_audit
from handlers.cli import live as cli_live
from handlers.cli import posters as cli_posters
from handlers.cli.app import Cli
from handlers.cli.output import ExitCode, exit_code, out, print_json_out, print_notices, say
from handlers.cli.terminal import record_json, record_table, records_table, write_image
from handlers.commands import reuse_heading
from handlers.render import deleted_text

WAIT_SECONDS = 120.0
OutFile = Annotated[Path | None, typer.Option("--out", help="Write the image here (.png, .jpg, ...).")]


def _save_record_image(service: Service, record: CodeRecord, path: Path) -> Path:
    data, mime = service.image(record.id)
    return write_image(data, mime, path)


def register(app: typer.Typer, cli: Cli) -> None:
    _run, _requester = cli.run, cli.requester
    _posters = cli_posters.plumbing(cli)

    @app.command()
    def create(
        page: Annotated[str | None, typer.Option("--page", help="Page path (A/C, links: may carry a ?query; B: no query; a leading / is dropped). "
                                                             "Required, except with --live: then a blank code (空码), bound later with repoint.")] = None,
        type_: Annotated[str | None, typer.Option(
            "--type", help="A, B, C, shortlink (opens inside WeChat), urllink or scheme (open from SMS, email, web "
                           "pages) (default A).")] = None,
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
        permanent: Annotated[bool, typer.Option("--permanent", help="Permanent Short Link (100,000 ever; else it lasts 30 days).")] = False,
        plain: Annotated[bool, typer.Option("--plain", help="scheme: the plain-text URL Scheme (no API call, never "
                                                           "expires; needs MINPCODE_PLAIN_SCHEME=1).")] = False,
        expire_days: Annotated[int | None, typer.Option("--expire-days", help="urllink/scheme: days it stays valid, "
                                                                              "1-30 (default 30).")] = None,
        env: Annotated[str | None, typer.Option("--env", help="A/B, urllink/scheme: release, trial or develop (default release).")] = None,
        no_check: Annotated[bool, typer.Option("--no-check", help="B: skip the released-page check (WeChat allows it for at most 60,000 pages).")] = False,
        long_scene: Annotated[bool, typer.Option("--long-scene",
                                                 help="B: store a scene that does not fit; the code carries k=<key>.")] = False,
        live: Annotated[bool, typer.Option("--live", help="A live code (活码): --page is where it leads, changeable later; "
                                                         "without --page a blank code that opens the fallback page until bound.")] = False,
        tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeat, or commas: --tag 门店,春节).")] = None,
        expires: Annotated[str | None, typer.Option("--expires", help="A live code's last day, YYYY-MM-DD.")] = None,
        out_file: OutFile = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
        poster: Annotated[str | None, typer.Option("--poster", help="Also make a poster: a4, a5-tent, ... (see posters).")] = None,
        subtitle: cli_posters.Subtitle = None,
        footer: cli_posters.Footer = None,
        logo: cli_posters.Logo = None,
        sharper: cli_posters.Sharper = None,
    ) -> None:
        """Make one code, or reuse the identical one made before (no quota spent).

        Example:

            minpcode create --page pages/index/index --type B --scene id=42 --out code.png
            minpcode create --live --name 上海门店-001 --tag 门店
        """
        if page is None and not live:
            raise typer.BadParameter("请给出 --page（只有 --live 空码可以不给）。 Give --page (only a blank --live code goes "
                                     "without one).", param_hint="--page")
        fields: dict[str, Any] = {
            "page": page, "type": type_, "via": via, "scene": scene, "name": name, "campaign": campaign,
            "channel": channel, "medium": medium, "content": content, "term": term, "comments": comments,
            "create_missing": create_missing, "width": width, "transparent": transparent, "title": title,
            "permanent": permanent, "env_version": env, "check_path": False if no_check else None,
            "plain": plain or None, "expire_days": expire_days,
            "live": live or None, "expires": expires, "tags": tag or None,
        }
        fields = {k: v for k, v in fields.items() if v is not None}
        requester = _requester()

        async def body(service: Service) -> ExitCode:
            if poster is not None:
                fields.pop("title", None)
                asked = cli_posters.poster_fields(poster, title, subtitle, footer, out_file)
                return ExitCode(await cli_posters.create_poster(_posters, service, fields, asked, logo, sharper, out_file,
                                                                as_json, long_scene=long_scene))
            if subtitle or footer or logo or sharper is not None:
                raise FieldError("poster", "--subtitle、--footer、--logo、--sharper/--no-sharper 是海报的选项，请同时给出 --poster。",
                                 "--subtitle, --footer, --logo and --sharper/--no-sharper belong to a poster; add --poster.")
            if out_file is not None:
                _check_has_image(fields)
            submission = await service.submit(fields, requester, timeout=WAIT_SECONDS, long_scene=long_scene)
            return _show_submission(service, submission, out_file, as_json)

        _run(body, worker=True, as_json=as_json)

    @app.command("list")
    def list_codes(
        query: Annotated[str | None, typer.Option("--query", "-q", help="Match names, pages, scenes, ...")] = None,
        tag: Annotated[str | None, typer.Option("--tag", help="Only codes carrying this tag.")] = None,
        limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many, newest first.")] = 20,
        as_json: Annotated[bool, typer.Option("--json", help="Print the records as JSON.")] = False,
    ) -> None:
        """List codes, newest first, optionally matching a query.

        Example:

            minpcode list --query spring --limit 5
        """
        async def body(service: Service) -> ExitCode:
            records = service.recent(_requester(), query=query, limit=limit, tag=tag)
            if as_json:
                live = service.live.totals(records)
                print_json_out([record_json(r, service.settings, live.get(r.id)) for r in records])
                return ExitCode.OK
            if not records:
                say("没有找到码。/ No codes found.")
                return ExitCode.OK
            out.print(records_table(records, service.settings.zone, service.live.totals(records)))
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
                view = service.live.view(record)
                print_json_out(record_json(record, service.settings, service.live.totals([record]).get(record.id))
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
            said = deleted_text(record)
            say(f"{said.zh}\n{said.en}", style="green")
            return ExitCode.OK

        _run(body)


def _check_has_image(fields: dict[str, Any]) -> None:
    try:
        kind = CodeRequest.parse(fields).type
    except InvalidRequest:
        return  # the service reports every field problem in one go
    if kind.is_link:
        zh, en = TYPE_WORDS[kind]
        raise FieldError("out", f"{zh}没有图片，请去掉 --out。", f"{en[0].upper() + en[1:]} has no image; leave out --out.")


def _show_submission(service: Service, submission: Submission, out_file: Path | None, as_json: bool) -> ExitCode:
    record = submission.record
    written = None
    if out_file is not None and record.status is Status.DONE and record.image_sha256:
        written = _save_record_image(service, record, out_file)
    code = exit_code(record)
    if as_json:
        data = record_json(record, service.settings, service.live.totals([record]).get(record.id)) | {
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


__all__ = ["WAIT_SECONDS", "register"]
