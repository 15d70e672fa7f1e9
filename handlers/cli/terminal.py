"""The CLI's rendering for the terminal: record tables, machine-readable JSON, and writing images in the
format a file name asks for."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from PIL import Image
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot import links
from bot.config import Settings
from bot.errors import FieldError
from bot.models import CodeRecord
from bot.ports import Check
from bot.quota import QuotaStatus
from bot.text import UTC_ZONE, local_time
from handlers.render import detail_lines, record_cells

_STORED_FORMAT = {"image/png": "PNG", "image/jpeg": "JPEG"}


def image_url(settings: Settings, record: CodeRecord) -> str | None:
    if not record.image_sha256 or settings.people_url is None:
        return None  # no server is configured: a link to the default address would lead nowhere
    return links.code_image_url(settings.people_url, record.id)


def record_json(record: CodeRecord, settings: Settings, live: tuple[str, bool, int] | None = None) -> dict[str, Any]:
    """The machine-readable record of ``--json`` (docs/codes.md, "From the command line"); scripts rely on
    these fields.

    ``live`` is a live code's (destination, paused, total scans), from ``service.live.totals``.
    """
    return {
        "id": record.id, "type": record.type.value, "provider": record.provider.value,
        "status": record.status.value, "page": record.page, "scene": record.scene, "name": record.name,
        "app": record.app, "campaign": record.campaign, "campaign_id": record.campaign_id,
        "channel": record.channel, "channel_id": record.channel_id, "medium": record.medium,
        "content": record.content, "term": record.term, "comments": record.comments,
        "width": record.width, "title": record.title, "link": record.link,
        "expires_at": record.expires_at.isoformat() if record.expires_at else None,
        "permanent": record.permanent if record.type.is_link else None, "plain": record.plain,
        "tracking_url": record.tracking_url, "image_url": image_url(settings, record),
        "error_code": record.error_code, "error": record.error, "sandbox": record.sandbox,
        "requested_by": record.requested_by, "requested_by_name": record.requested_by_name,
        "chat": record.chat, "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
        "live": live is not None, "destination": live[0] if live else None, "paused": live[1] if live else None,
        "scans": live[2] if live else None,
    }


def print_json(console: Console, data: Any) -> None:
    console.file.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    console.file.flush()


def table(*headers: str) -> Table:
    """A table that folds long cells instead of cutting them (ids, pages and links stay whole)."""
    made = Table(*headers)
    for column in made.columns:
        column.overflow = "fold"
    return made


def record_table(record: CodeRecord, settings: Settings) -> Table:
    """One record, both languages side by side."""
    shown = Table(show_header=False, box=None, padding=(0, 1))
    shown.add_column(style="bold", no_wrap=True)
    shown.add_column(overflow="fold")
    zone = settings.zone
    for zh, en in zip(detail_lines(record, "zh", zone), detail_lines(record, "en", zone), strict=True):
        if ": " in zh and ": " in en:
            zh_label, zh_value = zh.split(": ", 1)
            en_label, en_value = en.split(": ", 1)
            value = en_value if zh_value == en_value else f"{zh_value} / {en_value}"
            shown.add_row(f"{zh_label} {en_label}", value)
        else:
            shown.add_row("", f"{zh} / {en}")
    url = image_url(settings, record)
    if url:
        shown.add_row("图片 Image", url)
    return shown


def records_table(records: Iterable[CodeRecord], zone: ZoneInfo = UTC_ZONE,
                  live: Mapping[str, tuple[str, bool, int]] | None = None) -> Table:
    """Codes, one row each (with a campaign·channel column when any has one); times in ``zone``, named."""
    records = list(records)
    marketing = any(r.campaign or r.channel for r in records)
    shown = table("编号 ID", "类型 Type", "状态 Status", "名称 Name", "页面 Page")
    if marketing:
        shown.add_column("活动·渠道 Campaign·Channel", overflow="fold")
    shown.add_column(f"创建 Made ({zone.key})", overflow="fold")
    shown.columns[0].no_wrap = True
    for r in records:
        made = local_time(r.created_at, zone, "%m-%d %H:%M").rsplit(" ", 1)[0]
        shown.add_row(*record_cells(r, marketing, zone, (live or {}).get(r.id)), f"{r.requested_by_name or r.requested_by} {made}")
    return shown


def quota_table(rows: Iterable[QuotaStatus]) -> Table:
    shown = table("小程序 App", "已用 Used", "上限 Cap", "剩余 Left", "比例 Used %")
    for q in rows:
        shown.add_row(q.app, str(q.used), str(q.cap), str(q.left), f"{q.ratio:.1%}")
    return shown


_MARK = {"ok": "[green]✓ ok[/]", "failed": "[red]✗ failed[/]", "skipped": "[dim]– skipped[/]",
         "warning": "[yellow]! warning[/]"}


def doctor_table(rows: Iterable[Check], lang: str) -> Table:
    """``minpcode doctor``: one row per check, what was found and, for a failure, what to change."""
    shown = table("部分 Part", "检查 Check", "结果 Result", "情况 Detail", "怎么改 Fix")
    for row in rows:
        fix = row.fix.render(lang, sep=" / ") if row.fix else ""
        if row.setting and row.status == "failed":
            fix = f"[bold]{escape(row.setting)}[/]: {escape(fix)}" if fix else f"[bold]{escape(row.setting)}[/]"
        else:
            fix = escape(fix)
        shown.add_row(row.part, row.name, _MARK[row.status], escape(row.detail.render(lang, sep=" / ")), fix)
    return shown


def write_image(data: bytes, mime: str | None, path: Path) -> Path:
    """Write the image as the file's extension says (PNG for .png, JPEG for .jpg/.jpeg, any format
    Pillow knows); with no extension Pillow knows, write the stored bytes as they are."""
    wanted = Image.registered_extensions().get(path.suffix.lower())
    path.parent.mkdir(parents=True, exist_ok=True)
    if wanted is None or wanted == _STORED_FORMAT.get(mime or ""):
        path.write_bytes(data)
        return path
    image: Image.Image = Image.open(io.BytesIO(data))
    if wanted == "JPEG" and image.mode != "RGB":
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, "white")
        image = Image.alpha_composite(background, rgba).convert("RGB")
    try:
        image.save(path, format=wanted)
    except (OSError, ValueError, KeyError) as exc:
        raise FieldError("out", f"不能写成 {wanted} 格式：{exc}", f"Cannot write a {wanted} image: {exc}") from None
    return path


__all__ = ["image_url", "print_json", "quota_table", "record_json", "record_table", "records_table", "table",
           "write_image"]
