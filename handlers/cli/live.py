"""The CLI's live-code commands (``repoint``, ``pause``, ``resume``, ``stats``) and ``verify-file``."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer

from bot import links
from bot.live import LiveView, parse_routes
from bot.models import CodeRecord
from bot.service import Service
from bot.summary import MAX_DAYS
from bot.text import Text
from handlers.cli.app import Cli, Say
from handlers.cli.output import print_json_out as print_json
from handlers.cli.output import say
from handlers.cli.terminal import write_image
from handlers.live_commands import breakdown_lines, live_lines, scans_csv_chunks, stats_chart

Body = Callable[[Service], Awaitable[int]]
IdArg = Annotated[str, typer.Argument(metavar="ID", help="The live code's id.")]


def print_live(service: Service, record: CodeRecord, say: Say) -> None:
    """The live side of a record under its table (nothing for other codes)."""
    view = service.live.view(record)
    if view is not None:
        zone = service.settings.zone
        for zh, en in zip(live_lines(view, "zh", zone), live_lines(view, "en", zone), strict=False):
            say(f"{zh}\n{en}")


def register(app: typer.Typer, cli: Cli) -> None:
    run, requester = cli.run, cli.requester

    def change(act: Callable[[Service], LiveView], zh: str, en: str, *, paused: bool = False) -> None:
        """Run one change of a live code and say where its scans lead now."""
        async def body(service: Service) -> int:
            view = act(service)
            leads = view.leads_to if paused else view.destination
            say(f"{zh}：扫码打开 {leads}\n{en}: scans open {leads}", style="green")
            return 0

        run(body)

    @app.command()
    def repoint(
        code_id: IdArg,
        pages: Annotated[list[str] | None, typer.Argument(
            metavar="PAGE…", help="The new destination (page?query), or pages with weights: pages/a=70 pages/b=30.")] = None,
        ios: Annotated[str | None, typer.Option("--ios", help="The page scans from iOS open.")] = None,
        android: Annotated[str | None, typer.Option("--android", help="The page scans from Android open.")] = None,
        ohos: Annotated[str | None, typer.Option("--ohos", help="The page scans from HarmonyOS open.")] = None,
        other: Annotated[str | None, typer.Option("--other", help="The page scans from any other platform open.")] = None,
        first: Annotated[str | None, typer.Option("--from", help="A dated route's first day (YYYY-MM-DD, the team's zone).")] = None,
        last: Annotated[str | None, typer.Option("--until", help="A dated route's last day, included.")] = None,
    ) -> None:
        """Send a live code's scans to another page, or split them (its creator or an admin). No WeChat call; the
        image stays. A dated route (--from/--until) keeps the other routes; any other repoint replaces them.

        Examples:

            minpcode repoint 3k9x2m7q1abc "pages/spring/sale?from=poster"
            minpcode repoint 3k9x2m7q1abc pages/a=70 pages/b=30
            minpcode repoint 3k9x2m7q1abc --ios pages/x --android pages/y
            minpcode repoint 3k9x2m7q1abc pages/sale --from 2026-12-12 --until 2026-12-13
        """
        named = {"ios": ios, "android": android, "ohos": ohos, "other": other, "from": first, "until": last}
        options = {k: v for k, v in named.items() if v is not None}

        def act(service: Service) -> LiveView:
            return service.live.repoint(code_id, parse_routes(pages or [], options, service.settings.zone), requester())

        change(act, "已改指向", "Re-pointed")

    @app.command()
    def pause(code_id: IdArg) -> None:
        """Pause a live code: its scans open the fallback page (MINPCODE_FALLBACK_PAGE) until resumed.

        Example:

            minpcode pause 3k9x2m7q1abc
        """
        change(lambda service: service.live.pause(code_id, requester()), "已暂停", "Paused", paused=True)

    @app.command()
    def resume(code_id: IdArg) -> None:
        """Resume a paused or expired live code.

        Example:

            minpcode resume 3k9x2m7q1abc
        """
        change(lambda service: service.live.resume(code_id, requester()), "已恢复", "Resumed")

    @app.command()
    def stats(
        code_id: IdArg,
        days: Annotated[int, typer.Option("--days", min=1, max=MAX_DAYS, help="Days per day-count (default 30).")] = 30,
        chart: Annotated[Path | None, typer.Option("--chart", help="Write the per-day chart here (.png).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
        as_csv: Annotated[bool, typer.Option("--csv", help="Print every scan of the --days as CSV (time in the "
                                                           "team's zone, destination, platform, source, hashed "
                                                           "visitor, test).")] = False,
    ) -> None:
        """A live code's scans: total, today, 7 days, unique visitors, per day, per destination, platform and source.

        Examples:

            minpcode stats 3k9x2m7q1abc --chart scans.png
            minpcode stats 3k9x2m7q1abc --csv > scans.csv
        """
        async def body(service: Service) -> int:
            if as_csv:
                for chunk in scans_csv_chunks(service.live.export(code_id, days)):
                    sys.stdout.write(chunk)
                return 0
            view, per_day = service.live.stats(code_id, days)
            counts = service.live.breakdown(code_id, days)
            if chart is not None:
                write_image(stats_chart(per_day, "zh", code_id), "image/png", chart)
            if as_json:
                print_json({"live": view.model_dump(mode="json"), "days": [d.model_dump(mode="json") for d in per_day],
                            "breakdown": counts.model_dump(mode="json")})
                return 0
            print_live(service, service.get(code_id), say)
            say("\n".join(f"{d.day.isoformat()}  {d.scans}" for d in per_day))
            for zh, en in zip(breakdown_lines(counts, "zh"), breakdown_lines(counts, "en"), strict=True):
                say(f"{zh}\n{en}")
            return 0

        run(body, as_json=as_json)

    @app.command("verify-file")
    def verify_file(
        file: Annotated[Path, typer.Argument(metavar="FILE", exists=True, dir_okay=False, readable=True,
                                             help="The verification file from the mini program's admin (xxxx.txt).")],
    ) -> None:
        """Serve WeChat's verification file for the plain-link rule (扫普通链接二维码打开小程序), and say where
        WeChat checks it and what else the rule needs.

        WeChat looks for the file in the last directory of the rule's URL: for the rule
        <MINPCODE_PUBLIC_URL>/q/ that is <MINPCODE_PUBLIC_URL>/q/FILE; it is served at the site's root too.
        The rule needs an https, ICP-registered domain and a published rule whose page (the router page) is in
        the released version; personal-subject mini programs cannot use it (docs/live-codes.md).

        Example:

            minpcode verify-file ./a1b2c3d4e5.txt
        """
        async def body(service: Service) -> int:
            service.live.save_site_file(file.name, file.read_bytes(), requester())
            settings = service.settings
            base = settings.minpcode_public_url
            checked, root = links.site_file_urls(base, file.name)
            rule = links.live_rule(base)
            say(f"已保存 {file.name}。规则 {rule} 的校验文件，微信到这里检查：{checked}（根目录 {root} 也能访问）\n"
                f"Stored {file.name}. For the rule {rule} WeChat checks it at {checked} (also served at {root})",
                style="green")
            problems = links.plain_link_problems(base)
            if settings.people_url is None:
                problems.insert(0, Text(zh=f"没有设置 MINPCODE_PUBLIC_URL：{base} 只是本机地址，微信访问不到。",
                                        en=f"MINPCODE_PUBLIC_URL is not set: {base} is this machine's own address, "
                                           "which WeChat cannot reach."))
            for problem in problems:
                say(problem.render(), style="yellow", to_err=True)
            say("微信还要求 · WeChat also asks:")
            for n, need in enumerate(links.plain_link_requirements(base, settings.minpcode_router_page), start=1):
                say(f"{n}. {need.zh}\n   {need.en}")
            return 0

        run(body)


__all__ = ["print_live", "register"]
