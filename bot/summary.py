"""Summaries of a period: what was made, reused and refused, quota, busiest pages; and how they read.

    summary = build_summary(service, start, end)        # a pydantic model (``--json`` dumps it)
    summary.text("zh")                                   # terminal / chat text
    summary_chart(summary, "zh")                         # PNG bytes (bot/chart.py), None when empty

The chats render it themselves from the pieces here (``headline``, ``tally_items`` ...): Block Kit
in handlers/slack/summary_view.py, group-robot markdown in handlers/wecom/summary_view.py.
Posting it (on demand or on schedule) is bot/announce.py.

A period is ``[start, end)`` in MINPCODE_TIMEZONE. The on-demand one (``summary [days]``) is the
last N calendar days up to now, today included; the scheduler's one is set by the cron (see
bot/scheduler.py). Codes deleted since are still counted (as made, and as deleted).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from bot.models import CodeType
from bot.text import Lang
from storage.clock import to_text

if TYPE_CHECKING:
    from bot.service import Service

DEFAULT_DAYS = 7
MAX_DAYS = 365
"""The one day limit of an on-demand summary (the chat grammar, the CLI and the service use it)."""

# -- the model ------------------------------------------------------------------------------------


class Tally(BaseModel):
    """A count under a name; ``name`` None means "not set" (no campaign, no channel)."""

    name: str | None
    count: int


class FailureGroup(BaseModel):
    """Failed requests with the same upstream code and reason."""

    code: str | None
    zh: str
    en: str
    count: int
    ids: list[str]


class AppQuota(BaseModel):
    """A+C lifetime quota of one mini program."""

    app: str
    used_in_period: int
    used: int
    cap: int
    left: int
    ratio: float
    warning_zh: str | None = None
    warning_en: str | None = None


class DayCount(BaseModel):
    """Codes made on one local day, by campaign and by channel ("" = not set)."""

    day: date
    total: int
    by_campaign: dict[str, int] = {}
    by_channel: dict[str, int] = {}


class ScannedCode(BaseModel):
    """A live code and its scans in the period."""

    id: str
    name: str | None
    scans: int


class Summary(BaseModel):
    start: datetime
    end: datetime
    timezone: str
    generated_at: datetime
    sandbox: bool = False
    requested: int = 0          # requests recorded in the period, whatever became of them
    made: int = 0               # codes made (done, or made and deleted since)
    deleted: int = 0            # of ``made``, deleted since
    deleted_in_period: int = 0  # delete actions in the period (on codes of any age)
    failed: int = 0
    pending: int = 0
    tracking_links: int = 0     # of ``made``, GrowingIO tracking links
    reused: int = 0             # identical requests answered with an existing code
    quota_saved: int = 0        # of ``reused``, A/C codes: each one would have spent quota
    by_type: list[Tally] = []
    by_campaign: list[Tally] = []
    by_channel: list[Tally] = []
    by_person: list[Tally] = []
    failures: list[FailureGroup] = []
    quota: list[AppQuota] = []
    top_pages: list[Tally] = []
    daily: list[DayCount] = []
    top_scanned: list[ScannedCode] = []     # live codes scanned most in the period

    @property
    def empty(self) -> bool:
        return not (self.requested or self.reused or self.deleted_in_period or self.top_scanned)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # the key of Settings.zone, written by build_summary

    @property
    def days(self) -> int:
        return len(self.daily)

    @property
    def warnings(self) -> list[AppQuota]:
        return [q for q in self.quota if q.warning_zh]

    def text(self, lang: Lang = "zh") -> str:
        return render_text(self, lang)


# -- computing --------------------------------------------------------------------------------------


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def period_for_days(days: int, now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The last ``days`` calendar days in ``zone``, today included, up to ``now``."""
    local_now = now.astimezone(zone)
    start = local_midnight(local_now.date() - timedelta(days=days - 1), zone)
    return start, local_now


def _day_list(start: datetime, end: datetime) -> list[date]:
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)] if end > start else []


def _ranked(pairs: Iterable[tuple[str | None, int]]) -> list[Tally]:
    ranked = sorted(pairs, key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))
    return [Tally(name=name, count=count) for name, count in ranked]


def _reason(code: str | None, zh: str | None, en: str | None) -> tuple[str | None, str, str]:
    zh, en = (zh or "").strip(), (en or "").strip()
    if not (zh or en):
        return code, "（没有记录原因）", "(no reason recorded)"
    return code, zh or en, en or zh


def build_summary(service: Service, start: datetime, end: datetime, *, now: datetime | None = None) -> Summary:
    """Everything that happened in ``[start, end)`` (aware datetimes), read from storage.

    Every count comes from one aggregate statement (:meth:`storage.reports.Reports.period`): no
    row is read as a record, so a week of a million-row history takes milliseconds.
    """
    zone = service.settings.zone
    start, end = start.astimezone(zone), end.astimezone(zone)
    since, until = to_text(start), to_text(end)
    storage = service.storage
    days = _day_list(start, end)
    counts = storage.reports.period(since, until, [to_text(local_midnight(day, zone)) for day in days[1:]])
    reuses = storage.reports.reuses(since, until)

    groups: dict[tuple[str | None, str, str], list[str]] = {}
    for group in counts.failures:
        groups.setdefault(_reason(group.code, group.zh, group.en), []).extend(group.ids)
    failures = sorted(
        (FailureGroup(code=code, zh=zh, en=en, count=len(ids), ids=ids) for (code, zh, en), ids in groups.items()),
        key=lambda g: (-g.count, g.code or ""),
    )

    quota = []
    for status in service.quota():
        notice = status.notice()
        quota.append(AppQuota(
            app=status.app, used_in_period=storage.ledger.used_between(status.app, since, until), used=status.used,
            cap=status.cap, left=status.left, ratio=status.ratio,
            warning_zh=notice.zh if notice else None, warning_en=notice.en if notice else None,
        ))

    daily = [DayCount(day=day, total=counts.daily_total.get(i, 0), by_campaign=counts.daily_campaign.get(i, {}),
                      by_channel=counts.daily_channel.get(i, {}))
             for i, day in enumerate(days)]

    return Summary(
        start=start, end=end, timezone=str(zone.key), sandbox=service.sandbox,
        generated_at=(now or datetime.now(UTC)).astimezone(zone),
        requested=counts.requested, made=counts.made, deleted=counts.deleted,
        deleted_in_period=storage.audit.count("deleted", since, until),
        failed=counts.failed, pending=counts.pending, tracking_links=counts.tracking_links,
        reused=len(reuses),
        quota_saved=sum(r.type in (CodeType.A.value, CodeType.C.value) for r in reuses),
        by_type=_ranked(counts.by_type),
        by_campaign=_ranked(counts.by_campaign),
        by_channel=_ranked(counts.by_channel),
        # Every breakdown counts the same codes (``made``), so each one sums to the headline figure.
        by_person=_ranked(counts.by_person),
        failures=failures, quota=quota,
        top_pages=[Tally(name=page, count=count) for page, count in counts.top_pages],
        daily=daily,
        top_scanned=[ScannedCode(id=r.id, name=r.name, scans=n) for r, n in service.live.most_scanned(start, end, 5)],
    )


def summary_for_days(service: Service, days: int | None = None, *, now: datetime | None = None) -> Summary:
    now = now or datetime.now(UTC)
    start, end = period_for_days(days or DEFAULT_DAYS, now, service.settings.zone)
    return build_summary(service, start, end, now=now)


# -- words --------------------------------------------------------------------------------------------

_TYPE_NAMES = {"A": ("A 码", "A codes"), "B": ("B 码", "B codes"), "C": ("C 码", "C codes"),
               "shortlink": ("短链", "Short Links"), "urllink": ("URL Link", "URL Links"),
               "scheme": ("URL Scheme", "URL Schemes")}
_WORDS: dict[str, tuple[str, str]] = {
    "title": ("minpcode 汇总", "minpcode summary"),
    "by_type": ("按类型", "By type"),
    "by_campaign": ("按推广活动", "By campaign"),
    "by_channel": ("按推广渠道", "By channel"),
    "by_person": ("按人", "By person"),
    "failures": ("失败原因", "Failures"),
    "quota": ("A/C 码额度", "A/C quota"),
    "top_pages": ("最常用页面", "Most used pages"),
    "top_scanned": ("扫码最多的活码", "Most scanned codes"),
    "none": ("（未填）", "(none)"),
    "home": ("（首页）", "(home page)"),
    "chart_title": ("每日生成的码", "Codes made per day"),
    "chart_y": ("码数", "codes"),
    "other": ("其他", "other"),
    "sandbox": ("沙盒数据：由内置模拟器生成。", "Sandbox data: made by the built-in emulators."),
}


def word(key: str, lang: Lang) -> str:
    zh, en = _WORDS[key]
    return zh if lang == "zh" else en


def number(value: int) -> str:
    return f"{value:,}"


def _more(count: int, lang: Lang) -> str:
    return f"…另有 {count} 项" if lang == "zh" else f"…and {count} more"


def period_label(summary: Summary, lang: Lang) -> str:
    first = summary.start.date()
    last = (summary.end - timedelta(microseconds=1)).date() if summary.end > summary.start else first
    days = (last - first).days + 1
    span = f"{first:%Y-%m-%d}" if first == last else f"{first:%Y-%m-%d} – {last:%Y-%m-%d}"
    open_end = summary.end.timetz().replace(tzinfo=None) != time(0)
    until = (f"，截至 {summary.end:%H:%M}" if lang == "zh" else f", until {summary.end:%H:%M}") if open_end else ""
    if lang == "zh":
        return f"{span}（{days} 天{until}，{summary.timezone}）"
    return f"{span} ({days} day{'s' if days != 1 else ''}{until}, {summary.timezone})"


def _quiet(summary: Summary, lang: Lang) -> str:
    days = summary.days
    if lang == "zh":
        when = "本周" if days == 7 else ("今天" if days == 1 else f"这 {days} 天")
        return f"{when}没有新动静：没有生成、复用、删除或失败的码。"
    when = "this week" if days == 7 else ("today" if days == 1 else f"in these {days} days")
    return f"Nothing {when}: no codes were made, reused, deleted or failed."


def headline(summary: Summary, lang: Lang) -> list[str]:
    """The main numbers, one sentence per line."""
    if summary.empty:
        return [_quiet(summary, lang)]
    if lang == "zh":
        made = f"生成 {number(summary.made)} 个码"
        extras = []
        if summary.tracking_links:
            extras.append(f"GrowingIO 监测链接 {number(summary.tracking_links)} 个")
        if summary.deleted:
            extras.append(f"{number(summary.deleted)} 个已删除")
        if extras:
            made += "（其中 " + "，".join(extras) + "）"
        lines = [f"{made} · 失败 {number(summary.failed)} · 生成中 {number(summary.pending)}",
                 f"复用 {number(summary.reused)} 次，节省 A/C 额度 {number(summary.quota_saved)} 个"]
        if summary.deleted_in_period:
            lines.append(f"本期删除 {number(summary.deleted_in_period)} 个码（已印出的码仍可扫码）")
        return lines
    made = f"{number(summary.made)} code{'s' if summary.made != 1 else ''} made"
    extras = []
    if summary.tracking_links:
        extras.append(f"{number(summary.tracking_links)} GrowingIO tracking link{'s' if summary.tracking_links != 1 else ''}")
    if summary.deleted:
        extras.append(f"{number(summary.deleted)} deleted since")
    if extras:
        made += " (" + ", ".join(extras) + ")"
    lines = [f"{made} · {number(summary.failed)} failed · {number(summary.pending)} still working",
             f"{number(summary.reused)} reuse{'s' if summary.reused != 1 else ''}, "
             f"saving {number(summary.quota_saved)} A/C quota"]
    if summary.deleted_in_period:
        lines.append(f"{number(summary.deleted_in_period)} code{'s' if summary.deleted_in_period != 1 else ''} deleted "
                     "in the period (printed codes keep working)")
    return lines


def tally_name(key: str, tally: Tally, lang: Lang) -> str:
    if key == "by_type":
        zh, en = _TYPE_NAMES.get(tally.name or "", (tally.name or "?", tally.name or "?"))
        return zh if lang == "zh" else en
    if key == "top_pages":
        return tally.name or word("home", lang)
    return tally.name if tally.name is not None else word("none", lang)


def tally_items(summary: Summary, key: str, lang: Lang) -> list[str]:
    return [f"{tally_name(key, t, lang)} {number(t.count)}" for t in getattr(summary, key)]


def failure_items(summary: Summary, lang: Lang, *, max_chars: int = 200, max_ids: int = 3) -> list[str]:
    items = []
    for group in summary.failures:
        reason = group.zh if lang == "zh" else group.en
        if len(reason) > max_chars:
            reason = reason[: max_chars - 1] + "…"
        ids = ", ".join(group.ids[:max_ids]) + (", …" if len(group.ids) > max_ids else "")
        code = f"[{group.code}] " if group.code else ""
        items.append(f"{code}{reason} ×{group.count} ({ids})")
    return items


def quota_items(summary: Summary, lang: Lang) -> list[str]:
    items = []
    for q in summary.quota:
        if lang == "zh":
            line = (f"{q.app}：本期用 {number(q.used_in_period)}，累计 {number(q.used)} / {number(q.cap)}，"
                    f"剩余 {number(q.left)}（{q.ratio:.1%}）")
        else:
            line = (f"{q.app}: {number(q.used_in_period)} used in the period, {number(q.used)} of {number(q.cap)} in all, "
                    f"{number(q.left)} left ({q.ratio:.1%})")
        items.append(line)
    return items


def warning_lines(summary: Summary, lang: Lang) -> list[str]:
    return [(q.warning_zh if lang == "zh" else q.warning_en) or "" for q in summary.warnings]


def limited(items: list[str], limit: int | None, lang: Lang) -> list[str]:
    if limit is None or len(items) <= limit:
        return items
    return [*items[:limit], _more(len(items) - limit, lang)]


# -- plain text ------------------------------------------------------------------------------------------

LIST_KEYS = ("by_type", "by_campaign", "by_channel", "by_person")


def render_text(summary: Summary, lang: Lang = "zh", *, limit: int | None = 10) -> str:
    lines = [f"{word('title', lang)} · {period_label(summary, lang)}", *headline(summary, lang)]
    if summary.empty:
        lines += ["⚠ " + w for w in warning_lines(summary, lang)]
        return "\n".join(lines)
    sep = "：" if lang == "zh" else ": "
    for key in LIST_KEYS:
        items = limited(tally_items(summary, key, lang), limit, lang)
        if items:
            lines.append(word(key, lang) + sep + " · ".join(items))
    if summary.failures:
        lines.append(word("failures", lang) + sep.rstrip())
        lines += ["  • " + item for item in limited(failure_items(summary, lang), limit, lang)]
    if summary.quota:
        lines.append(word("quota", lang) + sep.rstrip())
        lines += ["  • " + item for item in quota_items(summary, lang)]
        lines += ["  ⚠ " + w for w in warning_lines(summary, lang)]
    if summary.top_pages:
        lines.append(word("top_pages", lang) + sep.rstrip())
        lines += [f"  {i}. {tally_name('top_pages', t, lang)} — {number(t.count)}"
                  for i, t in enumerate(summary.top_pages[: limit or None], 1)]
    lines += top_scanned_lines(summary, lang)
    if summary.sandbox:
        lines.append(word("sandbox", lang))
    return "\n".join(lines)


def top_scanned_lines(summary: Summary, lang: Lang) -> list[str]:
    """The most scanned live codes, a heading and one line each (empty when nothing was scanned)."""
    if not summary.top_scanned:
        return []
    unit = "次" if lang == "zh" else " scans"
    return [word("top_scanned", lang) + ("：" if lang == "zh" else ":")] + [
        f"  {i}. {c.name or c.id} ({c.id}) — {number(c.scans)}{unit}" for i, c in enumerate(summary.top_scanned, 1)]


# -- the chart --------------------------------------------------------------------------------------------------


def chart_series(summary: Summary, by: Literal["campaign", "channel", "auto"] = "auto") -> tuple[str, dict[str, list[int]]]:
    """(which dimension, name -> counts per day); "auto" stacks by campaign unless no code has one."""
    if by == "auto":
        named = any(key for day in summary.daily for key in day.by_campaign)
        by = "campaign" if named else "channel"
    names = sorted({key for day in summary.daily for key in getattr(day, f"by_{by}")})
    series = {name: [getattr(day, f"by_{by}").get(name, 0) for day in summary.daily] for name in names}
    return by, series


def summary_chart(summary: Summary, lang: Lang = "zh", *,
                  by: Literal["campaign", "channel", "auto"] = "auto") -> bytes | None:
    """PNG bytes of codes made per day, stacked by campaign (or channel); None when nothing was made."""
    if not summary.made or not summary.daily:
        return None
    from bot.chart import daily_chart  # matplotlib is slow to import: only when a chart is drawn

    dimension, raw = chart_series(summary, by)
    series = {(name or word("none", lang)): values for name, values in raw.items()}
    return daily_chart(
        [d.day for d in summary.daily], series,
        title=f"{word('chart_title', lang)} · {period_label(summary, lang)}",
        ylabel=word("chart_y", lang), legend_title=word(f"by_{dimension}", lang), other_label=word("other", lang),
    )


def chart_filename(summary: Summary) -> str:
    last = (summary.end - timedelta(microseconds=1)).date()
    return f"minpcode-summary-{summary.start.date():%Y%m%d}-{last:%Y%m%d}.png"


def chart_title(summary: Summary, lang: Lang) -> str:
    return f"{word('chart_title', lang)} · {period_label(summary, lang)}"


__all__ = [
    "DEFAULT_DAYS", "LIST_KEYS", "MAX_DAYS", "AppQuota", "DayCount", "FailureGroup", "Lang", "Summary", "Tally",
    "build_summary", "chart_filename", "chart_series", "chart_title", "failure_items", "headline", "limited",
    "local_midnight", "number", "period_for_days", "period_label", "quota_items", "render_text",
    "summary_chart", "summary_for_days", "tally_items", "tally_name", "warning_lines", "word",
]
