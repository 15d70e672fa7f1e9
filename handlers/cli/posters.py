"""The CLI's poster commands: posters of codes, the template list, and the admin's team templates and
default logo.

    minpcode create … --poster a4 [--title T] [--subtitle S] [--footer F] [--logo FILE] [--sharper] --out FILE.pdf
    minpcode poster ID --template a4 [--title …] [--format png|pdf] [--out FILE.png|FILE.pdf]
    minpcode posters [--json]
    minpcode poster-template add NAME LAYOUT.json [--background FILE]   |   poster-template remove NAME
    minpcode poster-logo set FILE   |   poster-logo clear

The file name's extension picks the format. Exit codes as everywhere: 0 done, 1 upstream, 2 bad input
(a poster that would need a sharper A/C copy without ``--sharper`` is bad input: nothing is spent).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from bot.errors import InvalidRequest
from bot.models import Requester, Status
from bot.posters import SharperCopyNeeded, format_for_path
from bot.posters.service import PosterMade
from bot.service import Service
from handlers.cli.app import Cli
from handlers.cli.output import ExitCode, err, out
from handlers.cli.terminal import print_json, record_json, record_table, table

Body = Callable[[Service], Awaitable[int]]
INPUT = ExitCode.INPUT


@dataclass(frozen=True)
class Plumbing:
    """What these commands run on: the CLI's plumbing (handlers/cli/app.py) and its consoles."""

    run: Callable[..., NoReturn]  # Cli.run(body, worker=…, as_json=…)
    requester: Callable[[], Requester]
    out: Console
    err: Console


def plumbing(cli: Cli) -> Plumbing:
    return Plumbing(run=cli.run, requester=cli.requester, out=out, err=err)


Template = Annotated[str, typer.Option("--template", "-t", help="a4, a5-tent, sticker-60, moments or a team template.")]
Title = Annotated[str | None, typer.Option("--title", help="The poster's title (placeholders: {name} {campaign} …).")]
Subtitle = Annotated[str | None, typer.Option("--subtitle", help="The poster's subtitle.")]
Footer = Annotated[str | None, typer.Option("--footer", help="The poster's footer line, e.g. {name}.")]
Logo = Annotated[Path | None, typer.Option("--logo", exists=True, dir_okay=False, help="A PNG, JPEG or SVG logo for the code's centre.")]
Sharper = Annotated[bool | None, typer.Option("--sharper/--no-sharper", help="Spend one A/C code on a sharper copy "
                                               "when the stored image is too small, or print the current image.")]
PosterOut = Annotated[Path | None, typer.Option("--out", help="Write the poster here; .png or .pdf picks the format.")]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def poster_fields(template: str, title: str | None, subtitle: str | None, footer: str | None,
                  out_file: Path | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"template": template, "title": title, "subtitle": subtitle, "footer": footer}
    if out_file is not None:
        fields["format"] = format_for_path(out_file.name)
    return {k: v for k, v in fields.items() if v is not None}


def _say(console: Console, text: str, style: str | None = None) -> None:
    console.print(text, markup=False, soft_wrap=True, style=style)


def _refused(p: Plumbing, exc: SharperCopyNeeded, as_json: bool) -> int:
    _say(p.err, exc.zh + "生成清晰版请加 --sharper，用现在的图片印请加 --no-sharper。", "red")
    _say(p.err, exc.en + " Add --sharper for the sharper copy, or --no-sharper to print the current image.")
    if as_json:
        print_json(p.out, {"ok": False, "exit_code": INPUT, "error": {
            "kind": "SharperCopyNeeded", "zh": exc.zh, "en": exc.en, "width": exc.width, "image_dpi": exc.image_dpi}})
    return INPUT


def _write(service: Service, made: PosterMade, out_file: Path | None) -> Path:
    path = out_file or service.settings.minpcode_data_dir / "out" / made.info.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(made.data)
    return path


def _show(p: Plumbing, service: Service, made: PosterMade, path: Path, as_json: bool,
          extra: dict[str, Any] | None = None) -> int:
    if as_json:
        print_json(p.out, record_json(made.record, service.settings) | (extra or {}) | {
            "poster": made.info.model_dump(mode="json") | {"out": str(path), "reused": made.reused},
            "sharper_copy": made.sharper_copy.id if made.sharper_copy else None,
            "notices": [n.model_dump() for n in made.notices]})
        return 0
    _say(p.out, ("海报已做好（之前做过，直接取用）：" if made.reused else "海报已做好：") + made.text("zh"), "green")
    _say(p.out, ("Your poster is ready (made before): " if made.reused else "Your poster is ready: ") + made.text("en"))
    for notice in made.notices:
        _say(p.out, notice.text("zh"), "yellow")
    _say(p.out, f"海报已保存到 Poster saved to: {path}")
    return 0


async def create_poster(p: Plumbing, service: Service, fields: dict[str, Any], poster: dict[str, Any],
                        logo: Path | None, sharper: bool | None, out_file: Path | None, as_json: bool, *,
                        long_scene: bool = False) -> int:
    """``create … --poster``: the code (at the width the template needs), then its poster."""
    both = await service.posters.for_new(fields, poster, p.requester(), sharper=sharper,
                                         logo=logo.read_bytes() if logo else None, long_scene=long_scene)
    submission = both.submission
    record = submission.record
    if both.poster is None:
        if not as_json:
            p.out.print(record_table(record, service.settings))
        if isinstance(both.poster_error, SharperCopyNeeded):
            return _refused(p, both.poster_error, as_json)
        if both.poster_error is not None:
            raise both.poster_error
        _say(p.err, "码没有生成，所以没有海报。\nThe code was not made, so there is no poster.", "red")
        return 0 if record.status is Status.DONE else 1
    if not as_json:
        p.out.print(record_table(record, service.settings))
    path = _write(service, both.poster, out_file)
    return _show(p, service, both.poster, path, as_json, {"reused": submission.reused})


def register(app: typer.Typer, cli: Cli) -> None:
    """Add ``poster``, ``posters``, ``poster-template`` and ``poster-logo`` to the CLI."""
    p = plumbing(cli)

    def run(body: Body, *, worker: bool = False, as_json: bool = False) -> NoReturn:
        async def guarded(service: Service) -> int:
            try:
                return await body(service)
            except SharperCopyNeeded as exc:
                return _refused(p, exc, as_json)
        p.run(guarded, worker=worker, as_json=as_json)

    @app.command("poster")
    def poster(code_id: Annotated[str, typer.Argument(metavar="ID", help="The code's id.")], template: Template = "a4",
               title: Title = None, subtitle: Subtitle = None, footer: Footer = None, logo: Logo = None,
               sharper: Sharper = None, out_file: PosterOut = None, as_json: Json = False) -> None:
        """A print-ready poster of an existing code (served from the store when made before).

            minpcode poster q3x8abcd1234 --template a4 --title 春季大促 --footer "{name}" --out poster.pdf
        """
        async def body(service: Service) -> int:
            fields = poster_fields(template, title, subtitle, footer, out_file)
            made = await service.posters.make(code_id, fields, p.requester(), sharper=sharper,
                                              logo=logo.read_bytes() if logo else None)
            return _show(p, service, made, _write(service, made, out_file), as_json)
        run(body, worker=True, as_json=as_json)

    @app.command("posters")
    def posters(as_json: Json = False) -> None:
        """The poster templates, built-in and the team's, with their sizes."""
        async def body(service: Service) -> int:
            rows = service.posters.templates()
            if as_json:
                print_json(p.out, [{"name": t.name, "team": t.team, "kind": t.kind, "size": t.size_text(),
                                    "pixels": list(t.pixel_size()), "dpi": t.dpi} for t in rows])
                return 0
            shown = table("模板 Template", "名称 Label", "尺寸 Size", "来源 Source")
            for t in rows:
                label = " / ".join(x for x in (t.label_zh, t.label_en) if x) or "-"
                shown.add_row(t.name, label, t.size_text(), "团队 team" if t.team else "内置 built-in")
            p.out.print(shown)
            return 0
        run(body)

    templates = typer.Typer(help="Team poster templates (admins): a background image plus a JSON layout.",
                            no_args_is_help=True)
    logos = typer.Typer(help="The team's default poster logo (admins).", no_args_is_help=True)
    app.add_typer(templates, name="poster-template")
    app.add_typer(logos, name="poster-logo")

    @templates.command("add")
    def add(name: Annotated[str, typer.Argument(metavar="NAME", help="lowercase letters, digits, - and _")],
            layout: Annotated[Path, typer.Argument(metavar="LAYOUT.json", exists=True, dir_okay=False)],
            background: Annotated[Path | None, typer.Option("--background", exists=True, dir_okay=False,
                                                           help="PNG/JPEG artwork in the page's proportions.")] = None,
            ) -> None:
        """Add (or replace) a team template; every problem of the layout file is named."""
        async def body(service: Service) -> int:
            try:
                made = await service.posters.add_template(
                    name, layout.read_bytes(), background.read_bytes() if background else None, p.requester())
            except InvalidRequest as exc:  # each problem already says where in the layout it is
                _say(p.err, "请修改后再试 / Please fix and try again:", "red")
                for e in exc.errors:
                    _say(p.err, f"{layout.name}: {e.zh}")
                    _say(p.err, f"{layout.name}: {e.en}")
                return INPUT
            _say(p.out, f"团队模板 {made.name} 已保存：{made.size_text()}\nTeam template {made.name} saved: "
                        f"{made.size_text()}", "green")
            return 0
        run(body)

    @templates.command("remove")
    def remove(name: Annotated[str, typer.Argument(metavar="NAME")]) -> None:
        """Forget a team template (posters made from it stay)."""
        async def body(service: Service) -> int:
            service.posters.remove_template(name, p.requester())
            _say(p.out, f"团队模板 {name} 已删除。\nTeam template {name} removed.", "green")
            return 0
        run(body)

    @logos.command("set")
    def set_logo(path: Annotated[Path, typer.Argument(metavar="FILE", exists=True, dir_okay=False)]) -> None:
        """Use this PNG, JPEG or SVG logo on every poster that names none."""
        async def body(service: Service) -> int:
            digest = await service.posters.set_default_logo(path.read_bytes(), p.requester())
            _say(p.out, f"默认标志已设置（{str(digest)[:12]}）。\nDefault logo set ({str(digest)[:12]}).", "green")
            return 0
        run(body)

    @logos.command("clear")
    def clear_logo() -> None:
        """Posters get no logo unless one is given."""
        async def body(service: Service) -> int:
            await service.posters.set_default_logo(None, p.requester())
            _say(p.out, "默认标志已取消。\nDefault logo cleared.", "green")
            return 0
        run(body)


def check_poster_out(poster: str | None, out_file: Path | None) -> None:
    """``--out`` of ``create --poster`` must name a .png or .pdf (FieldError before anything is made)."""
    if poster is not None and out_file is not None:
        format_for_path(out_file.name)


__all__ = ["Plumbing", "check_poster_out", "plumbing", "create_poster", "poster_fields", "register"]
