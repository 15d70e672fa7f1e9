"""The live-code commands of the text grammar (``repoint``, ``pause``, ``resume``, ``stats``) and how a
live code reads in a chat; :mod:`handlers.commands` dispatches here, so Slack, WeCom and the console agree."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot import chart
from bot.live import DayScans, LiveView, ScanBreakdown, parse_routes
from bot.models import Requester
from bot.service import Service
from bot.text import UTC_ZONE, local_time

VERBS = ("repoint", "pause", "resume", "stats")


def live_lines(view: LiveView, lang: str, zone: ZoneInfo = UTC_ZONE) -> list[str]:
    """What ``show`` adds for a live code: where it leads, its state, its scans, every destination (set when,
    in ``zone``: ``Settings.zone``, MINPCODE_TIMEZONE, named)."""
    zh = lang == "zh"
    s = view.scans
    if view.paused or view.expired:
        why = ("已暂停" if view.paused else "已到期") if zh else ("paused" if view.paused else "expired")
        state = f"{why}，扫码打开默认页 {view.leads_to}" if zh else f"{why}: scans open the fallback page {view.leads_to}"
    else:
        state = "生效中" if zh else "active"
    lines = [
        ("活码: " if zh else "Live code: ") + state,
        ("目标页面: " if zh else "Destination: ") + view.destination,
        *route_lines(view, lang),
        (f"扫码: 共 {s.total} 次 · 今天 {s.today} · 近 7 天 {s.last_7_days} · 独立访客 {s.unique}" if zh
         else f"Scans: {s.total} in all · {s.today} today · {s.last_7_days} in 7 days · {s.unique} unique visitors"),
    ]
    if s.tests:
        lines.append(f"测试扫码: {s.tests} 次（开发版、体验版、审核版和开发者工具，不计入上面的次数）" if zh
                     else f"Test scans: {s.tests} (develop, trial and review builds and the IDE; in none of the figures above)")
    if view.expires_on is not None:
        lines.append(("到期日: " if zh else "Last day: ") + view.expires_on.isoformat())
    if len(view.destinations) > 1:
        lines.append("指向记录:" if zh else "Destinations:")
        lines += [f"  {local_time(d.set_at, zone)}  {d.set_by or '-'}  {d.page}" for d in view.destinations]
    return lines


def route_lines(view: LiveView, lang: str) -> list[str]:
    """A live code's routes, one line per kind (none when every scan goes to its destination)."""
    if view.routes is None:
        return []
    prefix = "  路由 · " if lang == "zh" else "  Route · "
    return [prefix + line for line in view.routes.lines(lang)]


SOURCE_WORDS = {"wxa": ("小程序码", "B code"), "link": ("普通链接二维码", "plain-link QR"),
                "web": ("微信外打开的链接页", "link page outside WeChat")}


def breakdown_lines(counts: ScanBreakdown, lang: str) -> list[str]:
    """Real scans of the period per destination, platform and source (test scans are on their own line)."""
    zh = lang == "zh"

    def joined(items: dict[str, int], words: dict[str, tuple[str, str]] | None = None) -> str:
        return (" · " if zh else " · ").join(
            f"{(words[k][0 if zh else 1] if words and k in words else k)} {n}" for k, n in items.items()) or "-"

    return [
        (f"近 {counts.days} 天按目标页面: " if zh else f"Last {counts.days} days by destination: ") + joined(counts.pages),
        ("按手机平台: " if zh else "By platform: ") + joined(counts.platforms),
        ("按来源: " if zh else "By source: ") + joined(counts.sources, SOURCE_WORDS),
    ]


CSV_HEADER = ("time", "destination", "platform", "source", "visitor", "test")
CSV_ROWS = 500  # rows per chunk written


def scans_csv_chunks(rows: Iterable[tuple[datetime, str, str, str, str, bool]],
                     first: tuple[datetime, str, str, str, str, bool] | None = None) -> Iterator[str]:
    """A live code's scans as CSV text in chunks (``service.live.export``'s rows: the time in the team's zone,
    the page sent to, the platform, the source, the keyed hash of the visitor, test scan yes/no). The CLI's
    ``stats --csv`` and the API's ``scans.csv`` write the same."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    n = 0
    for row in ([first] if first is not None else []), rows:
        for at, page, platform, source, visitor, test in row:
            writer.writerow((at.isoformat(timespec="seconds"), page, platform, source, visitor, "yes" if test else "no"))
            n += 1
            if n % CSV_ROWS == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


CHART_SERIES = 6  # destinations drawn apart; the rest are summed under "other"


def stats_chart(days: list[DayScans], lang: str, code_id: str) -> bytes:
    """Scans per day as a bar chart (bot/chart.py's machinery), a series per destination when it has several."""
    label = "扫码" if lang == "zh" else "scans"
    pages: dict[str, int] = {}
    for d in days:
        for page, n in d.pages.items():
            pages[page] = pages.get(page, 0) + n
    series = ({page: [d.pages.get(page, 0) for d in days] for page in sorted(pages, key=lambda p: -pages[p])}
              if len(pages) > 1 else {label: [d.scans for d in days]})
    return chart.daily_chart(
        [d.day for d in days], series,
        title=(f"活码 {code_id} 每日扫码" if lang == "zh" else f"Scans per day of live code {code_id}"),
        ylabel=("扫码次数" if lang == "zh" else "scans"), legend_title="", other_label="其他" if lang == "zh" else "other")


async def run_live(service: Service, verb: str, args: list[str], requester: Requester,
                   options: dict[str, str] | None = None) -> dict[str, Any]:
    """The answer to one live-code command, as the fields of :class:`handlers.commands.Reply`."""
    code_id = args[0]
    if verb == "stats":
        view, days = service.live.stats(code_id)
        counts = service.live.breakdown(code_id, len(days))
        png = await asyncio.to_thread(stats_chart, days, requester.lang, code_id)
        week = sum(d.scans for d in days[-7:])
        head_zh = f"活码 {code_id} 近 {len(days)} 天每日扫码（近 7 天 {week} 次）。"
        head_en = f"Scans per day of live code {code_id} over {len(days)} days ({week} in the last 7)."
        zone = service.settings.zone
        return {"zh": "\n".join([head_zh, *live_lines(view, "zh", zone), *breakdown_lines(counts, "zh")]),
                "en": "\n".join([head_en, *live_lines(view, "en", zone), *breakdown_lines(counts, "en")]),
                "image": png, "image_mime": "image/png",
                "data": {"live": view.model_dump(mode="json"), "days": [d.model_dump(mode="json") for d in days],
                         "breakdown": counts.model_dump(mode="json")}}
    if verb == "repoint":
        words = args[1].split() if len(args) > 1 else []
        change = parse_routes(words, options or {}, service.settings.zone)
        view = service.live.repoint(code_id, change, requester)
        zh, en = (f"已改指向：{code_id} 扫码后打开 {view.destination}（图片不变，无需重新打印）。",
                  f"Re-pointed: {code_id} now opens {view.destination} (same image, nothing to reprint).")
        if view.routes is not None:
            zh, en = (f"已改指向：{code_id} 的路由已更新（图片不变，无需重新打印）。\n" + "\n".join(route_lines(view, "zh")),
                      f"Re-pointed: {code_id}'s routes are set (same image, nothing to reprint).\n"
                      + "\n".join(route_lines(view, "en")))
    elif verb == "pause":
        view = service.live.pause(code_id, requester)
        zh, en = (f"已暂停 {code_id}：扫码打开默认页 {view.leads_to}，发送 resume {code_id} 恢复。",
                  f"Paused {code_id}: scans open the fallback page {view.leads_to}; send resume {code_id} to undo.")
    else:
        view = service.live.resume(code_id, requester)
        zh, en = (f"已恢复 {code_id}：扫码打开 {view.destination}。", f"Resumed {code_id}: scans open {view.destination}.")
    return {"zh": zh, "en": en, "data": {"live": view.model_dump(mode="json")}}


__all__ = ["CSV_HEADER", "VERBS", "breakdown_lines", "scans_csv_chunks", "live_lines", "route_lines", "run_live", "stats_chart"]
