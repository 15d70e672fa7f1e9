"""Bolt listeners, one small registration per kind of payload: slash commands, messages (the DM, @mentions),
the code form, App Home.

Every listener is thin: it reads the payload, acks (with field errors, options or a "working…" line
when that is the answer) and hands anything slow to ``bot.spawn``. The work itself lives on the bot
(:class:`~handlers.slack.app.SlackBot`), which this module knows only as the :class:`SlackHost` it needs.
"""

from __future__ import annotations

import re
from collections.abc import Coroutine
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from slack_bolt.async_app import AsyncApp, AsyncBoltContext

from bot.concurrency import TtlSet
from bot.errors import UsageError
from bot.fields import CodeAsk
from bot.models import CodeRecord, CodeRequest
from handlers import grammar
from handlers.slack import home as home_tab
from handlers.slack import parse, views
from handlers.slack.batches import SlackBatches
from handlers.slack.parse import Origin
from handlers.slack.promises import Kind, parsed_value
from handlers.slack.views import say

MUTATING_VERBS = frozenset({"new", "rename", "delete"})
OPTIONS_TIMEOUT = 1.5  # a cold campaign/channel list before a block_suggestion ack


class SlackHost(Protocol):
    """What the listeners ask of the Slack front end."""

    recent: TtlSet[tuple[str, ...]]
    batches: SlackBatches
    metadata_key: bytes

    @property
    def zone(self) -> ZoneInfo: ...  # Settings.zone: the one time zone times are shown in

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str, *, urgent: bool = False) -> Any: ...
    def promise(self, kind: Kind, origin: Origin, value: Any, what: str, *, seen: str | None = None) -> bool: ...
    def cached_lang(self, user_id: str) -> str | None: ...
    def default_kind(self) -> str: ...
    async def names(self, kind: str, *, timeout: float | None = None) -> list[str]: ...
    async def check_form(self, ask: CodeAsk, present: list[str],
                         lang: str | None) -> tuple[dict[str, str] | None, CodeRequest | None]: ...
    async def existing(self, prepared: CodeRequest) -> CodeRecord | None: ...
    def check_poster(self, poster: dict[str, Any], prepared: CodeRequest | None, present: list[str],
                     lang: str | None) -> dict[str, str] | None: ...
    async def open_form(self, trigger_id: str, origin: Origin) -> None: ...
    async def update_form(self, view: dict[str, Any]) -> None: ...
    async def run_command(self, parsed: grammar.Command | UsageError, origin: Origin) -> None: ...
    async def make_code(self, ask: CodeAsk, origin: Origin) -> None: ...
    async def post_existing(self, code_id: str, origin: Origin) -> None: ...
    async def show_home(self, origin: Origin, *, offset: int | None = None, banner: str | None = None) -> None: ...
    async def home_rename(self, trigger_id: str, code_id: str, origin: Origin) -> None: ...
    async def home_delete(self, code_id: str, origin: Origin) -> None: ...
    def rename_submitted(self, view: dict[str, Any], origin: Origin) -> dict[str, str] | None: ...


def register(app: AsyncApp, bot: SlackHost) -> None:
    register_commands(app, bot)
    register_messages(app, bot)
    register_form(app, bot)
    register_home(app, bot)


def _parse(text: str) -> grammar.Command | UsageError:
    """The one parse of a slash command's text: its verb decides the ack, and the work after it runs it as is."""
    try:
        return grammar.parse(text)
    except UsageError as exc:
        return exc


def _where(origin: Origin, meta: dict[str, Any]) -> Origin:
    """The origin a form was opened from (its channel and response URL ride in the metadata)."""
    return Origin(origin.team_id, origin.user_id, origin.user_name, meta.get("c"), meta.get("r"))


def register_commands(app: AsyncApp, bot: SlackHost) -> None:
    @app.command(re.compile(r"^/"))
    async def on_command(ack: Any, body: dict[str, Any]) -> None:
        origin = parse.command_origin(body)
        text = (body.get("text") or "").strip()
        lang = bot.cached_lang(origin.user_id)
        parsed = _parse(text) if text else None
        verb = parsed.verb if isinstance(parsed, grammar.Command) else None
        # a mutating command is one per text; anything else is one per trigger (a retyped "list" runs again)
        nonce = str(body.get("command")) if verb in MUTATING_VERBS else str(body.get("trigger_id"))
        if not bot.recent.first(("cmd", origin.team_id, origin.user_id, nonce, text)):
            await ack(response_type="ephemeral",
                      text=say(lang, "同样的命令刚收到过，正在处理。", "Same command just received; already on it."))
            return
        if parsed is None:
            await ack()
            bot.spawn(bot.open_form(str(body.get("trigger_id")), origin), "opening the form", urgent=True)
            return
        if isinstance(parsed, grammar.Command) and verb == "bulk":
            if not parsed.args:  # bulk alone: the form with a file input
                await ack()
                bot.spawn(bot.batches.open_form(str(body.get("trigger_id")), origin), "opening the batch form",
                          urgent=True)
                return
            # bulk / 批量 and the pasted rows: a dry run comes back with Start and Cancel
            await ack(response_type="ephemeral", text=say(lang, "正在检查表格…", "Checking the sheet…"))
            bot.promise("bulk_text", origin, parsed.args[0], "checking a pasted sheet")
            return
        if verb == "new":
            await ack(response_type="ephemeral", text=views.working_text(lang))
        else:
            await ack()
        bot.promise("run_text", origin, parsed_value(parsed), f"/minpcode {verb or '?'}")


def register_messages(app: AsyncApp, bot: SlackHost) -> None:
    """A text in the bot's DM (``message.im``) and an @mention in a channel (``app_mention``) are the same
    text commands as ``/minpcode …``, answered where they were written: in the DM, or in a thread under the
    mention (slash commands cannot be used in threads; a mention inside a thread answers in that thread)."""

    @app.event("message")
    async def on_direct_message(event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext) -> None:
        # https://docs.slack.dev/reference/events/message.im/: a DM is told apart by channel_type "im"
        if event.get("channel_type") == "im" and parse.from_a_person(event):
            take_message(bot, body, event, event.get("thread_ts"), context.bot_user_id)

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext) -> None:
        # https://docs.slack.dev/reference/events/app_mention: never sent for a DM (message.im is), so this
        # is a channel; answered under the mention, or in the thread the mention was written in
        if parse.from_a_person(event):
            take_message(bot, body, event, event.get("thread_ts") or event.get("ts"), context.bot_user_id)


def take_message(bot: SlackHost, body: dict[str, Any], event: dict[str, Any], thread_ts: str | None,
                 bot_user_id: str | None) -> None:
    """One message as a text command, saved with its event id (a retried delivery is dropped) and run after the ack:
    a CSV/XLSX with ``bulk`` starts a batch as the form does, ``bulk`` and rows as ``/minpcode bulk`` does,
    any other text is the command it says (nothing, or ``bulk`` alone, is its help: no form opens from a
    message)."""
    origin = parse.message_origin(body, event, thread_ts)
    if not origin.user_id or not origin.channel_id:
        return
    seen = "slack-event:" + str(body.get("event_id") or f"{origin.channel_id}:{event.get('ts')}")
    text = parse.message_text(str(event.get("text") or ""), bot_user_id)
    files = [f for f in event.get("files") or [] if isinstance(f, dict)]
    if files:
        if set(grammar.words(text)) & grammar.names("bulk"):
            bot.promise("bulk_files", origin, files, "checking a sheet sent in a message", seen=seen)
        return  # a file without bulk is not a command
    parsed = _parse(text) if text else grammar.Command(verb="help")
    if isinstance(parsed, grammar.Command) and parsed.verb == "bulk":
        if parsed.args:
            bot.promise("bulk_text", origin, parsed.args[0], "checking a pasted sheet", seen=seen)
            return
        parsed = grammar.Command(verb="help", args=["bulk"])
    verb = parsed.verb if isinstance(parsed, grammar.Command) else "?"
    bot.promise("run_text", origin, parsed_value(parsed), f"a message: {verb}", seen=seen)


def register_form(app: AsyncApp, bot: SlackHost) -> None:
    @app.action(re.compile(r"^(type|campaign|channel|poster)$"))
    async def on_form_change(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        view = body.get("view") or {}
        if view.get("callback_id") == views.FORM_CALLBACK:
            bot.spawn(bot.update_form(view), "updating the form")

    @app.options(re.compile(r"^(campaign|channel)$"))
    async def on_options(ack: Any, body: dict[str, Any]) -> None:
        names = await bot.names(str(body.get("action_id")), timeout=OPTIONS_TIMEOUT)
        await ack(options=views.suggestion_options(names, str(body.get("value") or "")))

    @app.view(views.FORM_CALLBACK)
    async def on_form_submit(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        origin = parse.action_origin(body)
        key = ("view", origin.team_id, origin.user_id, str(view.get("id")))
        if key in bot.recent:
            await ack()
            return
        meta = parse.checked(parse.load_metadata(view), bot.metadata_key, origin.user_id)
        lang = bot.cached_lang(origin.user_id)
        values = (view.get("state") or {}).get("values") or {}
        ask = parse.form_ask(values, bot.default_kind())
        errors, prepared = await bot.check_form(ask, views.present_blocks(view), lang)
        if ask.poster is not None and not errors:
            errors = bot.check_poster(ask.poster.data, prepared, views.present_blocks(view), lang)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        where = _where(origin, meta)
        if prepared is not None:
            found = await bot.existing(prepared)
            if found is not None:
                metadata = parse.dump_metadata(parse.sealed({"c": where.channel_id, "r": where.response_url,
                                                             "id": found.id, "f": ask.model_dump(mode="json")},
                                                            bot.metadata_key,
                                                            origin.user_id))
                await ack(response_action="push", view=views.reuse_view(found, metadata, bot.zone))
                return
        if not bot.recent.first(key):
            await ack()
            return
        await ack()
        bot.promise("make_code", where, ask.model_dump(mode="json"), "making a code from the form")

    @app.view(views.REUSE_CALLBACK)
    async def on_reuse(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        origin = parse.action_origin(body)
        await ack(response_action="clear")
        if not bot.recent.first(("view", origin.team_id, origin.user_id, str(view.get("id")))):
            return
        meta = parse.checked(parse.load_metadata(view), bot.metadata_key, origin.user_id)
        where = _where(origin, meta)
        if isinstance(meta.get("f"), dict):
            bot.promise("make_code", where, meta["f"], "reusing a code")
        elif meta.get("id"):
            bot.spawn(bot.post_existing(str(meta["id"]), where), "reusing a code")


def register_home(app: AsyncApp, bot: SlackHost) -> None:
    @app.event("app_home_opened")
    async def on_home_opened(event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home":
            return
        if not bot.recent.first(("event", str(body.get("event_id") or event.get("event_ts")))):
            return
        user = str(event.get("user"))
        bot.spawn(bot.show_home(Origin(str(body.get("team_id") or ""), user)), "publishing the Home tab")

    @app.action(home_tab.NEW_ACTION)
    async def on_home_new(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        bot.spawn(bot.open_form(str(body.get("trigger_id")), parse.action_origin(body)), "opening the form",
                  urgent=True)

    @app.action(re.compile(r"^home_page"))
    async def on_home_page(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        try:
            offset = int(action.get("value") or 0)
        except ValueError:
            offset = 0
        bot.spawn(bot.show_home(parse.action_origin(body), offset=offset), "paging the Home tab")

    @app.action(home_tab.RENAME_ACTION)
    async def on_home_rename(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        bot.spawn(bot.home_rename(str(body.get("trigger_id")), str(action.get("value")), parse.action_origin(body)),
                  "opening the rename form", urgent=True)

    @app.action(home_tab.DELETE_ACTION)
    async def on_home_delete(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        bot.spawn(bot.home_delete(str(action.get("value")), parse.action_origin(body)), "deleting a code")

    @app.action(re.compile(r"download$"))
    async def on_download(ack: Any) -> None:
        await ack()  # a link button still sends block_actions, and each must be acked

    @app.view(views.RENAME_CALLBACK)
    async def on_rename(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        errors = bot.rename_submitted(view, parse.action_origin(body))
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()


__all__ = ["MUTATING_VERBS", "OPTIONS_TIMEOUT", "SlackHost", "register", "register_commands", "register_form",
           "register_home", "register_messages", "take_message"]
