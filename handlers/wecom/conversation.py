"""The WeCom conversation: text commands, and the new-code form as card → page path (→ scene) → code.

WeCom cards have dropdowns but no text inputs (no template card type of
https://developer.work.weixin.qq.com/document/path/90236 has one), so ``新建`` / ``new`` with no
fields runs a short wizard per member:

1. ``card``  — a ``multiple_interaction`` card (:mod:`.cards`) with code type, campaign and channel. On
   submit the card is greyed out through ``update_template_card`` (so it cannot be submitted twice);
   choosing ``更多…`` in a dropdown sends a follow-up card with the next page of choices.
2. ``page``  — the next text message is the page path (checked at once; a bad one is asked again).
3. ``scene`` — B codes only: the next text message is the scene.

Then the code is made through the shared core and sent back (:mod:`.deliver`). ``取消`` / ``cancel``
drops the form; any text command still works in the middle of it (only ``新建`` starts a new form).

**State**: one draft per member, dropped after :data:`FORM_TTL` of silence; each is written through the
service after every message (:mod:`.drafts`), so a restart loses no form in progress. Messages of one
member are handled one at a time, in order; different members run concurrently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from bot.codes import UNEXPECTED
from bot.concurrency import KeyedLocks, TtlSet
from bot.errors import FieldError, InvalidRequest, MinpcodeError, UpstreamError, UsageError
from bot.fields import CodeAsk
from bot.models import CodeRequest, Requester
from bot.service import Service
from handlers import commands, grammar
from handlers.grammar import CANCEL_WORDS, START_WORDS

from . import drafts as stored
from .batches import WeComBatches
from .cards import (
    KINDS,
    MORE_PREFIX,
    Q_CAMPAIGN,
    Q_CHANNEL,
    Q_KIND,
    SUBMIT_KEY,
    Choice,
    find_choice,
    form_card,
    kinds,
    more_card,
    new_task_id,
    options_page,
    rank,
)
from .client import Target
from .deliver import Sink
from .drafts import Draft
from .xml import (
    EnterAgentEvent,
    EventMessage,
    FileMessage,
    InboundMessage,
    MenuClickEvent,
    TemplateCardEvent,
    TextMessage,
)

__all__ = ["FORM_TTL", "Conversation", "Draft"]

log = logging.getLogger("minpcode.wecom.conversation")

FORM_TTL = 30 * 60.0
WELCOME_EVERY = 24 * 3600.0
SUBMITTED = "已提交 ✓"
STALE = "已失效"
_NEW = grammar.names("new")
_HOME = {"-", "首页", "home"}
_VERBS = grammar.names()


class Conversation:
    """Turns each inbound message into core calls and answers. ``handle`` is the callback's work function."""

    def __init__(self, service: Service, deliver: Sink, *, ttl: float = FORM_TTL,
                 clock: Callable[[], float] = time.monotonic, batches: WeComBatches | None = None) -> None:
        self.service = service
        self.deliver = deliver
        self.batches = batches
        self.ttl = ttl
        self.clock = clock
        self.drafts: dict[str, Draft] = {}
        # What the database held for each member's draft when this process last wrote or read it: a different
        # row there now means another replica has moved the form on, or ended it (_draft).
        self._saved: dict[str, dict[str, Any]] = {}
        # task ids already submitted or replaced, remembered well past a form's life
        self._finished: TtlSet[str] = TtlSet(3 * ttl, clock=clock)
        self._locks: KeyedLocks[str] = KeyedLocks()
        self._welcomed: TtlSet[str] = TtlSet(WELCOME_EVERY, clock=clock)
        self._last_sweep = 0.0

    # -- entry point ------------------------------------------------------------------------------------------

    async def handle(self, message: InboundMessage) -> None:
        """Handle one message; never raises (failures are told to the member when possible, and logged)."""
        user = message.from_user_name
        if not user:
            return
        target = Target(user, (message.fields.get("ChatId") or "").strip() or None)
        try:
            async with self._locks.hold(user):
                self._sweep()
                try:
                    await self._dispatch(message, target)
                finally:
                    self._keep(user)
        except MinpcodeError as exc:
            log.info("wecom: %s from %s ended with %s", message.msg_type, user, type(exc).__name__)
            await self._tell(target, exc.zh, exc.en)
        except Exception:
            log.exception("wecom: handling a %s from %s failed", message.msg_type, user)
            await self._tell(target, *UNEXPECTED)

    async def _dispatch(self, message: InboundMessage, target: Target) -> None:
        requester = Requester(chat="wecom", user_id=target.user, channel_id=target.chat_id, lang="zh")
        if isinstance(message, TemplateCardEvent):
            await self.on_card(message)
        elif isinstance(message, TextMessage):
            await self.on_text(message.content, target, requester)
        elif isinstance(message, MenuClickEvent):
            key = message.event_key
            if key.startswith("cmd:") and key[4:].strip():
                await self.on_text(key[4:], target, requester)
        elif isinstance(message, FileMessage) and self.batches is not None and message.media_id:
            await self.batches.from_file(message.media_id, target, requester)
        elif isinstance(message, EnterAgentEvent):
            await self.welcome(target)
        elif isinstance(message, EventMessage):
            log.debug("wecom: event %s ignored", message.event)
        else:
            await self.deliver.say(target, "我只看得懂文字命令。发送「帮助」查看命令，或「新建」打开表单。",
                                   "I only understand text commands. Send help for the list, or new for the form.")

    # -- text -------------------------------------------------------------------------------------------------

    async def on_text(self, text: str, target: Target, requester: Requester) -> None:
        said = grammar.words(text)
        draft = self._draft(target.user)
        try:  # the one parse of the message; a form's answer (a page path) is no command and is not run as one
            parsed: grammar.Command | UsageError = grammar.parse(text)
        except UsageError as exc:
            parsed = exc
        if self.batches is not None and await self._batch_text(parsed, said, draft, target, requester):
            return
        if grammar.is_cancel(text):
            if draft is None:
                await self.deliver.say(target, "现在没有进行中的表单。", "There is no form in progress.")
            else:
                self._drop(draft)
                await self.deliver.say(target, "已取消新建。", "The new-code form is cancelled.")
            return
        if len(said) == 1 and said[0] in _NEW:
            await self.start(target, requester)
            return
        if draft is not None and draft.step in ("page", "scene") and not (said and said[0] in _VERBS):
            draft.target = target
            await self._answer(draft, text.strip())
            return
        if isinstance(parsed, UsageError):
            reply = commands.failure(parsed)
        else:
            reply = await commands.execute(self.service, parsed, requester)
        await self.deliver.reply(target, reply)

    async def _batch_text(self, parsed: grammar.Command | UsageError, said: list[str], draft: Draft | None,
                          target: Target, requester: Requester) -> bool:
        """批量 + rows, or 开始 / 取消 for the member's batch waiting after its dry run (a form goes first)."""
        assert self.batches is not None
        if isinstance(parsed, grammar.Command) and parsed.verb == "bulk":
            await self.batches.dry_run(parsed.args[0] if parsed.args else "", target, requester)
            return True
        if len(said) != 1 or draft is not None or said[0] not in START_WORDS | CANCEL_WORDS:
            return False
        waiting = self.batches.waiting(requester)
        if waiting is None:
            return False
        if said[0] in START_WORDS:
            await self.batches.start(waiting, target)
        else:
            await self.batches.cancel(waiting, target, requester)
        return True

    async def welcome(self, target: Target) -> None:
        if not self._welcomed.first(target.user):
            return
        await self.deliver.text(target, "你好！发送「新建」打开表单，或直接发送命令。\nHello! Send new for the form, "
                                "or type a command.\n\n" + grammar.help_text("zh", chat="wecom"))

    # -- the form ---------------------------------------------------------------------------------------------

    async def start(self, target: Target, requester: Requester) -> None:
        """Send the form card and remember the draft (replacing any earlier one)."""
        campaigns, channels = await self._choices()
        task_id = new_task_id()
        old = self.drafts.get(target.user)
        if old is not None:
            self._drop(old)
        draft = Draft(target=target, requester=requester, task_id=task_id, expires_at=self.clock() + self.ttl,
                      campaigns=campaigns, channels=channels)
        self.drafts[target.user] = draft
        try:
            await self.deliver.card(target.user, form_card(task_id, kinds(bool(campaigns)), campaigns or None,
                                                           channels or None))
        except BaseException:
            self._drop(draft)
            raise

    async def _choices(self) -> tuple[list[Choice], list[Choice]]:
        """Campaigns and channels from GrowingIO (cached by the core), most used first; empty without GIO
        or when GrowingIO's lists are unavailable (the service logs why): WeChat codes are offered then."""
        found_campaigns = await self.service.options("campaign")
        found_channels = await self.service.options("channel")
        if not found_campaigns or not found_channels:
            return [], []
        recent = self.service.recent(limit=200)
        campaigns = rank([Choice(o.value, o.label) for o in found_campaigns],
                         [v for r in recent for v in (r.campaign, r.campaign_id)])
        channels = rank([Choice(o.value, o.label) for o in found_channels],
                        [v for r in recent for v in (r.channel, r.channel_id)])
        if not campaigns or not channels:
            return [], []
        return campaigns, channels

    async def on_card(self, event: TemplateCardEvent) -> None:
        user = event.from_user_name
        target = Target(user)
        if event.event_key != SUBMIT_KEY:
            log.info("wecom: card event key %r ignored", event.event_key)
            return
        draft = self._draft(user)
        if draft is None or draft.task_id != event.task_id or draft.step != "card":
            await self._close_card(event, STALE)
            if event.task_id in self._finished:
                await self.deliver.say(target, "这张卡片已经提交过了。", "That card was already submitted.")
            else:
                await self.deliver.say(target, "这张表单已过期，请重新发送「新建」。",
                                       "That form has expired; send new to start again.")
            return
        self._finished.first(event.task_id)
        await self._close_card(event, SUBMITTED)
        draft.expires_at = self.clock() + self.ttl
        selected = event.selected()
        if draft.kind is None:
            chosen = (selected.get(Q_KIND) or [""])[0]
            draft.kind = KINDS.get(chosen) or kinds(bool(draft.campaigns))[0]
        paging: dict[str, tuple[list[Choice], int]] = {}
        if draft.kind.gio:
            for key, choices in ((Q_CAMPAIGN, draft.campaigns), (Q_CHANNEL, draft.channels)):
                if getattr(draft, key) is not None:
                    continue
                option = (selected.get(key) or [""])[0]
                if option.startswith(MORE_PREFIX) and option[len(MORE_PREFIX):].isdigit():
                    draft.pages[key] = int(option[len(MORE_PREFIX):])
                    paging[key] = (choices, draft.pages[key])
                    continue
                choice = find_choice(choices, option) if option else None
                if choice is None:  # WeCom preselects the first option; fall back to it
                    first = options_page(choices, draft.pages.get(key, 0))[0][0]["id"]
                    choice = find_choice(choices, first)
                setattr(draft, key, choice)
        if paging:
            draft.task_id = new_task_id()
            await self.deliver.card(user, more_card(draft.task_id, paging.get(Q_CAMPAIGN), paging.get(Q_CHANNEL)))
            return
        draft.step = "page"
        await self._ask(draft)

    async def _close_card(self, event: TemplateCardEvent, label: str) -> None:
        """Grey the clicked card out for this member (one use of the event's response code)."""
        if not event.response_code:
            return
        try:
            await self.deliver.close_card(event, label)
        except UpstreamError as exc:
            log.warning("wecom: card %s not updated: %s %s", event.task_id, type(exc).__name__, exc.code)

    async def _ask(self, draft: Draft, problems: list[FieldError] | None = None) -> None:
        zh, en = [], []
        if problems:
            zh.append("请修改后重新发送：\n" + "\n".join(f"• {p.zh}" for p in problems))
            en.append("Please fix and send again:\n" + "\n".join(f"• {p.en}" for p in problems))
        else:
            head_zh, head_en = draft.summary()
            zh.append(head_zh)
            en.append(head_en)
        kind = draft.kind or KINDS["wx-B"]
        if draft.step == "scene":
            zh.append("请发送 scene：1 到 32 个字符，只用数字、英文字母和 !#$&'()*+,/:;=?@-._~，例如 id=42。回复「取消」退出。")
            en.append("Send the scene: 1 to 32 characters, digits, letters and !#$&'()*+,/:;=?@-._~ only, "
                      "e.g. id=42. Reply cancel to stop.")
        elif kind.type == "B":
            zh.append("请发送页面路径，例如 pages/index/index（不能带 ?参数，参数稍后放进 scene；发送 - 表示首页）。"
                      "回复「取消」退出。")
            en.append("Send the page path, e.g. pages/index/index (no ?query: parameters go in the scene next; "
                      "send - for the home page). Reply cancel to stop.")
        else:
            zh.append("请发送页面路径，例如 pages/index/index?id=42（可以带 ?参数）。回复「取消」退出。")
            en.append("Send the page path, e.g. pages/index/index?id=42 (a ?query is fine). Reply cancel to stop.")
        await self.deliver.say(draft.target, "\n".join(zh), "\n".join(en))

    async def _answer(self, draft: Draft, value: str) -> None:
        draft.expires_at = self.clock() + self.ttl
        kind = draft.kind or KINDS["wx-B"]
        if draft.step == "page":
            draft.page = "" if kind.type == "B" and value.casefold() in _HOME else value
            if kind.type == "B":
                problems = _field_problems({**draft.fields(), "scene": "x"}, {"page"})
                if problems:
                    await self._ask(draft, problems)
                    return
                draft.step = "scene"
                await self._ask(draft)
                return
        else:
            draft.scene = value
        await self._submit(draft)

    async def _submit(self, draft: Draft) -> None:
        try:
            reply = await commands.new(self.service, CodeAsk(fields=draft.fields()), draft.requester)
        except InvalidRequest as exc:
            fixable = [err for err in exc.errors if err.field in ("page", "scene")]
            if fixable and len(fixable) == len(exc.errors):
                draft.step = "page" if any(err.field == "page" for err in fixable) else "scene"
                await self._ask(draft, fixable)
                return
            self._drop(draft)
            raise
        except BaseException:
            self._drop(draft)
            raise
        self._drop(draft)
        await self.deliver.reply(draft.target, reply)

    # -- bookkeeping ------------------------------------------------------------------------------------------

    def _keep(self, user: str) -> None:
        """Write the member's draft through the service (or forget it), so a restart does not lose it."""
        draft = self.drafts.get(user)
        if draft is not None:
            data = stored.dump(draft)
            self.service.drafts.save(stored.CHAT, user, data, draft.expires_at - self.clock())
            self._saved[user] = data

    def _draft(self, user: str) -> Draft | None:
        # The database is the truth, read on every message: behind a load balancer the member's previous message
        # may have reached another replica, which moved the form on or finished it (issue 25). A draft this
        # process started in this very message is not written yet (_keep writes it at the end): that one stays.
        found = self.service.drafts.load(stored.CHAT, user)
        mine = self.drafts.get(user)
        if found is not None and (mine is None or found[0] != self._saved.get(user)):
            self.drafts[user] = stored.load(found[0], self.clock() + found[1])
            self._saved[user] = found[0]
        elif found is None and mine is not None and user in self._saved:  # ended (or expired) elsewhere
            self._finished.first(mine.task_id)
            del self.drafts[user], self._saved[user]
        draft = self.drafts.get(user)
        if draft is not None and draft.expires_at <= self.clock():
            self._drop(draft)
            return None
        return draft

    def _drop(self, draft: Draft) -> None:
        self._finished.first(draft.task_id)
        if self.drafts.get(draft.user) is draft:
            del self.drafts[draft.user]
            self._saved.pop(draft.user, None)
            self.service.drafts.drop(stored.CHAT, draft.user)

    def _sweep(self) -> None:
        now = self.clock()
        if now - self._last_sweep < 60:
            return
        self._last_sweep = now
        for draft in [d for d in self.drafts.values() if d.expires_at <= now]:
            # Forgotten here only: the row may be another replica's newer form by now, and an expired row is never
            # read and is purged by the next write (storage/drafts.py).
            self._finished.first(draft.task_id)
            del self.drafts[draft.user]
            self._saved.pop(draft.user, None)

    async def _tell(self, target: Target, zh: str, en: str) -> None:
        try:
            await self.deliver.say(target, zh, en)
        except Exception as exc:  # the send itself is what failed: the log is all that is left
            log.warning("wecom: could not tell %s about a failure: %s", target, type(exc).__name__)


def _field_problems(data: dict[str, Any], wanted: set[str]) -> list[FieldError]:
    try:
        CodeRequest.parse(data)
    except InvalidRequest as exc:
        return [err for err in exc.errors if err.field in wanted]
    return []
