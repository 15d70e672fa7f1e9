"""Live codes on the App Home tab: scans beside each live code, and repoint / pause / resume buttons.

home.py draws each code; for a live one it adds :func:`live_line` and :func:`live_buttons`. The buttons
and the repoint modal are wired here (:func:`register`), against the Slack front end's Home tab, so the
listeners of the rest of the app stay as they were.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from slack_bolt.async_app import AsyncApp

from bot.errors import FieldError, MinpcodeError
from bot.models import CodeRecord, Requester
from handlers.slack import parse
from handlers.slack.views import button, input_block, modal, say, section, text_input

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from handlers.slack.parse import Origin

log = logging.getLogger("minpcode.slack.live")

REPOINT_ACTION = "home_live_repoint"
PAUSE_ACTION = "home_live_pause"
RESUME_ACTION = "home_live_resume"
REPOINT_CALLBACK = "minpcode_repoint"

Live = tuple[str, bool, int]  # destination, paused, total scans (service.live.totals)


def live_line(live: Live) -> str:
    destination, paused, scans = live
    state = "⏸ 已暂停 / paused" if paused else "🔁 活码 / live"
    where = f"`{destination[:200]}`" if destination else "空码 / blank"  # a blank code: bound by repoint
    return f"{state} → {where} · 扫码 {scans} 次 / {scans} scans"


def live_buttons(record: CodeRecord, live: Live) -> list[dict[str, Any]]:
    _, paused, _ = live
    toggle = (button("▶️ 恢复 / Resume", RESUME_ACTION, value=record.id) if paused
              else button("⏸ 暂停 / Pause", PAUSE_ACTION, value=record.id))
    return [button("🔀 改指向 / Repoint", REPOINT_ACTION, value=record.id), toggle]


def repoint_view(record: CodeRecord, destination: str, routes: list[str] | None = None) -> dict[str, Any]:
    """The repoint form; a code with routes lists them, and says a new page here replaces them (the chat's
    ``repoint <id> pages/a=70 pages/b=30`` and the API set routes)."""
    said = "\n".join(f"· {line[:300]}" for line in routes or [])
    if said:
        said = ("\n路由 / routes:\n" + said + "\n保存一个页面会取代这些路由。 / Saving a page here replaces these routes.")
    return modal(REPOINT_CALLBACK, "改指向 / Repoint", "保存 / Save", "取消 / Cancel", record.id, [
        section(f"`{record.id}` · {record.name or '-'}\n现在 / now: `{destination[:500]}`{said}"),
        input_block("page", "新的目标页面 / New destination", text_input("pages/coupon/get?id=1", initial=destination,
                                                                        max_length=1024),
                    hint="页面路径加 ?参数，最多 1024 个字符；图片不变，无需重印。 / A page with its ?query, at "
                         "most 1024 characters; the image stays the same."),
    ])


class LiveHost(Protocol):
    home: Any  # handlers.slack.home.HomeTab (which draws these buttons: named loosely to keep one import direction)

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str, *, urgent: bool = False) -> Any: ...
    def cached_requester(self, origin: Origin) -> Requester: ...


async def open_repoint(host: LiveHost, trigger_id: str, code_id: str, requester: Requester) -> None:
    home = host.home
    try:
        record = home.service.get(code_id)
        if not home.service.permissions.may_manage(record, requester):
            who = record.requested_by_name or record.requested_by
            raise FieldError("page", f"只有创建者（{who}）或管理员可以改指向。", f"Only its creator ({who}) or an admin may repoint it.")
        view = home.service.live.view(record)
        if view is None:
            raise FieldError("page", "这不是活码。", "This is not a live code.")
    except MinpcodeError as exc:
        await home.publish(requester, banner="⚠️ " + say(requester.lang, exc.zh, exc.en))
        return
    routes = [*view.routes.lines("zh"), *view.routes.lines("en")] if view.routes is not None else None
    await home.client.views_open(trigger_id=trigger_id, view=repoint_view(record, view.destination, routes))


async def set_paused(host: LiveHost, code_id: str, paused: bool, requester: Requester) -> None:
    lang = requester.lang
    try:
        view = (host.home.service.live.pause if paused else host.home.service.live.resume)(code_id, requester)
    except MinpcodeError as exc:
        await host.home.publish(requester, banner="⚠️ " + say(lang, exc.zh, exc.en))
        return
    banner = (say(lang, f"已暂停 {code_id}：扫码打开 {view.leads_to}。", f"Paused {code_id}: scans open {view.leads_to}.")
              if paused else say(lang, f"已恢复 {code_id}：扫码打开 {view.destination}。",
                                 f"Resumed {code_id}: scans open {view.destination}."))
    await host.home.publish(requester, banner=("⏸ " if paused else "▶️ ") + banner)


def repoint_submitted(host: LiveHost, view: dict[str, Any], requester: Requester) -> dict[str, str] | None:
    page = parse.state_values((view.get("state") or {}).get("values") or {}).get("page")
    code_id = str(view.get("private_metadata") or "")
    try:
        host.home.service.live.repoint(code_id, str(page or ""), requester)
    except MinpcodeError as exc:
        return {"page": say(requester.lang, exc.zh, exc.en)}
    host.spawn(host.home.publish(requester, banner="🔀 " + say(
        requester.lang, f"已改指向 {code_id}。", f"Re-pointed {code_id}.")), "refreshing the Home tab")
    return None


def register(app: AsyncApp, host: LiveHost) -> None:
    @app.action(REPOINT_ACTION)
    async def on_repoint(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        requester = host.cached_requester(parse.action_origin(body))
        host.spawn(open_repoint(host, str(body.get("trigger_id")), str(action.get("value")), requester),
                   "opening the repoint form", urgent=True)

    @app.action(PAUSE_ACTION)
    async def on_pause(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        requester = host.cached_requester(parse.action_origin(body))
        host.spawn(set_paused(host, str(action.get("value")), True, requester), "pausing a live code")

    @app.action(RESUME_ACTION)
    async def on_resume(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        requester = host.cached_requester(parse.action_origin(body))
        host.spawn(set_paused(host, str(action.get("value")), False, requester), "resuming a live code")

    @app.view(REPOINT_CALLBACK)
    async def on_repoint_submitted(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        errors = repoint_submitted(host, view, host.cached_requester(parse.action_origin(body)))
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()


__all__ = ["PAUSE_ACTION", "REPOINT_ACTION", "REPOINT_CALLBACK", "RESUME_ACTION", "live_buttons", "live_line",
           "register", "repoint_view"]
