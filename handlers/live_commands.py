"""The live-code commands of the text grammar (``repoint``, ``pause``, ``resume``, ``stats``) and how a
live code reads in a chat; :mod:`handlers.commands` dispatches here, so Slack, WeCom and the console agree."""

from __future__ import annotations

import asyncio
from typing import Any
from zoneinfo import ZoneInfo

from bot import chart
from bot.live import DayScans, LiveView
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


def stats_chart(days: list[DayScans], lang: str, code_id: str) -> bytes:
    """Scans per day as a bar chart (bot/chart.py's machinery, one series)."""
    label = "扫码" if lang == "zh" else "scans"
    return chart.daily_chart(
        [d.day for d in days], {label: [d.scans for d in days]},
        title=(f"活码 {code_id} 每日扫码" if lang == "zh" else f"Scans per day of live code {code_id}"),
        ylabel=("扫码次数" if lang == "zh" else "scans"), legend_title="", other_label="other")


async def run_live(service: Service, verb: str, args: list[str], requester: Requester) -> dict[str, Any]:
    """The answer to one live-code command, as the fields of :class:`handlers.commands.Reply`."""
    code_id = args[0]
    if verb == "stats":
        view, days = service.live.stats(code_id)
        png = await asyncio.to_thread(stats_chart, days, requester.lang, code_id)
        week = sum(d.scans for d in days[-7:])
        head_zh = f"活码 {code_id} 近 {len(days)} 天每日扫码（近 7 天 {week} 次）。"
        head_en = f"Scans per day of live code {code_id} over {len(days)} days ({week} in the last 7)."
        zone = service.settings.zone
        return {"zh": "\n".join([head_zh, *live_lines(view, "zh", zone)]),
                "en": "\n".join([head_en, *live_lines(view, "en", zone)]),
                "image": png, "image_mime": "image/png",
                "data": {"live": view.model_dump(mode="json"), "days": [d.model_dump(mode="json") for d in days]}}
    if verb == "repoint":
        view = service.live.repoint(code_id, args[1], requester)
        zh, en = (f"已改指向：{code_id} 扫码后打开 {view.destination}（图片不变，无需重新打印）。",
                  f"Re-pointed: {code_id} now opens {view.destination} (same image, nothing to reprint).")
    elif verb == "pause":
        view = service.live.pause(code_id, requester)
        zh, en = (f"已暂停 {code_id}：扫码打开默认页 {view.leads_to}，发送 resume {code_id} 恢复。",
                  f"Paused {code_id}: scans open the fallback page {view.leads_to}; send resume {code_id} to undo.")
    else:
        view = service.live.resume(code_id, requester)
        zh, en = (f"已恢复 {code_id}：扫码打开 {view.destination}。", f"Resumed {code_id}: scans open {view.destination}.")
    return {"zh": zh, "en": en, "data": {"live": view.model_dump(mode="json")}}


__all__ = ["VERBS", "live_lines", "run_live", "stats_chart"]
