"""How a code and the core's answers read in any chat: plain text, both languages, one place."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo

from bot.history import AuditEntry
from bot.models import CodeRecord, CodeType, Provider, Status
from bot.text import UTC_ZONE, Text, local_time

TYPE_LABELS = {
    CodeType.A: ("小程序码（A）", "mini-program code (A)"),
    CodeType.B: ("小程序码（B，scene）", "mini-program code (B, scene)"),
    CodeType.C: ("二维码（C）", "QR code (C)"),
    CodeType.SHORTLINK: ("短链", "Short Link"),
    CodeType.URLLINK: ("URL Link", "URL Link"),
    CodeType.SCHEME: ("URL Scheme", "URL Scheme"),
}
# Where each link opens, said with every one: WeChat documents the Short Link as "适用于微信内拉起小程序"
# (https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/shortlink.html), the URL Link for
# "短信、邮件、网页、微信内" (https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/url-link.html), the
# URL Scheme for SMS and web pages, Android only through a web page that sets location.href
# (https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/url-scheme.html).
LINK_USE = {
    CodeType.SHORTLINK: Text(
        zh="短链只能在微信里打开（发到微信聊天、公众号文章里点开）；短信、邮件、网页请用 URL Link 或 URL Scheme。",
        en="A Short Link opens inside WeChat only (in a WeChat chat or article); for SMS, email or a web page use a "
           "URL Link or URL Scheme."),
    CodeType.URLLINK: Text(
        zh="URL Link 在短信、邮件、网页和微信里点开即可进入小程序。",
        en="A URL Link opens the mini program from SMS, email, web pages and inside WeChat."),
    CodeType.SCHEME: Text(
        zh="URL Scheme 在 iOS 短信和网页里可直接打开；安卓要由网页用 location.href 跳转到它。",
        en="A URL Scheme opens from SMS on iOS and from web pages; on Android a web page must open it "
           "(location.href)."),
}
STATUS_LABELS = {
    Status.PENDING: ("生成中", "working"),
    Status.DONE: ("已生成", "done"),
    Status.FAILED: ("失败", "failed"),
    Status.DELETED: ("已删除", "deleted"),
}


def type_label(record: CodeRecord, lang: str) -> str:
    zh, en = TYPE_LABELS[record.type]
    if record.plain:
        zh, en = zh + "（明文）", en + " (plain text)"
    via = " · GrowingIO" if record.provider.value == "gio" else ""
    return (zh if lang == "zh" else en) + via


def expiry_line(record: CodeRecord, lang: str, zone: ZoneInfo = UTC_ZONE) -> str | None:
    """When a made link stops working (or that it never does / already did); None for codes."""
    zh = lang == "zh"
    if not record.type.is_link or not record.link:
        return None
    if record.expires_at is None:
        return "有效期: 永久" if zh else "Expires: never"
    when = local_time(record.expires_at, zone)
    if record.expired():
        return f"有效期: 已于 {when} 失效" if zh else f"Expires: expired on {when}"
    return f"有效期至: {when}" if zh else f"Expires: {when}"


def link_lines(record: CodeRecord, lang: str, zone: ZoneInfo = UTC_ZONE) -> list[str]:
    """A link's expiry and where it opens (every answer about a link says both)."""
    if not record.type.is_link:
        return []
    expiry = expiry_line(record, lang, zone)
    return ([expiry] if expiry else []) + [LINK_USE[record.type].render(lang)]


def detail_lines(record: CodeRecord, lang: str, zone: ZoneInfo = UTC_ZONE) -> list[str]:
    """The facts of one code, labelled in ``lang``; times in ``zone`` (MINPCODE_TIMEZONE), named."""
    zh = lang == "zh"
    status_zh, status_en = STATUS_LABELS[record.status]
    rows: list[tuple[str, str, str | None]] = [
        ("编号", "ID", record.id),
        ("名称", "Name", record.name),
        ("类型", "Type", type_label(record, lang)),
        ("状态", "Status", status_zh if zh else status_en),
        ("页面", "Page", record.page or ("（首页）" if zh else "(home page)")),
        ("scene", "Scene", record.scene),
        ("标题", "Title", record.title),
        ("推广活动", "Campaign", record.campaign),
        ("推广渠道", "Channel", record.channel),
        ("媒介", "Medium", record.medium),
        ("内容", "Content", record.content),
        ("关键词", "Term", record.term),
        ("备注", "Comments", record.comments),
        ("监测链接", "Tracking URL", record.tracking_url),
        (TYPE_LABELS[record.type][0], TYPE_LABELS[record.type][1], record.link),
        ("创建人", "Made by", record.requested_by_name or record.requested_by),
        ("时间", "Made at", local_time(record.created_at, zone)),
    ]
    lines = [f"{z if zh else e}: {v}" for z, e, v in rows if v] + link_lines(record, lang, zone)
    if record.copy_of:
        lines.append(f"清晰版: {record.copy_of} 的清晰版，做海报用（不另算一个码）" if zh
                     else f"Sharper copy: the sharper copy of {record.copy_of}, made for a poster (not a code of its own)")
    why = record.error_message if record.status is Status.FAILED else None
    if why is not None:
        lines.append(("原因: " if zh else "Why: ") + why.render(lang, sep=" / "))
    if record.status is Status.DELETED:
        lines.append("已删除：仅从列表中移除，已印出的码仍可扫码使用。" if zh
                     else "Deleted from the list only: printed codes keep working.")
    if record.sandbox:
        lines.append("（沙盒码）" if zh else "(sandbox code)")
    return lines


def deleted_text(record: CodeRecord) -> Text:
    """What deleting a code answers, in every front-end: printed codes keep working, and only a tracking link
    made through GrowingIO goes on being counted there (a plain WeChat code was never counted anywhere)."""
    if record.type is CodeType.SHORTLINK:
        zh, en = f"已删除 {record.id}。已经发出的短链仍然可以打开。", f"Deleted {record.id}. Short Links already shared keep working."
    else:
        zh = f"已删除 {record.id}。已经印出或发出的码仍然可以扫码使用"
        en = f"Deleted {record.id}. Codes already printed or shared keep working"
        if record.provider is Provider.GIO:
            zh, en = zh + "，GrowingIO 也会继续统计", en + ", and GrowingIO keeps counting their scans"
        zh, en = zh + "。", en + "."
    return Text(zh=zh, en=en)


def copy_lines(copies: Sequence[CodeRecord], lang: str) -> list[str]:
    """Under a code (``show``): the sharper copies made of it for posters."""
    if not copies:
        return []
    listed = ", ".join(f"{c.id} ({c.width} px)" for c in copies)
    return [f"清晰版: {listed}" if lang == "zh" else f"Sharper copies: {listed}"]


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows in aligned columns (a Chinese character counts two), for chats that show plain text."""
    widths = [max(_width(str(row[i])) for row in (headers, *rows)) for i in range(len(headers))]
    lines = ["  ".join(str(cell) + " " * (w - _width(str(cell))) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in (headers, *rows)]
    return "\n".join(lines)


def list_table(records: Sequence[CodeRecord], zone: ZoneInfo = UTC_ZONE,
               live: Mapping[str, tuple[str, bool, int]] | None = None) -> str:
    """The ``list`` answer: one table with bilingual headers, times in ``zone`` (named in the header);
    ``live``: ``service.live.totals`` of the records, so a blank live code says so."""
    marketing = any(r.campaign or r.channel for r in records)
    headers = ["编号 ID", "类型 Type", "状态 Status", "名称 Name", "页面 Page"]
    headers += ["活动·渠道 Campaign·Channel"] if marketing else []
    headers += ["创建人 By", f"时间 Time ({zone.key})"]
    rows = [record_cells(r, marketing, zone, (live or {}).get(r.id)) + [r.requested_by_name or r.requested_by,
                                          local_time(r.created_at, zone, "%m-%d %H:%M").rsplit(" ", 1)[0]]
            for r in records]
    return text_table(headers, rows)


def record_cells(r: CodeRecord, marketing: bool, zone: ZoneInfo = UTC_ZONE,
                 live: tuple[str, bool, int] | None = None) -> list[str]:
    """A code's cells in a list (id, type, status, name, page and scene; campaign·channel when ``marketing``),
    the same in a chat's text table and the terminal's. A link's status says until when it works; a blank live
    code (``live``'s destination empty) says "blank" until it is bound."""
    zh_status, en_status = STATUS_LABELS[r.status]
    status = f"{zh_status} {en_status}"
    if r.status is Status.DONE and r.expires_at is not None:
        until = local_time(r.expires_at, zone, "%m-%d %H:%M").rsplit(" ", 1)[0]
        status = "已过期 expired" if r.expired() else f"{status} (至 until {until})"
    cells = [r.id, r.type.value, status, r.name or "-",
             (f"{BLANK_WORDS} " if live is not None and not live[0] else "")
             + (r.page or "-") + (f" scene={r.scene}" if r.scene else "")]
    if marketing:
        cells.append(" · ".join(x for x in (r.campaign, r.channel) if x) or "-")
    return cells


BLANK_WORDS = "空码 blank"  # a live code with no destination yet, in every list until repoint binds it

ACTION_WORDS = {"requested": ("请求生成", "requested"), "reused": ("复用", "reused"), "renamed": ("改名", "renamed"),
                "deleted": ("删除", "deleted"), "repointed": ("改指向", "repointed"), "paused": ("暂停", "paused"),
                "resumed": ("恢复", "resumed"), "tagged": ("加标签", "tagged"),
                "untagged": ("取消标签", "untagged")}


def audit_line(entry: AuditEntry, lang: str, zone: ZoneInfo = UTC_ZONE, *, with_code: bool = False) -> str:
    """One audit entry: when (in ``zone``), who, what; a rename says from what to what."""
    zh_word, en_word = ACTION_WORDS.get(entry.action, (entry.action, entry.action))
    what = zh_word if lang == "zh" else en_word
    if entry.action in ("renamed", "repointed"):
        what += f" {entry.detail.get('old') or '-'} → {entry.detail.get('new') or '-'}"
    code = f"{entry.code_id}  " if with_code and entry.code_id else ""
    return f"{local_time(entry.at, zone)}  {code}{entry.actor}  {what}"


def audit_lines(entries: Sequence[AuditEntry], lang: str, zone: ZoneInfo = UTC_ZONE) -> list[str]:
    """A code's history under its details (``show``)."""
    if not entries:
        return []
    return ["历史:" if lang == "zh" else "History:", *(f"  {audit_line(e, lang, zone)}" for e in entries)]
