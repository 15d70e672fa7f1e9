"""The App Home tab: a person's recent codes (everyone's for admins), managed with buttons.

Each code shows its name, type, status, page and campaign/channel, a thumbnail when the public URL
is reachable by Slack (https) or else a link, and buttons: download (a link to ``/codes/{id}.png``),
rename (a modal), delete (behind a confirm). A "new code" button opens the form; paging buttons walk
the history. The tab is re-published after every change the person makes.
"""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import links
from bot.errors import FieldError, InputError, MinpcodeError
from bot.models import CodeRecord, Requester, Status
from bot.posters.service import PosterInfo
from bot.service import Service
from bot.text import UTC_ZONE, local_time
from handlers.http import is_loopback
from handlers.render import STATUS_LABELS, TYPE_LABELS
from handlers.slack import live_home, views
from handlers.slack.errors import slack_error
from handlers.slack.views import button, context, plain, say, section

log = logging.getLogger("minpcode.slack.home")

PAGE_SIZE = 8
NEW_ACTION = "home_new"
PAGE_ACTION = "home_page"
RENAME_ACTION = "home_rename"
DELETE_ACTION = "home_delete"
DOWNLOAD_ACTION = "home_download"
POSTER_LINKS = 3  # posters linked per code on the Home tab, newest first


def thumbnails_possible(public_url: str | None) -> bool:
    """Slack fetches image blocks itself, so thumbnails need a public https address."""
    return bool(public_url) and str(public_url).startswith("https://") and not is_loopback(str(public_url))


def home_view(records: list[CodeRecord], *, offset: int, more: bool, admin: bool, public_url: str | None,
              banner: str | None = None, live: dict[str, live_home.Live] | None = None,
              posters: dict[str, list[PosterInfo]] | None = None, zone: ZoneInfo = UTC_ZONE) -> dict[str, Any]:
    """``zone``: the one configured time zone (``Settings.zone``) the codes' times are shown in."""
    thumbs = thumbnails_possible(public_url)
    title = "全部小程序码（管理员）/ Everyone's codes (admin)" if admin else "我的小程序码 / My codes"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": plain(title, 150)},
        {"type": "actions", "block_id": "home_top", "elements": [
            button("➕ 新建 / New code", NEW_ACTION, value="new", style="primary"),
            button("🔄 刷新 / Refresh", PAGE_ACTION, value=str(offset)),
        ]},
    ]
    if banner:
        blocks.append(section(banner))
    blocks.append({"type": "divider"})
    if not records:
        blocks.append(section("还没有码。点「新建」或在任意频道输入 `/minpcode`。\n"
                              "No codes yet. Press New code, or type `/minpcode` in any channel."))
    for record in records:
        blocks += _record_blocks(record, public_url, thumbs, (live or {}).get(record.id),
                                 (posters or {}).get(record.id, []), zone)
    pager = []
    if offset > 0:
        pager.append(button("⬅ 上一页 / Previous", PAGE_ACTION + "_prev", value=str(max(0, offset - PAGE_SIZE))))
    if more:
        pager.append(button("下一页 / Next ➡", PAGE_ACTION + "_next", value=str(offset + PAGE_SIZE)))
    if records:
        blocks.append(context(f"第 {offset + 1}–{offset + len(records)} 条 / items {offset + 1}–{offset + len(records)}"))
    if pager:
        blocks.append({"type": "actions", "block_id": "home_pager", "elements": pager})
    return {"type": "home", "callback_id": "minpcode_home", "private_metadata": str(offset), "blocks": blocks}


def _record_blocks(record: CodeRecord, public_url: str | None, thumbs: bool,
                   live: live_home.Live | None = None,
                   posters: list[PosterInfo] | None = None, zone: ZoneInfo = UTC_ZONE) -> list[dict[str, Any]]:
    type_zh, type_en = TYPE_LABELS[record.type]
    status_zh, status_en = STATUS_LABELS[record.status]
    icon = {Status.DONE: "✅", Status.PENDING: "⏳", Status.FAILED: "⚠️", Status.DELETED: "🗑"}[record.status]
    lines = [
        f"*{record.name or record.id}*  `{record.id}`",
        f"{type_zh} / {type_en}{' · GrowingIO' if record.provider.value == 'gio' else ''} · {icon} {status_zh} / {status_en}",
        f"`{record.page or '(首页 / home)'}`" + (f"  scene `{record.scene}`" if record.scene else ""),
    ]
    if record.campaign or record.channel:
        lines.append(f"{record.campaign or '-'} · {record.channel or '-'}")
    if record.link:
        lines.append(record.link)
    if live is not None:
        lines.append(live_home.live_line(live))
    has_image = bool(record.image_sha256) and record.status is Status.DONE
    url = links.code_image_url(public_url, record.id) if public_url else None  # no link rather than a dead one
    first = section("\n".join(lines), block_id=f"code_{record.id}")
    if has_image and thumbs and url:
        first["accessory"] = {"type": "image", "image_url": url, "alt_text": record.name or record.id}
    notes = [f"{record.requested_by_name or record.requested_by} · {local_time(record.created_at, zone)}"]
    why = record.error_message if record.status is Status.FAILED else None
    if why is not None:
        notes.append(why.render(None, sep=" / ")[:300])
    if record.tracking_url:
        notes.append(record.tracking_url[:300])
    elements = []
    if has_image and url:
        elements.append(button("⬇ 下载 / Download", DOWNLOAD_ACTION, url=url, value=record.id))
    if live is not None:
        elements += live_home.live_buttons(record, live)
    for n, poster in enumerate((posters or [])[:POSTER_LINKS] if public_url else []):  # newest posters, a link each
        elements.append(button(f"🖼 海报 / Poster {poster.template} {poster.format.upper()}",
                               f"home_poster_{n}_download", url=links.poster_url(str(public_url), poster.id, poster.format), value=poster.id))
    elements.append(button("✏️ 改名 / Rename", RENAME_ACTION, value=record.id))
    elements.append(button("🗑 删除 / Delete", DELETE_ACTION, value=record.id, style="danger", confirm={
        "title": plain("删除这个码？/ Delete this code?", 100),
        "text": plain(f"{record.name or record.id}：从列表中移除；已印出的码仍然可以扫。 / Removed from the list; "
                      "printed codes keep working.", 300),
        "confirm": plain("删除 / Delete", 30),
        "deny": plain("取消 / Cancel", 30),
        "style": "danger",
    }))
    return [first, context(*notes), {"type": "actions", "block_id": f"act_{record.id}", "elements": elements},
            {"type": "divider"}]


class HomeTab:
    def __init__(self, service: Service, client: AsyncWebClient, public_url: str | None) -> None:
        self.service = service
        self.client = client
        self.public_url = public_url
        self.offsets: dict[str, int] = {}
        self.opened: set[str] = set()

    async def publish(self, requester: Requester, *, offset: int | None = None, banner: str | None = None) -> None:
        user = requester.user_id
        start = self.offsets.get(user, 0) if offset is None else max(0, offset)
        records = self.service.recent(requester, limit=PAGE_SIZE + 1, offset=start, everyone=False)
        if not records and start > 0:  # the last item of a page went away: show the page before
            start = max(0, start - PAGE_SIZE)
            records = self.service.recent(requester, limit=PAGE_SIZE + 1, offset=start, everyone=False)
        shown = records[:PAGE_SIZE]
        counts = self.service.posters.counts([r.id for r in shown])
        posters = {r.id: self.service.posters.for_code(r.id) for r in shown if counts.get(r.id)}
        view = home_view(shown, offset=start, more=len(records) > PAGE_SIZE,
                         admin=self.service.permissions.is_admin(requester), public_url=self.public_url, banner=banner,
                         live=self.service.live.totals(shown), posters=posters, zone=self.service.settings.zone)
        try:
            await self.client.views_publish(user_id=user, view=view)
        except SlackApiError as exc:
            log.warning("Home tab for %s not published: %s", user, slack_error(exc))
            return
        self.offsets[user] = start
        self.opened.add(user)

    async def refresh(self, requester: Requester, banner: str | None = None) -> None:
        """Re-publish the tab of someone who has opened it (after a change they made)."""
        if requester.user_id in self.opened:
            await self.publish(requester, banner=banner)

    async def open_rename(self, trigger_id: str, code_id: str, requester: Requester) -> None:
        lang = requester.lang
        try:
            record = self.service.get(code_id)
        except MinpcodeError as exc:
            await self.publish(requester, banner="⚠️ " + say(lang, exc.zh, exc.en))
            return
        if not self.service.permissions.may_manage(record, requester):
            who = record.requested_by_name or record.requested_by
            await self.publish(requester, banner="⚠️ " + say(
                lang, f"只有创建者（{who}）或管理员可以改名。", f"Only its creator ({who}) or an admin may rename it."))
            return
        await self.client.views_open(trigger_id=trigger_id, view=views.rename_view(record, record.id))

    def rename(self, code_id: str, name: str, requester: Requester) -> dict[str, str] | None:
        """Rename from the modal; field errors for ``response_action: errors``, or None when done."""
        try:
            self.service.rename(code_id, name or "", requester)
        except FieldError as exc:
            return {"name": say(requester.lang, exc.zh, exc.en)}
        except InputError as exc:
            return {"name": say(requester.lang, exc.zh, exc.en)}
        return None

    async def delete(self, code_id: str, requester: Requester) -> None:
        lang = requester.lang
        try:
            record = self.service.delete(code_id, requester)
        except MinpcodeError as exc:
            await self.publish(requester, banner="⚠️ " + say(lang, exc.zh, exc.en))
            return
        await self.publish(requester, banner="🗑 " + say(
            lang, f"已删除 {record.name or record.id}。已印出的码仍然可以扫。",
            f"Deleted {record.name or record.id}. Printed codes keep working."))
