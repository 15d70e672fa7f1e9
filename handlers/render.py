"""How a code and the core's answers read in any chat: plain text, both languages, one place."""

from __future__ import annotations

from bot.models import CodeRecord, CodeType, Status

TYPE_LABELS = {
    CodeType.A: ("小程序码（A）", "mini-program code (A)"),
    CodeType.B: ("小程序码（B，scene）", "mini-program code (B, scene)"),
    CodeType.C: ("二维码（C）", "QR code (C)"),
    CodeType.SHORTLINK: ("短链", "Short Link"),
}
STATUS_LABELS = {
    Status.PENDING: ("生成中", "working"),
    Status.DONE: ("已生成", "done"),
    Status.FAILED: ("失败", "failed"),
    Status.DELETED: ("已删除", "deleted"),
}


def type_label(record: CodeRecord, lang: str) -> str:
    zh, en = TYPE_LABELS[record.type]
    via = " · GrowingIO" if record.provider.value == "gio" else ""
    return (zh if lang == "zh" else en) + via


def detail_lines(record: CodeRecord, lang: str) -> list[str]:
    """The facts of one code, labelled in ``lang``."""
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
        ("短链", "Short Link", record.link),
        ("创建人", "Made by", record.requested_by_name or record.requested_by),
        ("时间", "Made at", record.created_at.strftime("%Y-%m-%d %H:%M UTC")),
    ]
    lines = [f"{z if zh else e}: {v}" for z, e, v in rows if v]
    why = record.error_message if record.status is Status.FAILED else None
    if why is not None:
        lines.append(("原因: " if zh else "Why: ") + why.render(lang, sep=" / "))
    if record.status is Status.DELETED:
        lines.append("已删除：仅从列表中移除，已印出的码仍可扫码使用。" if zh
                     else "Deleted from the list only: printed codes keep working.")
    if record.sandbox:
        lines.append("（沙盒码）" if zh else "(sandbox code)")
    return lines


def one_line(record: CodeRecord, lang: str) -> str:
    zh_status, en_status = STATUS_LABELS[record.status]
    status = zh_status if lang == "zh" else en_status
    where = record.page + (f" scene={record.scene}" if record.scene else "")
    extra = " · ".join(x for x in (record.campaign, record.channel) if x)
    who = record.requested_by_name or record.requested_by
    return (f"{record.id}  {record.type.value}  {status}  {record.name or '-'}  {where}"
            + (f"  [{extra}]" if extra else "") + f"  @{who}  {record.created_at:%m-%d %H:%M}")

