"""The Slack front end: a :class:`SlackBot` whose Bolt listeners ack at once and hand the work to tasks.

The listeners (:mod:`handlers.slack.listeners`) read a payload, ack (with field errors, options or a
"working…" line when that is the answer) and spawn a task for anything slow. Spawned work first lets
a burst of requests be acked (it starts once no request has arrived for 15 ms, or after 1 s), so 200
commands at once are all answered quickly. The Web API client is our own (``SLACK_API_URL``, retry
handlers, one aiohttp session, proxy variables honoured with NO_PROXY and loopback).

Slack retries are acked without running anything twice: requests carrying ``X-Slack-Retry-Num``
are answered 200 by a middleware (after the signature check, :mod:`handlers.slack.bolt`), and a
short-lived key (team, user, trigger or command text) drops duplicates that arrive without the header.
A text in the DM or an @mention (:func:`handlers.slack.listeners.take_message`) is remembered by its
event id with the work it saves, so its retries reach the listener and are dropped there.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

import aiohttp
from slack_bolt import BoltResponse
from slack_bolt.adapter.starlette.async_handler import to_starlette_response
from slack_bolt.async_app import AsyncBoltRequest
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import Response

from bot import logs
from bot.concurrency import TtlSet
from bot.errors import FieldError, InvalidRequest, MinpcodeError, NotFound, UsageError
from bot.fields import CodeAsk
from bot.metrics import METRICS
from bot.models import CodeRecord, CodeRequest, Requester, Status
from bot.service import Service
from handlers import commands, grammar
from handlers.attachments import attachment
from handlers.commands import Reply
from handlers.slack import batches as slack_batches
from handlers.slack import gate, listeners, live_home, parse, promises, views
from handlers.slack import home as home_tab
from handlers.slack.bolt import build_bolt_app
from handlers.slack.deliver import Delivery, fix_proxy
from handlers.slack.errors import SLACK_FAILURES, slack_error
from handlers.slack.parse import Origin
from handlers.slack.views import say

log = logging.getLogger("minpcode.slack")


def _quiet(task: asyncio.Future[Any]) -> None:
    """A form check that outlived its ack: its answer (or error) is the background job's to give."""
    if not task.cancelled():
        task.exception()

REQUIRED_SCOPES = ("commands", "chat:write", "files:write", "files:read", "channels:join", "users:read", "im:write",
                   "channels:read", "groups:read",  # channels/groups:read: SLACK_SUMMARY_CHANNEL by name
                   "im:history", "app_mentions:read")  # the DM's text commands; @minpcode in a channel
DEDUPE_WINDOW = 10.0  # seconds a request key is remembered
# Validation before a view_submission ack. Slack waits 3 s for the whole round trip, and between a server
# in China and Slack the network takes much of that: answer within 1 s whatever GrowingIO does. What is
# not checked by then (a cold list of campaigns) is checked by the background job, which reports it.
PREPARE_TIMEOUT = 0.5  # the rest of the 1 s is the ack's own way (parsing, signature, Bolt, the network)
PERSON_TTL = 3600.0
STOP_GRACE = 5.0
YIELD_TO_ACKS = 1.0  # longest a spawned task waits for a burst of requests to be acked first
QUIET = 0.015  # no request for this long: the burst is over


async def _socket_entry(req: AsyncBoltRequest, resp: BoltResponse,
                        next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
    """Socket Mode's entry (no HTTP request came in): the request id and the ack time start here; with
    ``process_before_response`` the listeners have acked when this returns."""
    with logs.request_id(), METRICS.ack("slack"):
        return await next()


@dataclass(frozen=True)
class Person:
    lang: Literal["zh", "en"] | None  # None: users.info did not say; answer in both
    name: str | None
    fetched: float


class SlackBot:
    """The Slack front end around one running :class:`~bot.service.Service`."""

    def __init__(self, service: Service, *, token: str, signing_secret: str | None, app_token: str | None,
                 api_url: str) -> None:
        self.service = service
        self.settings = service.settings
        self.api_url = api_url
        self.mode = "socket" if app_token else "http"
        self.token = token
        self.signing_secret = signing_secret
        # seals the channel a form was opened in (parse.sealed): a forged private_metadata names none
        self.metadata_key = hashlib.sha256(b"minpcode-metadata:" + (signing_secret or token).encode()).digest()
        self.client = fix_proxy(AsyncWebClient(
            token=token, base_url=api_url, timeout=30,
            retry_handlers=[AsyncConnectionErrorRetryHandler(), AsyncRateLimitErrorRetryHandler(max_retry_count=2),
                            AsyncServerErrorRetryHandler(max_retry_count=1)],
        ), api_url)
        self.public_url = self.settings.people_url  # links in Slack go to people: only an address given
        self.outbox = service.outbox
        self.delivery = Delivery(self.client, lambda url: promises.slack_host(url, api_url))
        self.home = home_tab.HomeTab(service, self.client, self.public_url)
        self.recent: TtlSet[tuple[str, ...]] = TtlSet(DEDUPE_WINDOW)
        self.people: dict[str, Person] = {}
        self._people_tasks: dict[str, asyncio.Task[Person]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self._auth: AuthorizeResult | None = None
        self._auth_lock: asyncio.Lock | None = None
        self.last_arrival = 0.0  # monotonic time the last Slack request arrived
        self.bolt = build_bolt_app(self.authorize, signing_secret, api_url)
        listeners.register(self.bolt, self)
        if self.mode == "socket":
            self.bolt.use(_socket_entry)
        live_home.register(self.bolt, self)
        self.batches = slack_batches.register(self.bolt, self, service.batches)

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        # One connection pool for every call (a burst of uploads would otherwise open a socket each).
        self.client.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        where = "Socket Mode" if self.mode == "socket" else "HTTP at POST /slack/events"
        log.info("Slack: %s; Web API %s", where, self.api_url)
        self.spawn(self.check_connection(), "Slack connection check")
        for kind in ("apps", "campaign", "channel"):
            self.spawn(self.service.options(kind), f"warm {kind} list")
        if resumed := promises.resume(self):
            log.info("Slack: answering %d request(s) acknowledged before a restart", resumed)

    def promise(self, kind: promises.Kind, origin: Origin, value: Any, what: str, *, seen: str | None = None) -> bool:
        return promises.promise(self, kind, origin, value, what, seen=seen)

    async def stop(self) -> None:
        if self.tasks:
            _, pending = await asyncio.wait(set(self.tasks), timeout=STOP_GRACE)
            for task in pending:
                task.cancel()
        session = self.client.session
        if session is not None:
            await session.close()
            self.client.session = None

    async def check_connection(self) -> None:
        """One clear line about the token at start; the rest of the server serves either way."""
        try:
            response = await asyncio.wait_for(self.client.auth_test(), 15)
        except SlackApiError as exc:
            log.warning("Slack: SLACK_BOT_TOKEN was refused by %s (%s); Slack requests will fail until the "
                        "token is fixed", self.api_url, slack_error(exc))
            return
        except SLACK_FAILURES as exc:
            log.warning("Slack: cannot reach SLACK_API_URL %s (%s %s); will retry on the first request",
                        self.api_url, slack_error(exc), type(exc).__name__)
            return
        self._auth = self._authorize_result(response)
        scopes = {s.strip() for s in (response.headers.get("x-oauth-scopes") or "").split(",") if s.strip()}
        missing = [s for s in REQUIRED_SCOPES if scopes and s not in scopes]
        log.info("Slack: connected to %s as @%s", response.get("team"), response.get("user"))
        if missing:
            log.warning("Slack: the bot token lacks the scopes %s; reinstall the app from manifest.yml",
                        ", ".join(missing))

    def _authorize_result(self, response: Any) -> AuthorizeResult:
        scopes = response.headers.get("x-oauth-scopes") if hasattr(response, "headers") else None
        return AuthorizeResult.from_auth_test_response(bot_token=self.token, bot_scopes=scopes,
                                                       auth_test_response=response)

    async def authorize(self, enterprise_id: str | None, team_id: str | None,
                        user_id: str | None) -> AuthorizeResult | None:
        """Bolt's authorize step from one cached auth.test (Bolt's own would call it per burst)."""
        if self._auth is not None:
            return self._auth
        if self._auth_lock is None:
            self._auth_lock = asyncio.Lock()
        async with self._auth_lock:
            if self._auth is None:
                try:
                    self._auth = self._authorize_result(await self.client.auth_test())
                except SLACK_FAILURES as exc:
                    log.warning("Slack: auth.test failed: %s", slack_error(exc))
                    return None
        return self._auth

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str, *, urgent: bool = False) -> asyncio.Task[Any]:
        """Run ``coro`` after the ack; ``urgent`` work (a trigger id that expires in 3 s) does not wait
        for a burst of requests to be acked first."""
        task = asyncio.get_running_loop().create_task(self._guard(coro, what, urgent))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _guard(self, coro: Awaitable[Any], what: str, urgent: bool) -> None:
        try:
            if not urgent:
                await self._acks_first()
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Slack: %s failed", what)

    async def _acks_first(self) -> None:
        """Let a burst of incoming requests be acked before the work they started competes for the loop:
        wait until no request has arrived for ``QUIET`` seconds (at most ``YIELD_TO_ACKS``)."""
        waited = 0.0
        while waited < YIELD_TO_ACKS:
            idle = time.monotonic() - self.last_arrival
            if idle >= QUIET:
                return
            await asyncio.sleep(QUIET - idle)
            waited += QUIET - idle

    async def dispatch(self, request: AsyncBoltRequest) -> BoltResponse:
        self.last_arrival = time.monotonic()
        return await self.bolt.async_dispatch(request)

    # -- people --------------------------------------------------------------------------------------
    def cached_lang(self, user_id: str) -> Literal["zh", "en"] | None:
        person = self.people.get(user_id)
        return person.lang if person else None

    async def person(self, user_id: str) -> Person:
        known = self.people.get(user_id)
        if known is not None and time.monotonic() - known.fetched < PERSON_TTL:
            return known
        task = self._people_tasks.get(user_id)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self._fetch_person(user_id))
            self._people_tasks[user_id] = task
        return await asyncio.shield(task)

    async def _fetch_person(self, user_id: str) -> Person:
        try:
            response = await self.client.users_info(user=user_id, include_locale=True)
        except SLACK_FAILURES as exc:
            log.info("users.info %s failed: %s", user_id, slack_error(exc))
            # remember the failure briefly so a burst does not hammer users.info
            person = Person(None, None, time.monotonic() - PERSON_TTL + 60)
        else:
            user = response.get("user") or {}
            locale = str(user.get("locale") or "")
            lang: Literal["zh", "en"] | None = ("zh" if locale.lower().startswith("zh") else "en") if locale else None
            profile = user.get("profile") or {}
            name = profile.get("display_name") or user.get("real_name") or user.get("name")
            person = Person(lang, name or None, time.monotonic())
        self.people[user_id] = person
        return person

    async def requester(self, origin: Origin) -> tuple[Requester, Literal["zh", "en"] | None]:
        person = await self.person(origin.user_id)
        requester = Requester(chat="slack", user_id=origin.user_id, user_name=person.name or origin.user_name,
                              channel_id=origin.channel_id, lang=person.lang or "zh")
        return requester, person.lang

    # -- the form --------------------------------------------------------------------------------------
    @property
    def zone(self) -> ZoneInfo:
        return self.settings.zone

    def default_kind(self) -> str:
        return views.default_kind(self.service.tracking_available)

    def kinds(self) -> list[str]:
        return views.kinds_for(self.service.tracking_available)

    def apps(self) -> list[tuple[str, str]]:
        """The mini programs known now (the form opens at once; a cold list fills it in after)."""
        return [(o.value, o.label) for o in self.service.lookups.cached("apps")]

    async def names(self, kind: str, *, timeout: float | None = None) -> list[str]:
        """Campaign or channel names for an external select (the form sends names, not ids)."""
        if kind not in ("campaign", "channel"):
            return []
        return [o.label for o in await self.service.options("campaign" if kind == "campaign" else "channel",
                                                            timeout=timeout)]

    async def existing(self, prepared: CodeRequest) -> CodeRecord | None:
        return await self.service.existing(prepared)

    def notice(self) -> str | None:
        if self.service.sandbox:
            return "🧪 沙盒模式：码由内置模拟器生成，扫码不会打开真实小程序。 / Sandbox: codes come from the built-in emulator."
        return None

    def form(self, kind: str, metadata: str, suggestion: str | None = None, poster: str | None = None) -> dict[str, Any]:
        posters = [(t.name, " / ".join(x for x in (t.label_zh, t.label_en) if x) or t.name)
                   for t in self.service.posters.templates()]
        return views.code_form(kind=kind, kinds=self.kinds(), apps=self.apps(), metadata=metadata,
                               suggestion=suggestion, notice=self.notice(), posters=posters, poster=poster)

    async def open_form(self, trigger_id: str, origin: Origin) -> None:
        """Open at once (the trigger lives 3 s), then fill in what had to be fetched."""
        metadata = parse.dump_metadata(parse.sealed({"c": origin.channel_id, "r": origin.response_url},
                                                    self.metadata_key, origin.user_id))
        kind = self.default_kind()
        had_apps = len(self.apps())
        try:
            opened = await self.client.views_open(trigger_id=trigger_id, view=self.form(kind, metadata))
        except SlackApiError as exc:
            _, lang = await self.requester(origin)
            await self.delivery.tell(origin.user_id, origin.channel_id, say(
                lang, f"表单没能打开（{slack_error(exc)}），请再输入一次 /minpcode。",
                f"The form did not open ({slack_error(exc)}); type /minpcode again."), response_url=origin.response_url)
            return
        await self.person(origin.user_id)  # warms the language for field errors
        if not self.service.lookups.fresh("apps"):
            apps = await self.service.options("apps", timeout=10)
            if (len(apps) > 1) != (had_apps > 1):
                view = opened["view"]
                await self._update_view(view["id"], view["hash"], self.form(kind, metadata))

    async def update_form(self, view: dict[str, Any]) -> None:
        """The kind or campaign/channel changed: show the fields of that kind, suggest a name."""
        values = (view.get("state") or {}).get("values") or {}
        kind = parse.form_kind(values, self.default_kind())
        fields = parse.form_fields(values, kind)
        suggestion = CodeRequest.model_construct(**{k: v for k, v in fields.items() if k in (
            "page", "scene", "campaign", "channel")}).suggested_name()
        chosen = (parse.poster_fields(values) or {}).get("template")
        await self._update_view(view["id"], view.get("hash"), self.form(kind, view.get("private_metadata") or "",
                                                                         suggestion, chosen))

    async def _update_view(self, view_id: str, view_hash: str | None, view: dict[str, Any]) -> None:
        try:
            await self.client.views_update(view_id=view_id, hash=view_hash, view=view)
        except SlackApiError as exc:  # hash_conflict: a newer update is on its way; not_found: closed
            log.info("views.update %s: %s", view_id, slack_error(exc))

    async def check_form(self, ask: CodeAsk, present: list[str],
                         lang: str | None) -> tuple[dict[str, str] | None, CodeRequest | None]:
        """Field errors for the modal, or the prepared request (None when preparing took too long)."""
        fields, long_scene = dict(ask.fields), ask.long_scene
        try:
            if not fields.get("live") and not long_scene:  # prepare turns these into what the model checks
                CodeRequest.parse(fields)
            # Shielded: a check cut short keeps going behind the ack, so the lists it was reading warm
            # the cache for the background job instead of being fetched again.
            checking = asyncio.ensure_future(self.service.prepare(fields, long_scene=long_scene))
            checking.add_done_callback(_quiet)
            prepared = await asyncio.wait_for(asyncio.shield(checking), PREPARE_TIMEOUT)
        except InvalidRequest as exc:
            return views.field_errors(exc.errors, present, lang), None
        except FieldError as exc:
            return views.field_errors([exc], present, lang), None
        except NotFound as exc:
            return views.field_errors([FieldError(exc.field or "type", exc.zh, exc.en)], present, lang), None
        except MinpcodeError as exc:
            return views.field_errors([FieldError("type", exc.zh, exc.en)], present, lang), None
        except TimeoutError:
            return None, None
        return None, prepared

    # -- making and answering ---------------------------------------------------------------------------
    async def run_command(self, parsed: grammar.Command | UsageError, origin: Origin) -> None:
        requester, lang = await self.requester(origin)
        if isinstance(parsed, UsageError):
            reply = commands.failure(parsed)
        else:
            reply = await commands.execute(self.service, parsed, requester)
        await self.answer(reply, origin, requester, lang)
        if reply.ok and reply.record is not None:
            await self.home.refresh(requester)

    def check_poster(self, poster: dict[str, Any], prepared: CodeRequest | None, present: list[str],
                     lang: str | None) -> dict[str, str] | None:
        """The form's poster fields checked before anything is made: errors beside their fields."""
        blocks = {field: block for block, field in views.POSTER_BLOCKS.items()}
        try:
            request = self.service.posters.request(poster)
            self.service.posters.template(request.template)
            if prepared is not None:
                request.fields.filled({"name": prepared.name, "campaign": prepared.campaign,
                                       "channel": prepared.channel, "page": prepared.page, "scene": prepared.scene})
        except InvalidRequest as exc:
            errors = [FieldError(blocks.get(e.field, "poster"), e.zh, e.en) for e in exc.errors]
            return views.field_errors(errors, present, lang)
        except FieldError as exc:
            return views.field_errors([FieldError(blocks.get(exc.field, "poster"), exc.zh, exc.en)], present, lang)
        return None

    async def make_code(self, ask: CodeAsk, origin: Origin) -> None:
        requester, lang = await self.requester(origin)
        if origin.channel_id:
            await self.delivery.tell(origin.user_id, origin.channel_id, views.working_text(lang),
                                     response_url=origin.response_url, dm_fallback=False)
        try:
            reply = await commands.new(self.service, ask, requester)
        except MinpcodeError as exc:
            reply = commands.failure(exc)
        await self.answer(reply, origin, requester, lang)
        await self.home.refresh(requester)

    async def post_existing(self, code_id: str, origin: Origin) -> None:
        requester, lang = await self.requester(origin)
        try:
            reply = commands.show(self.service, code_id)
        except MinpcodeError as exc:
            reply = commands.failure(exc)
        else:
            reply = reply.model_copy(update={"public": reply.record is not None and reply.record.status is Status.DONE,
                                             "reused": True})
        await self.answer(reply, origin, requester, lang)

    async def answer(self, reply: Reply, origin: Origin, requester: Requester, lang: str | None) -> None:
        """A new code goes into the channel (the thread of an @mention); every other answer only to the
        asker, or where they wrote it (a text in the DM, an @mention)."""
        record = reply.record
        if reply.public and record is not None:
            notes = [say(lang, n.zh, n.en) for n in reply.notices]
            comment = views.result_comment(record, origin.user_id, lang, reused=reply.reused, notes=notes, zone=self.zone)
            attached = attachment(reply, self.public_url)
            if attached is not None and reply.poster is not None:
                comment += "\n" + views.poster_line(reply.poster.text("en" if lang == "en" else "zh"),
                                                     attached.code_url, lang)
            try:
                await self.delivery.post_code(record=record, image=attached.data if attached else None,
                                              mime=attached.mime if attached else None,
                                              comment=comment, user_id=origin.user_id,
                                              channel_id=origin.channel_id, lang=lang, thread_ts=origin.thread_ts)
                return
            except SLACK_FAILURES as exc:
                log.warning("posting code %s failed: %s", record.id, slack_error(exc))
                text = views.not_posted(record.id, slack_error(exc), self.public_url, lang)
                await self.delivery.tell(origin.user_id, origin.channel_id, text, response_url=origin.response_url)
                return
        text = say(lang, reply.zh, reply.en)
        for notice in reply.notices:
            text += "\n\n" + say(lang, notice.zh, notice.en)
        blocks = None
        if record is not None and reply.image is not None and len(text) <= 2900:
            blocks = views.code_link_blocks(text, record, self.public_url)
        await self.reply(origin, text, blocks=blocks)

    async def reply(self, origin: Origin, text: str, *, blocks: list[dict[str, Any]] | None = None) -> None:
        """An answer for the asker: posted where they wrote (``in_place``: their DM with the bot, the thread
        of an @mention), else (or when Slack refuses that) only they see it."""
        if origin.in_place and origin.channel_id and await self.delivery.post(
                origin.channel_id, text, blocks=blocks, thread_ts=origin.thread_ts):
            return
        await self.delivery.tell(origin.user_id, origin.channel_id, text, blocks=blocks,
                                 response_url=origin.response_url)

    async def show_home(self, origin: Origin, *, offset: int | None = None, banner: str | None = None) -> None:
        requester, _ = await self.requester(origin)
        await self.home.publish(requester, offset=offset, banner=banner)

    async def home_rename(self, trigger_id: str, code_id: str, origin: Origin) -> None:
        await self.home.open_rename(trigger_id, code_id, self.cached_requester(origin))

    async def home_delete(self, code_id: str, origin: Origin) -> None:
        requester, _ = await self.requester(origin)
        await self.home.delete(code_id, requester)

    def rename_submitted(self, view: dict[str, Any], origin: Origin) -> dict[str, str] | None:
        """The rename modal was submitted: field errors to show in it, or None (renamed; the tab follows)."""
        requester = self.cached_requester(origin)
        name = parse.state_values((view.get("state") or {}).get("values") or {}).get("name")
        errors = self.home.rename(str(view.get("private_metadata") or ""), str(name or ""), requester)
        if errors:
            return errors
        self.spawn(self.home.publish(requester), "refreshing the Home tab")
        return None

    def cached_requester(self, origin: Origin) -> Requester:
        """The requester from what is known now (a trigger expires in 3 s: no users.info wait)."""
        person = self.people.get(origin.user_id)
        return Requester(chat="slack", user_id=origin.user_id, lang=(person.lang if person else None) or "zh",
                         user_name=person.name if person else origin.user_name)

    # -- HTTP ------------------------------------------------------------------------------------------------
    async def endpoint(self, request: Request) -> Response:
        """POST /slack/events: bounded, verified and parsed by the gate, then through Bolt.

        The time to the ack is recorded (bot/metrics.py); the request id is set by the process
        (bot/logs.py RequestIdMiddleware) and spawned tasks copy it."""
        with METRICS.ack("slack"):
            try:
                bolt_request = await gate.admit(request, self.signing_secret)
            except gate.Rejected as rejected:
                gate.log_rejection(request, rejected)
                return rejected.response
            signature = request.headers.get("x-slack-signature", "")
            if signature and not self.outbox.first_seen(f"slack:{signature}", gate.MAX_SKEW + 60):
                # the same signed request again (a replay inside Slack's 5 minutes): acked, nothing runs
                log.info("slack request replayed: acknowledged, not run again")
                return Response(status_code=200)
            try:
                response = await self.dispatch(bolt_request)
            except gate.UNREADABLE as exc:  # Bolt's own readers choke on a signed but odd shape
                unreadable = gate.Rejected(400, "bad_request", f"payload Bolt cannot read ({type(exc).__name__})")
                gate.log_rejection(request, unreadable)
                return unreadable.response
            return to_starlette_response(response)
