"""The live-code commands of the text grammar (``repoint``, ``pause``, ``resume``, ``stats``), tags (``tag``,
``untag``), changes to many codes at once (a selection, its preview, then ``confirm``/``确认``/``yes``) and
how a live code reads in a chat; :mod:`handlers.commands` dispatches here, so Slack, WeCom and the console agree."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot import chart
from bot.errors import InputError
from bot.live import DayScans, LiveView, ScanBreakdown, parse_routes
from bot.live.selection import CONFIRM_SECONDS, Selection, SelectionDone, SelectionPreview
from bot.models import Requester
from bot.service import Service
from bot.text import UTC_ZONE, Text, local_time

VERBS = ("repoint", "pause", "resume", "stats", "tag", "untag", "confirm")
SELECTION_KEYS = ("tag", "campaign", "batch")
ACTION_WORDS = {"repoint": ("改指向", "re-point"), "pause": ("暂停", "pause"), "resume": ("恢复", "resume"),
                "tag": ("加标签", "tag"), "untag": ("取消标签", "untag")}


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
    if view.blank:
        lines[0] = ("活码: 空码，还没有绑定页面，扫码打开默认页 " if zh else
                    "Live code: blank, not bound yet: scans open the fallback page ") + view.leads_to
        lines[1] = (f"绑定: repoint {view.code_id} <页面>" if zh else f"Bind it: repoint {view.code_id} <page>")
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


CHAT_CONFIRM = Text(zh=f"回复「确认」执行；{CONFIRM_SECONDS // 60} 分钟内不确认就作废。",
                   en=f"Reply yes (or confirm) to apply it; it lapses after {CONFIRM_SECONDS // 60} minutes.")


def preview_text(preview: SelectionPreview, lang: str, how: Text = CHAT_CONFIRM) -> str:
    """A change to many codes before it is made: what, how many, a few of them, who may not; how to confirm."""
    zh = lang == "zh"
    word = ACTION_WORDS[preview.action][0 if zh else 1]
    what = preview.selection.describe().render(lang)
    value = f" → {preview.value}" if preview.value else ""
    lines = [f"预览（还没有修改）：{word}{value}，{what}中 {preview.count} 个码。" if zh
             else f"Preview (nothing changed yet): {word}{value} for {preview.count} code"
                  f"{'s' if preview.count != 1 else ''} of {what}."]
    for e in preview.examples:
        now = "" if e.now is None else (f"（现在 {e.now or '空码'}）" if zh else f" (now {e.now or 'blank'})")
        lines.append(f"  {e.code_id} {e.name or '-'}{now}")
    if preview.count > len(preview.examples):
        lines.append(f"  …另有 {preview.count - len(preview.examples)} 个" if zh
                     else f"  … and {preview.count - len(preview.examples)} more")
    if preview.refused:
        lines.append(f"不会修改 {len(preview.refused)} 个：" if zh else f"{len(preview.refused)} not changed:")
        lines += [f"  {r.code_id}: {r.zh if zh else r.en}" for r in preview.refused[:20]]
    lines.append(how.zh if zh else how.en)
    return "\n".join(lines)


def done_text(done: SelectionDone, lang: str) -> str:
    zh = lang == "zh"
    word = ACTION_WORDS[done.action][0 if zh else 1]
    value = f" → {done.value}" if done.value else ""
    lines = [f"已{word}{value}：{len(done.changed)} 个码。" if zh
             else f"Done: {word}{value} for {len(done.changed)} code{'s' if len(done.changed) != 1 else ''}."]
    if done.left:
        lines.append(f"预览之后有变化、没有修改：{', '.join(done.left)}" if zh
                     else f"Changed since the preview, left as they are: {', '.join(done.left)}")
    if done.refused:
        lines.append(f"没有权限或不适用、没有修改：{', '.join(r.code_id for r in done.refused)}" if zh
                     else f"Refused (not yours, or not applicable): {', '.join(r.code_id for r in done.refused)}")
    return "\n".join(lines)


# A code id (storage/history.py new_id: 12 of [a-z0-9]); a page has a "/" or a "?", or is another length.
_ID = re.compile(r"[a-z0-9]{12}")
ROUTE_KEYS = ("ios", "android", "ohos", "other", "from", "until")  # repoint's route options (bot/live/routes.py)


def split_ids(words: list[str]) -> tuple[list[str], list[str]]:
    """``repoint``'s words: the code ids first, then the pages (one, or several with weights)."""
    at = next((i for i, word in enumerate(words) if not _ID.fullmatch(word)), len(words))
    return words[:at], words[at:]


async def run_live(service: Service, verb: str, args: list[str], requester: Requester,
                   fields: dict[str, str] | None = None) -> dict[str, Any]:
    """The answer to one live-code command, as the fields of :class:`handlers.commands.Reply`."""
    fields = fields or {}
    if verb == "confirm":
        done = service.live.selections.confirm(requester)
        return {"zh": done_text(done, "zh"), "en": done_text(done, "en"), "data": {"done": done.model_dump(mode="json")}}
    chosen = {k: fields[k] for k in SELECTION_KEYS if k in fields}
    if verb in ACTION_WORDS:
        if verb in ("tag", "untag"):
            ids, value = ([], ",".join(args)) if chosen else (args[:1], ",".join(args[1:]))
        elif verb == "repoint":
            ids, pages = split_ids([word for arg in args for word in arg.split()])  # a page holds no space
            routed = {k: fields[k] for k in ROUTE_KEYS if k in fields}
            if chosen or len(ids) > 1:
                if len(pages) != 1 or routed:
                    raise InputError("选中多个码时只写一个页面（分流、按手机和按日期的路由一次改一个码）。",
                                     "A selection takes one page (routes by share, phone or date change one code at "
                                     "a time).")
                value = pages[0]
            else:
                ids, value = ids[:1], None
                args = [*ids, " ".join(pages)]
        else:
            ids, value = args, None
        if chosen or len(ids) > 1:
            preview = service.live.selections.preview(Selection(ids=ids, **chosen), verb, value, requester)  # type: ignore[arg-type]
            return {"zh": preview_text(preview, "zh"), "en": preview_text(preview, "en"),
                    "data": {"preview": preview.model_dump(mode="json")}}
        if verb in ("tag", "untag"):
            tags = (service.live.tag if verb == "tag" else service.live.untag)(ids[0], value or "", requester)
            shown = ", ".join(tags) or "-"
            return {"zh": f"{ids[0]} 的标签：{shown}", "en": f"Tags of {ids[0]}: {shown}", "data": {"tags": tags}}
        if verb != "repoint":
            args = [*ids, *([value] if value is not None else [])]
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
        change = parse_routes(words, {k: fields[k] for k in ROUTE_KEYS if k in fields}, service.settings.zone)
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


__all__ = ["CSV_HEADER", "ROUTE_KEYS", "VERBS", "breakdown_lines", "done_text", "live_lines", "preview_text", "route_lines", "run_live",
           "scans_csv_chunks", "split_ids", "stats_chart"]
