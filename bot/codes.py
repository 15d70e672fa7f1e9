"""Making and reading codes: the verbs :class:`bot.service.Service` keeps (submit, history, show, rename,
delete, quota) and that the features making codes build on (posters, batches).

The life of one request (docs/architecture.md): validate and normalise; offer an identical live
code instead of spending upstream quota; otherwise record a ``pending`` row *before* any upstream
call; the worker then calls the shared client, stores the image and marks the row ``done`` or
``failed`` with a message a person can act on. Pending rows are resumed on start.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import time
from typing import Any, Self

from pydantic import BaseModel

from bot import history as paging
from bot import routing, scenes
from bot.concurrency import KeyedLocks
from bot.config import Settings
from bot.drafts import Drafts
from bot.errors import FieldError, InputError, InvalidRequest, MinpcodeError, NotFound, StorageUnavailable
from bot.history import AuditEntry, HistoryPage, HistoryQuery, get_record
from bot.jobs import JobRunner
from bot.live.service import LiveService
from bot.lookups import ListKind, Lookups, Option
from bot.messages import INTERNAL, INTERNAL_CODE
from bot.metrics import METRICS, kind_label
from bot.models import (
    TYPE_WORDS,
    CodeRecord,
    CodeRequest,
    CodeType,
    Provider,
    Requester,
    Status,
    check_name,
    split_tags,
)
from bot.outbox import Outbox
from bot.permissions import Permissions
from bot.priority import Priority
from bot.quota import Notice, Quota, QuotaStatus
from bot.upstream import Upstream
from bot.webhooks import Webhooks
from storage import Storage

log = logging.getLogger("minpcode.service")

UNEXPECTED = (INTERNAL.zh, INTERNAL.en)


class Submission(BaseModel):
    """What ``submit`` answers: the record, whether it was reused, and any notices."""

    record: CodeRecord
    reused: bool = False
    original_by: str | None = None
    notices: list[Notice] = []


class Codes:
    """The code verbs (front-ends call them on :class:`bot.service.Service`, which extends this class;
    features that make codes are handed it).

    Codes: :meth:`prepare`, :meth:`existing`, :meth:`submit`, :meth:`wait`. Reading and managing:
    :meth:`get`, :meth:`find`, :meth:`recent`, :meth:`history`, :meth:`image`, :meth:`rename`,
    :meth:`delete`, :meth:`quota`, :meth:`audit`. For forms and the server: :attr:`tracking_available`,
    :meth:`options`, :meth:`scene_params`, :meth:`pending_count`, :attr:`sandbox`. Lifecycle of the
    worker: :meth:`start`, :meth:`close` (or ``async with``).
    """

    def __init__(self, settings: Settings, storage: Storage, upstream: Upstream, *, permissions: Permissions,
                 live: LiveService, webhooks: Webhooks, concurrency: int = 4) -> None:
        self.settings = settings
        self.storage = storage
        self.upstream = upstream
        self.permissions = permissions
        self.live = live  # a live code is made here; its rules (place, register, end_of) are the live package's
        self.webhooks = webhooks  # what happens, recorded for the operator's endpoints once it is saved
        self.jobs = JobRunner(self._run, concurrency=concurrency, leases=storage.leases)
        self.outbox = Outbox(storage, self.jobs.owner)  # what front-ends acked and still owe
        # Identical requests arriving together (a double click, a chat retry) make one code: the database
        # guarantees it across processes (History.save_pending); this lock only spares the second of a pair
        # in this process the quota check and the look-ups before the write, so it simply reuses the first.
        self._key_locks: KeyedLocks[str] = KeyedLocks()
        self.lookups = Lookups(upstream)
        self.quotas = Quota(storage, lambda: self.settings.minpcode_ac_cap)
        self.drafts = Drafts(storage)  # chat forms in progress (bot/drafts.py)

    @property
    def sandbox(self) -> bool:
        return self.upstream.sandbox

    async def start(self) -> int:
        """Start the worker and resume every pending row; returns how many were resumed."""
        self.jobs.start()
        pending = self.storage.history.pending()
        for record in pending:
            self.jobs.enqueue(record.id)
        self.jobs.sweep(lambda: [r.id for r in self.storage.history.pending()])
        if pending:
            log.info("resuming %d pending code(s)", len(pending))
        return len(pending)

    async def close(self) -> None:
        await self.jobs.stop(grace=self.settings.minpcode_stop_grace)
        await self.upstream.aclose()
        self.storage.close()

    def drain(self) -> None:
        """SIGTERM arrived (safe from a signal handler): no new job starts, waiting requests answer now."""
        self.jobs.drain()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- making codes ---------------------------------------------------------------------------
    async def prepare(self, request: CodeRequest | dict[str, Any], *, long_scene: bool = False,
                      requester: Requester | None = None) -> CodeRequest:
        """Validate, choose the provider, normalise the app and fill a name: no upstream code is spent.

        With ``long_scene`` a B code's scene that WeChat would refuse (too long, Chinese, ``%`` ...)
        goes behind a stored ``k=`` key (:mod:`bot.scenes`); its parameters are stored only once the
        whole request is valid, so a refused request leaves nothing behind. Without it WeChat's own
        scene rule applies. It is the person's choice, the same in every front-end: the HTTP API's
        ``"long_scene": "key"`` (its error 3002 otherwise), the chat's ``long=yes``, the CLI's
        ``--long-scene``.
        """
        data = request.model_dump() if isinstance(request, CodeRequest) else dict(request)
        given_comments = data.get("comments")
        self.live.rules.place(data)
        placed = self._place_scene(data) if long_scene and not data.get("live") else None
        prepared = CodeRequest.parse(data)
        data = prepared.model_dump()
        if prepared.type.counts_against_cap and prepared.via is None:
            data["via"] = routing.default_via(self.upstream, self.settings, prepared)
        tracked = prepared.type.counts_against_cap and data.get("via") is Provider.GIO
        routing.require_upstream(self.upstream, self.settings, Provider.GIO if tracked else Provider.WECHAT, prepared)
        routing.require_plain_scheme(self.settings, prepared)
        data["app"] = await self._appid(prepared.app, data.get("via"))
        prepared = CodeRequest.parse(data)
        if prepared.expires is not None and self.live.rules.end_of(prepared.expires) <= time.time():
            raise InvalidRequest([FieldError("expires", f"到期日 {prepared.expires} 已经过去。",
                                             f"The expiry date {prepared.expires} has passed.")])
        gio = self.upstream.gio
        if prepared.provider is Provider.GIO and gio is not None and not prepared.create_missing:
            # Names are checked now (a cached read, no quota) so the form can show the error beside the field.
            await gio.resolve_campaign(prepared.campaign or "", create=False, product_id=None)
            await gio.resolve_channel(prepared.channel or "", create=False)
        if prepared.name and prepared.provider is Provider.GIO and self.storage.history.name_taken(
                prepared.name, "gio", except_key=prepared.reuse_key()):
            raise InvalidRequest([FieldError(
                "name", f"名称「{prepared.name}」已被另一个监测链接使用（GrowingIO 要求名称唯一），请换一个。",
                f"The name '{prepared.name}' is already used by another tracking link (GrowingIO names are "
                "unique); choose another.",
            )])
        if placed is not None and placed.new:
            # Valid in every part, so the parameters are stored now; nothing is awaited from here on,
            # so the same parameters arriving together share one key (and so one code).
            kept = scenes.keep(self.storage, placed, requester.key if requester else None)
            if kept.scene != placed.scene and kept.params is not None:
                prepared = CodeRequest.parse(prepared.model_dump() | {
                    "scene": kept.scene, "comments": scenes.with_note(given_comments, kept.scene, kept.params)})
        if not prepared.name:
            prepared = prepared.model_copy(update={"name": self._free_name(prepared)})
        return prepared

    def _place_scene(self, data: dict[str, Any]) -> scenes.Placed | None:
        """Put a B code's scene in ``data`` as the code will carry it (a key for long parameters)."""
        kind = str(getattr(data.get("type"), "value", data.get("type")) or "").strip().upper()
        scene = data.get("scene")
        if kind != CodeType.B.value or not isinstance(scene, str) or not scene.strip():
            return None
        try:
            placed = scenes.place(self.storage, scene)
        except FieldError as exc:
            # A form shows every problem at once: the scene's, and whatever else the request has.
            try:
                CodeRequest.parse(data | {"scene": "x"})
            except InvalidRequest as others:
                raise InvalidRequest([exc, *(e for e in others.errors if e.field != "scene")]) from None
            raise
        data["scene"] = placed.scene
        comments = data.get("comments")
        if placed.params is not None and (comments is None or isinstance(comments, str)):
            data["comments"] = scenes.with_note(comments, placed.scene, placed.params)
        return placed

    async def existing(self, request: CodeRequest) -> CodeRecord | None:
        """The live code an identical request already made (for forms that offer to reuse it)."""
        return self.storage.history.find_by_key(request.reuse_key())

    async def submit(self, request: CodeRequest | dict[str, Any], requester: Requester, *,
                     wait: bool = True, timeout: float = 60.0, long_scene: bool = False,
                     priority: Priority = Priority.INTERACTIVE, copy_of: str | None = None, name_asked: str | None = None) -> Submission:
        """Make the code (or offer the identical live one); ``long_scene``: see :meth:`prepare`; ``priority``;
        ``copy_of``: the code a new one is a sharper copy of (posters), listed and counted as that one;
        ``name_asked``: the name the person gave, for a request already prepared (a dict's ``name`` is it).

        Options the code does not use, and a name that a reused code does not take, are said in the
        answer's notices rather than dropped without a word."""
        asked = request.get("name") if isinstance(request, dict) else name_asked
        try:
            prepared = await self.prepare(request, long_scene=long_scene, requester=requester)
        except InputError:
            raw = request.type if isinstance(request, CodeRequest) else request.get("type")
            METRICS.codes.labels(kind_label(raw), "-", "refused").inc()
            raise
        unused = [Notice(zh=t.zh, en=t.en) for t in prepared.unused_options()]
        prepared = prepared.without_unused()
        key = prepared.reuse_key()
        async with self._key_locks.hold(key):
            with self.storage.writing():  # a full disk is answered as such (503 for the API), not as a bug
                submission = await self._submit(prepared, key, requester, wait=wait, timeout=timeout,
                                                priority=priority, copy_of=copy_of)
            found = submission.record
            if submission.reused and isinstance(asked, str) and asked.strip() and asked.strip() != found.name:
                unused.append(Notice(
                    zh=f"名称没有改：复用的码仍叫「{found.name}」，不是「{asked.strip()}」。要改名请用 rename {found.id} {asked.strip()}。",
                    en=f"The name was not changed: the reused code is still called '{found.name}', not "
                       f"'{asked.strip()}'. To rename it, use rename {found.id} {asked.strip()}."))
            return submission.model_copy(update={"notices": unused + submission.notices}) if unused else submission

    async def _submit(self, prepared: CodeRequest, key: str, requester: Requester, *, wait: bool,
                      timeout: float, priority: Priority = Priority.INTERACTIVE,
                      copy_of: str | None = None) -> Submission:
        history = self.storage.history
        found = history.find_by_key(key)
        if found is not None:
            return await self._reused(found, prepared, requester, wait=wait, timeout=timeout)
        notices = self.quotas.check(prepared)
        creating = await routing.will_create(self.upstream, prepared)
        saved = history.save_pending(prepared, requester, key=key, app=prepared.app, sandbox=self.sandbox,
                                     copy_of=copy_of)
        if not saved.new:
            # Another process (or host) wrote the same request since we looked: its row is the one code.
            return await self._reused(saved.record, prepared, requester, wait=wait, timeout=timeout)
        record = saved.record
        if prepared.live:
            try:
                # a blank code (no destination) is registered too: its key must answer, with the fallback page
                self.live.rules.register(record, prepared.destination or "", prepared.expires, requester)
            except BaseException:
                history.discard(record.id)  # else the worker would make it later: a code nobody got
                raise
        if prepared.tags:
            self.storage.tags.add(record.id, prepared.tags, requester.key)
        self.storage.audit.record(requester.key, "requested", record.id, type=prepared.type.value,
                                  chat=requester.chat)
        self.jobs.enqueue(record.id, priority)
        if wait:
            record = await self.wait(record.id, timeout)
        created = creating if record.status is Status.DONE else []
        return Submission(record=record, notices=notices + created + self._sandbox_notice())

    async def _reused(self, found: CodeRecord, prepared: CodeRequest, requester: Requester, *, wait: bool,
                      timeout: float) -> Submission:
        """Offer the identical live code; a pending one is awaited (its job may run in another process,
        which :meth:`wait` looks for) and never made or counted in the ledger again here."""
        self.storage.audit.record(requester.key, "reused", found.id, by=requester.chat)
        METRICS.codes.labels(prepared.type.value, prepared.provider.value, "reused").inc()
        if wait and found.status is Status.PENDING:
            found = await self.wait(found.id, timeout)
        return Submission(record=found, reused=True, original_by=found.requested_by_name or found.requested_by,
                          notices=self._sandbox_notice())

    async def wait(self, code_id: str, timeout: float = 60.0) -> CodeRecord:
        """The record once it is no longer pending (or as it is when ``timeout`` passes)."""
        event = self.jobs.event(code_id)
        record = self.get(code_id)
        if record.status is Status.PENDING:
            if not self.jobs.running:
                raise RuntimeError("the worker is not running: call Service.start() first")
            deadline = asyncio.get_running_loop().time() + timeout
            # another process may hold the job's lease: its end sets no event here, so look every second
            while record.status is Status.PENDING and (left := deadline - asyncio.get_running_loop().time()) > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(left, 1.0))
                if self.jobs.closing:
                    return self.get(code_id)
                event = self.jobs.event(code_id)
                record = self.get(code_id)
                if record.status is Status.PENDING and (problem := self.storage.unwritable()) is not None:
                    raise problem  # the worker cannot keep the code now: said at once, not after the timeout
        return record

    async def _run(self, code_id: str) -> None:
        # No upstream call (nor quota spent) for a code that could not be kept: the row stays pending, and the
        # sweeper queues it again, so it is made once writes can be kept (after a restore and restart, when the
        # file is gone). Waiters learn why at once (wait).
        if self.storage.halted("The job worker") is not None:
            return
        try:
            with self.storage.writing():
                await self._make(code_id)
        except StorageUnavailable:
            self.storage.halted("The job worker")  # the log says it once; the row stays pending as above

    async def _make(self, code_id: str) -> None:
        history = self.storage.history
        record = history.get(code_id)
        if record is None or record.status is not Status.PENDING:
            return
        attempt = history.start_attempt(code_id)
        request = record.code_request()
        try:
            result = await self.upstream.make(request, resume=attempt > 1)
        except MinpcodeError as exc:
            history.mark_failed(code_id, exc.error_code, exc.message, getattr(exc, "raw", None) or None,
                                events=self.webhooks.code_events(code_id))
            log.info("code %s failed (attempt %d): %s %s", code_id, attempt, type(exc).__name__, exc.error_code)
            METRICS.codes.labels(request.type.value, request.provider.value, "failed").inc()
            self._finished(code_id)
            return
        except Exception:
            log.exception("code %s failed unexpectedly", code_id)
            history.mark_failed(code_id, INTERNAL_CODE, INTERNAL, events=self.webhooks.code_events(code_id))
            METRICS.codes.labels(request.type.value, request.provider.value, "failed").inc()
            self._finished(code_id)
            return
        digest = self.storage.images.put(result.image, result.mime or "image/jpeg") if result.image else None
        history.mark_done(code_id, result, digest, events=self.webhooks.code_events(code_id))
        METRICS.codes.labels(request.type.value, request.provider.value, "done").inc()
        if request.type.counts_against_cap and record.app:
            # the cap's thresholds crossed by this count are written with it (one transaction), as the code's event
            self.storage.ledger.spend(record.app, record.request_key, code_id,
                                      events=self.webhooks.quota_events(record.app, self.quotas.cap))
        self._finished(code_id)

    def _finished(self, code_id: str) -> None:
        # The code's webhook event was written with its row (mark_done/mark_failed, one transaction): never before
        # the change, never lost after it, and recorded before the worker wakes whoever waits on it.
        self.webhooks.recorded()

    # -- reading and managing ---------------------------------------------------------------------
    def get(self, code_id: str) -> CodeRecord:
        return get_record(self.storage, code_id)

    def recent(self, requester: Requester | None = None, *, query: str | None = None, limit: int = 20,
               offset: int = 0, everyone: bool = True, tag: str | None = None) -> builtins.list[CodeRecord]:
        """Newest first; only the requester's own codes when ``everyone`` is False and they are no admin;
        ``tag``: only codes carrying it (normalised as tags are)."""
        mine = None
        if requester is not None and not everyone and not self.permissions.is_admin(requester):
            mine = requester.key
        tag = _one_tag(tag)
        if query:
            return self.storage.history.search(query, requested_by=mine, limit=limit, offset=offset, tag=tag)
        return self.storage.history.recent(requested_by=mine, limit=limit, offset=offset, tag=tag)

    def count(self, requester: Requester | None = None, *, query: str | None = None, everyone: bool = True,
              cap: int = 10_000, tag: str | None = None) -> int:
        """How many codes :meth:`recent` would list in all (at most ``cap + 1``: "more than ``cap``")."""
        mine = None
        if requester is not None and not everyone and not self.permissions.is_admin(requester):
            mine = requester.key
        return self.storage.history.count_matching(query, requested_by=mine, cap=cap, tag=_one_tag(tag))

    def copies(self, code_id: str) -> builtins.list[CodeRecord]:
        """The sharper copies made of a code for its posters, oldest first."""
        return self.storage.history.copies(code_id)

    def image(self, code_id: str) -> tuple[bytes, str]:
        record = self.get(code_id)
        found = self.storage.images.get(record.image_sha256) if record.image_sha256 else None
        if found is None:
            if record.type.is_link:
                zh_word, en_word = TYPE_WORDS[record.type]
                raise NotFound(f"{code_id} 是{zh_word}，没有图片，只有链接：{record.link or '（还没有）'}",
                               f"{code_id} is {en_word}: it has no image, only its link: {record.link or '(none yet)'}")
            why_zh, why_en = {Status.PENDING: ("还在生成中", "it is still being made"),
                              Status.FAILED: ("生成失败了", "it failed")}.get(record.status, ("没有保存图片", "none was kept"))
            raise NotFound(f"码 {code_id} 没有图片：{why_zh}。", f"Code {code_id} has no image: {why_en}.")
        return found

    def rename(self, code_id: str, name: str, requester: Requester) -> CodeRecord:
        record = self._editable(code_id, requester, "rename")
        check_name(name.strip())
        if record.provider is Provider.GIO and self.storage.history.name_taken(name.strip(), "gio", except_id=record.id):
            raise FieldError("name", f"名称「{name}」已被使用，请换一个。", f"The name '{name}' is taken; choose another.")
        self.storage.history.rename(record.id, name.strip())
        self.storage.audit.record(requester.key, "renamed", record.id, old=record.name, new=name.strip())
        return self.get(record.id)

    def delete(self, code_id: str, requester: Requester) -> CodeRecord:
        record = self._editable(code_id, requester, "delete")
        self.storage.history.mark_deleted(record.id)
        self.storage.audit.record(requester.key, "deleted", record.id)
        return self.get(record.id)

    def quota(self) -> builtins.list[QuotaStatus]:
        """A+C codes counted per mini program (the configured one listed even when unused), with the URL Links
        and URL Schemes made today and the permanent Short Links made."""
        return self.quotas.statuses(self.upstream.wechat.appid if self.upstream.wechat else None)

    def plain_scheme(self, page: str, query: str = "") -> str | None:
        """WeChat's plain-text URL Scheme into ``page`` with ``query`` when the operator has declared it
        (``MINPCODE_PLAIN_SCHEME``) and a mini program is configured; None otherwise. No call, no record."""
        if not self.settings.minpcode_plain_scheme or self.upstream.wechat is None:
            return None
        return self.upstream.wechat.plain_scheme(page, query).link

    # -- helpers ------------------------------------------------------------------------------------
    def _editable(self, code_id: str, requester: Requester, action: str) -> CodeRecord:
        record = self.get(code_id)
        if record.status is Status.DELETED:
            raise NotFound(f"码 {code_id} 已删除。", f"Code {code_id} is already deleted.")
        self.permissions.check(record, requester, action)
        return record

    def _sandbox_notice(self) -> builtins.list[Notice]:
        if not self.sandbox:
            return []
        return [Notice(zh="这是沙盒码：由内置模拟器生成，扫码不会打开真实小程序。",
                       en="This is a sandbox code: made by the built-in emulator; scanning it opens no real mini program.")]

    async def _appid(self, app: str | None, via: Provider | None) -> str | None:
        """The WeChat AppID the code is for: quota is counted per mini program."""
        if via is Provider.GIO or (app and self.upstream.gio is not None):
            if self.upstream.gio is None:
                return app
            product_id = await self.upstream.product_id(app)
            for product in await self.upstream.mini_programs():
                if product.id == product_id:
                    return product.spn or product.id
        if self.upstream.wechat is not None:
            return self.upstream.wechat.appid
        return app

    def _free_name(self, request: CodeRequest) -> str:
        base = request.suggested_name()
        name, n = base, 2
        while self.storage.history.name_taken(name, request.provider.value):
            suffix = f"-{n}"
            name = base[: 50 - len(suffix)] + suffix
            n += 1
        return name

    # -- what front-ends ask besides codes ------------------------------------------------------------
    @property
    def tracking_available(self) -> bool:
        """Whether GrowingIO tracking links can be made (GrowingIO configured and in use)."""
        return self.upstream.gio is not None and self.settings.use_gio

    async def options(self, kind: ListKind, *, timeout: float | None = None) -> builtins.list[Option]:
        """Campaigns, channels or mini programs a form may offer (cached; see :mod:`bot.lookups`)."""
        return await self.lookups.get(kind, timeout=timeout)

    def find(self, code_id: str) -> CodeRecord | None:
        """The record with this id, or None (ids from outside are bounded before the read)."""
        code_id = code_id.strip()
        if not code_id or len(code_id) > 64:
            return None
        return self.storage.history.get(code_id)

    def history(self, query: HistoryQuery, requester: Requester | None = None) -> HistoryPage:
        """One page of history with filters; ``mine`` means the requester's own codes."""
        who = requester.key if (query.mine and requester is not None) else (query.requested_by or None)
        return paging.page(self.storage, query, who)

    def scene_params(self, key: str) -> str | None:
        """The parameters stored behind a long-scene key, or None."""
        key = key.strip()
        return scenes.resolve(self.storage, key) if 0 < len(key) <= 64 else None

    def audit(self, code_id: str | None = None, limit: int = 50) -> builtins.list[AuditEntry]:
        """Who did what: one code's history (oldest first), or the newest ``limit`` entries of all."""
        if code_id is not None:
            code_id = self.get(code_id).id  # an unknown id is NotFound, not an empty history
        return paging.audit_trail(self.storage, code_id, limit)

    def pending_count(self) -> int:
        """How many codes are waiting for the worker (the health check shows it)."""
        return len(self.storage.history.pending())



def _one_tag(tag: str | None) -> str | None:
    """A list's tag as tags are kept (trimmed, ASCII in lower case); None for none."""
    found = split_tags(tag) if tag else []
    return found[0] if found else None


__all__ = ["UNEXPECTED", "Codes", "Submission"]
