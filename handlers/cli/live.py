"""The CLI's live-code commands (``repoint``, ``pause``, ``resume``, ``stats``), tags (``tag``, ``untag``), changes
to a selection (``--tag``/``--campaign``/``--batch`` or several ids: a dry run, then ``--yes``) and ``verify-file``."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer

from bot import links
from bot.live import LiveView, parse_routes
from bot.live.selection import Action, Selection
from bot.models import CodeRecord
from bot.service import Service
from bot.summary import MAX_DAYS
from bot.text import Text
from handlers.cli.app import Cli, Say
from handlers.cli.output import print_json_out as print_json
from handlers.cli.output import say
from handlers.cli.terminal import write_image
from handlers.live_commands import (
    breakdown_lines,
    done_text,
    live_lines,
    preview_text,
    scans_csv_chunks,
    split_ids,
    stats_chart,
)

Body = Callable[[Service], Awaitable[int]]
IdArg = Annotated[str, typer.Argument(metavar="ID", help="The live code's id.")]
ManyIds = Annotated[list[str] | None, typer.Argument(metavar="[ID]...", help="The live codes' ids (none with a selection option).")]
SelTag = Annotated[str | None, typer.Option("--tag", help="Select the codes carrying this tag.")]
SelCampaign = Annotated[str | None, typer.Option("--campaign", help="Select the codes of this campaign (its exact name).")]
SelBatch = Annotated[str | None, typer.Option("--batch", help="Select the codes a batch made (its id).")]
Yes = Annotated[bool, typer.Option("--yes", help="Apply the change to a selection (without it: a dry run).")]


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

    def many(action: Action, ids: list[str], value: str | None, tag: str | None, campaign: str | None,
             batch: str | None, yes: bool) -> None:
        """A change to a selection: its preview (a dry run), or with ``--yes`` the change itself."""
        selection = Selection(ids=ids, tag=tag, campaign=campaign, batch=batch)

        async def body(service: Service) -> int:
            selections = service.live.selections
            if not yes:
                preview = selections.preview(selection, action, value, requester())
                how = Text(zh="加 --yes 执行。", en="Add --yes to apply it.")
                say(f"{preview_text(preview, 'zh', how)}\n{preview_text(preview, 'en', how)}")
                return 0
            done = selections.apply(selection, action, value, requester())
            say(f"{done_text(done, 'zh')}\n{done_text(done, 'en')}", style="green")
            return 0

        run(body)

    def selected(ids: list[str], tag: str | None, campaign: str | None, batch: str | None) -> bool:
        return len(ids) > 1 or any((tag, campaign, batch))

    @app.command()
    def repoint(
        targets: Annotated[list[str], typer.Argument(
            metavar="[ID]... PAGE…", help="The live codes' ids (none with a selection option), then the new "
                                          "destination (page?query), or, for one code, pages with weights: "
                                          "pages/a=70 pages/b=30.")],
        ios: Annotated[str | None, typer.Option("--ios", help="The page scans from iOS open.")] = None,
        android: Annotated[str | None, typer.Option("--android", help="The page scans from Android open.")] = None,
        ohos: Annotated[str | None, typer.Option("--ohos", help="The page scans from HarmonyOS open.")] = None,
        other: Annotated[str | None, typer.Option("--other", help="The page scans from any other platform open.")] = None,
        first: Annotated[str | None, typer.Option("--from", help="A dated route's first day (YYYY-MM-DD, the team's zone).")] = None,
        last: Annotated[str | None, typer.Option("--until", help="A dated route's last day, included.")] = None,
        tag: SelTag = None, campaign: SelCampaign = None, batch: SelBatch = None, yes: Yes = False,
    ) -> None:
        """Send live codes' scans to another page, or split one code's scans (their creator or an admin); binds a
        blank code. No WeChat call; the image stays. A dated route (--from/--until) keeps the other routes; any
        other repoint replaces them. One id changes at once; several ids, --tag, --campaign or --batch show a dry
        run first (add --yes), and take one page.

        Examples:

            minpcode repoint 3k9x2m7q1abc "pages/spring/sale?from=poster"
            minpcode repoint 3k9x2m7q1abc pages/a=70 pages/b=30
            minpcode repoint 3k9x2m7q1abc --ios pages/x --android pages/y
            minpcode repoint 3k9x2m7q1abc pages/sale --from 2026-12-12 --until 2026-12-13
            minpcode repoint --tag 春节 pages/spring/end --yes
        """
        ids, pages = split_ids(targets)
        named = {"ios": ios, "android": android, "ohos": ohos, "other": other, "from": first, "until": last}
        options = {k: v for k, v in named.items() if v is not None}
        if selected(ids, tag, campaign, batch):
            if len(pages) != 1 or options:
                raise typer.BadParameter("选中多个码时只写一个页面（分流、按手机和按日期的路由一次改一个码）。 "
                                         "A selection takes one page (routes by share, phone or date change one code "
                                         "at a time).", param_hint="PAGE")
            many("repoint", ids, pages[0], tag, campaign, batch, yes)
            return
        if len(ids) != 1:
            raise typer.BadParameter("请给出编号，或 --tag/--campaign/--batch。 Give an id, or --tag/--campaign/--batch.",
                                     param_hint="ID")

        def act(service: Service) -> LiveView:
            return service.live.repoint(ids[0], parse_routes(pages, options, service.settings.zone), requester())

        change(act, "已改指向", "Re-pointed")

    @app.command()
    def pause(ids: ManyIds = None, tag: SelTag = None, campaign: SelCampaign = None, batch: SelBatch = None,
              yes: Yes = False) -> None:
        """Pause live codes: their scans open the fallback page (MINPCODE_FALLBACK_PAGE) until resumed.

        Example:

            minpcode pause 3k9x2m7q1abc
            minpcode pause --campaign spring --yes
        """
        ids = ids or []
        if selected(ids, tag, campaign, batch) or not ids:
            many("pause", ids, None, tag, campaign, batch, yes)
            return
        change(lambda service: service.live.pause(ids[0], requester()), "已暂停", "Paused", paused=True)

    @app.command()
    def resume(ids: ManyIds = None, tag: SelTag = None, campaign: SelCampaign = None, batch: SelBatch = None,
               yes: Yes = False) -> None:
        """Resume paused or expired live codes.

        Example:

            minpcode resume 3k9x2m7q1abc
        """
        ids = ids or []
        if selected(ids, tag, campaign, batch) or not ids:
            many("resume", ids, None, tag, campaign, batch, yes)
            return
        change(lambda service: service.live.resume(ids[0], requester()), "已恢复", "Resumed")

    def tagging(action: Action, code_id: str, tags: list[str], tag: str | None, campaign: str | None,
                batch: str | None, yes: bool) -> None:
        if any((tag, campaign, batch)):
            many(action, [], ",".join([code_id, *tags]), tag, campaign, batch, yes)  # every word is a tag then
            return

        async def body(service: Service) -> int:
            verb = service.live.tag if action == "tag" else service.live.untag
            now = verb(code_id, ",".join(tags), requester())
            say(f"{code_id} 的标签 / tags: {', '.join(now) or '-'}", style="green")
            return 0

        run(body)

    @app.command()
    def tag(code_id: Annotated[str, typer.Argument(metavar="ID", help="The code's id (with a selection option: a tag).")],
            tags: Annotated[list[str] | None, typer.Argument(metavar="TAG...", help="Tags to add.")] = None,
            select_tag: SelTag = None, campaign: SelCampaign = None, batch: SelBatch = None, yes: Yes = False) -> None:
        """Add tags to a code (its creator or an admin); with --tag/--campaign/--batch, to a selection.

        Example:

            minpcode tag 3k9x2m7q1abc 门店 春节
            minpcode tag --campaign spring 春节 --yes
        """
        tagging("tag", code_id, tags or [], select_tag, campaign, batch, yes)

    @app.command()
    def untag(code_id: Annotated[str, typer.Argument(metavar="ID", help="The code's id (with a selection option: a tag).")],
              tags: Annotated[list[str] | None, typer.Argument(metavar="TAG...", help="Tags to take off.")] = None,
              select_tag: SelTag = None, campaign: SelCampaign = None, batch: SelBatch = None, yes: Yes = False) -> None:
        """Take tags off a code; with --tag/--campaign/--batch, off a selection.

        Example:

            minpcode untag 3k9x2m7q1abc 春节
        """
        tagging("untag", code_id, tags or [], select_tag, campaign, batch, yes)

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
