"""The one entry point every front-end calls: submit, list, show, rename, delete, quota.

The life of one request (shared/docs/design.md): validate and normalise; offer an identical live
code instead of spending upstream quota; otherwise record a ``pending`` row *before* any upstream
call; the worker then calls the shared client, stores the image and marks the row ``done`` or
``failed`` with a message a person can act on. Pending rows are resumed on start.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import BaseModel

from bot import scenes
from bot.config import Settings
from bot.errors import (
    FieldError,
    InvalidRequest,
    MinpcodeError,
    NotFound,
    PermissionDenied,
    QuotaExhausted,
)
from bot.jobs import JobRunner
from bot.lookups import ListKind, Lookups, Option
from bot.messages import INTERNAL, INTERNAL_CODE
from bot.models import CodeRecord, CodeRequest, CodeType, Provider, Requester, Status, check_name
from bot.upstream import Upstream
from storage import Storage

log = logging.getLogger("minpcode.service")

QUOTA_WARN_LEVELS = (0.95, 0.80)
UNEXPECTED = ("生成时出现意外错误，已记录，请稍后再试或联系管理员。",
              "Something unexpected went wrong; it was recorded. Try again later or tell an admin.")


class Notice(BaseModel):
    """A bilingual heads-up that goes with an answer (quota nearly used, sandbox, ...)."""

    zh: str
    en: str

    def text(self, lang: str = "zh") -> str:
        return f"{self.en}\n{self.zh}" if lang == "en" else f"{self.zh}\n{self.en}"


class QuotaStatus(BaseModel):
    app: str
    used: int
    cap: int

    @property
    def left(self) -> int:
        return max(0, self.cap - self.used)

    @property
    def ratio(self) -> float:
        return self.used / self.cap if self.cap else 1.0

    def notice(self) -> Notice | None:
        for level in QUOTA_WARN_LEVELS:
            if self.ratio >= level:
                return Notice(
                    zh=f"注意：小程序 {self.app} 的 A/C 码已用 {self.used}/{self.cap}（{self.ratio:.0%}），"
                       f"还剩 {self.left} 个。能用 B 码的地方请用 B 码（不限数量）。",
                    en=f"Heads-up: mini program {self.app} has used {self.used} of {self.cap} A/C codes "
                       f"({self.ratio:.0%}); {self.left} left. Prefer B codes (unlimited) where you can.",
                )
        return None


class Submission(BaseModel):
    """What ``submit`` answers: the record, whether it was reused, and any notices."""

    record: CodeRecord
    reused: bool = False
    original_by: str | None = None
    notices: list[Notice] = []


class HistoryQuery(BaseModel):
    """One page of history as a front-end asks for it (newest first)."""

    text: str | None = None
    type: CodeType | None = None
    status: Status | None = None
    requested_by: str | None = None
    mine: bool = False
    limit: int = 20
    offset: int = 0


class HistoryPage(BaseModel):
    items: list[CodeRecord]
    limit: int
    offset: int
    next_offset: int | None = None


SCAN_BATCH = 500  # rows read at a time when filtering history by type or status


class Service:
    def __init__(self, settings: Settings, storage: Storage, upstream: Upstream, *, concurrency: int = 4) -> None:
        self.settings = settings
        self.storage = storage
        self.upstream = upstream
        self.jobs = JobRunner(self._run, concurrency=concurrency)
        self.admins = set(settings.minpcode_admins)
        self._key_locks: dict[str, asyncio.Lock] = {}
        self.lookups = Lookups(upstream)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Service:
        settings = settings or Settings()
        return cls(settings, Storage.open(settings.minpcode_data_dir), Upstream.from_settings(settings))

    @property
    def sandbox(self) -> bool:
        return self.upstream.sandbox

    async def start(self) -> int:
        """Start the worker and resume every pending row; returns how many were resumed."""
        self.jobs.start()
        pending = self.storage.history.pending()
        for record in pending:
            self.jobs.enqueue(record.id)
        if pending:
            log.info("resuming %d pending code(s)", len(pending))
        return len(pending)

    async def close(self) -> None:
        await self.jobs.stop()
        await self.upstream.aclose()
        self.storage.close()

    async def __aenter__(self) -> Service:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- making codes ---------------------------------------------------------------------------
    async def prepare(self, request: CodeRequest | dict[str, Any]) -> CodeRequest:
        """Validate, choose the provider, normalise the app and fill a name: no upstream code is spent."""
        if isinstance(request, dict):
            request = CodeRequest.parse(request)
        data = request.model_dump()
        if request.type.counts_against_cap and request.via is None:
            data["via"] = Provider.GIO if (self.settings.use_gio and self.upstream.gio) else Provider.WECHAT
        data["app"] = await self._appid(request.app, data.get("via"))
        prepared = CodeRequest.parse(data)
        gio = self.upstream.gio
        if prepared.provider is Provider.GIO and gio is not None and not prepared.create_missing:
            # Names are checked now (a cached read, no quota) so the form can show the error beside the field.
            await gio.resolve_campaign(prepared.campaign or "", create=False, product_id=None)
            await gio.resolve_channel(prepared.channel or "", create=False)
        if not prepared.name:
            prepared = prepared.model_copy(update={"name": self._free_name(prepared)})
        elif prepared.provider is Provider.GIO and self.storage.history.name_taken(
                prepared.name, "gio", except_key=prepared.reuse_key()):
            raise InvalidRequest([FieldError(
                "name", f"名称「{prepared.name}」已被另一个监测链接使用（GrowingIO 要求名称唯一），请换一个。",
                f"The name '{prepared.name}' is already used by another tracking link (GrowingIO names are "
                "unique); choose another.",
            )])
        return prepared

    async def existing(self, request: CodeRequest) -> CodeRecord | None:
        """The live code an identical request already made (for forms that offer to reuse it)."""
        return self.storage.history.find_by_key(request.reuse_key())

    async def submit(self, request: CodeRequest | dict[str, Any], requester: Requester, *,
                     wait: bool = True, reuse: bool = True, timeout: float = 60.0) -> Submission:
        prepared = await self.prepare(request)
        key = prepared.reuse_key()
        # Identical requests arriving together (a double click, a chat retry) must make one code.
        lock = self._key_locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                return await self._submit(prepared, key, requester, wait=wait, reuse=reuse, timeout=timeout)
        finally:
            if not lock.locked() and self._key_locks.get(key) is lock:
                del self._key_locks[key]

    async def _submit(self, prepared: CodeRequest, key: str, requester: Requester, *, wait: bool, reuse: bool,
                      timeout: float) -> Submission:
        history = self.storage.history
        if reuse:
            found = history.find_by_key(key)
            if found is not None:
                self.storage.audit.record(requester.user_id, "reused", found.id, by=requester.chat)
                if wait and found.status is Status.PENDING:
                    found = await self.wait(found.id, timeout)
                return Submission(record=found, reused=True, original_by=found.requested_by_name or found.requested_by,
                                  notices=self._sandbox_notice())
        notices = self._check_quota(prepared)
        record = history.save_pending(prepared, requester, key=key, app=prepared.app, sandbox=self.sandbox)
        self.storage.audit.record(requester.user_id, "requested", record.id, type=prepared.type.value,
                                  chat=requester.chat)
        self.jobs.enqueue(record.id)
        if wait:
            record = await self.wait(record.id, timeout)
        return Submission(record=record, notices=notices + self._sandbox_notice())

    async def wait(self, code_id: str, timeout: float = 60.0) -> CodeRecord:
        """The record once it is no longer pending (or as it is when ``timeout`` passes)."""
        event = self.jobs.event(code_id)
        record = self.get(code_id)
        if record.status is Status.PENDING:
            if not self.jobs.running:
                raise RuntimeError("the worker is not running: call Service.start() first")
            try:
                await asyncio.wait_for(event.wait(), timeout)
            except TimeoutError:
                pass
            record = self.get(code_id)
        return record

    async def _run(self, code_id: str) -> None:
        history = self.storage.history
        record = history.get(code_id)
        if record is None or record.status is not Status.PENDING:
            return
        attempt = history.start_attempt(code_id)
        request = record.code_request()
        try:
            result = await self.upstream.make(request, resume=attempt > 1)
        except MinpcodeError as exc:
            history.mark_failed(code_id, exc.error_code, exc.message)
            log.info("code %s failed (attempt %d): %s %s", code_id, attempt, type(exc).__name__, exc.error_code)
            return
        except Exception:
            log.exception("code %s failed unexpectedly", code_id)
            history.mark_failed(code_id, INTERNAL_CODE, INTERNAL)
            return
        digest = self.storage.images.put(result.image, result.mime or "image/jpeg") if result.image else None
        history.mark_done(code_id, result, digest)
        if request.type.counts_against_cap and record.app:
            self.storage.ledger.spend(record.app, record.request_key, code_id)

    # -- reading and managing ---------------------------------------------------------------------
    def get(self, code_id: str) -> CodeRecord:
        record = self.storage.history.get(code_id.strip())
        if record is None:
            raise NotFound(f"没有编号为 {code_id} 的码。", f"There is no code with id {code_id}.")
        return record

    def list(self, requester: Requester | None = None, *, query: str | None = None, limit: int = 20,
             offset: int = 0, everyone: bool = True) -> list[CodeRecord]:
        """Newest first; only the requester's own codes when ``everyone`` is False and they are no admin."""
        mine = None
        if requester is not None and not everyone and not self.is_admin(requester):
            mine = requester.user_id
        if query:
            return self.storage.history.search(query, requested_by=mine, limit=limit, offset=offset)
        return self.storage.history.recent(requested_by=mine, limit=limit, offset=offset)

    def image(self, code_id: str) -> tuple[bytes, str]:
        record = self.get(code_id)
        found = self.storage.images.get(record.image_sha256) if record.image_sha256 else None
        if found is None:
            raise NotFound(f"码 {code_id} 没有图片（{record.status.value}）。",
                           f"Code {code_id} has no image ({record.status.value}).")
        return found

    def is_admin(self, requester: Requester) -> bool:
        return requester.user_id in self.admins

    def rename(self, code_id: str, name: str, requester: Requester) -> CodeRecord:
        record = self._editable(code_id, requester)
        check_name(name.strip())
        if record.provider is Provider.GIO and self.storage.history.name_taken(name.strip(), "gio", except_id=record.id):
            raise FieldError("name", f"名称「{name}」已被使用，请换一个。", f"The name '{name}' is taken; choose another.")
        self.storage.history.rename(record.id, name.strip())
        self.storage.audit.record(requester.user_id, "renamed", record.id, old=record.name, new=name.strip())
        return self.get(record.id)

    def delete(self, code_id: str, requester: Requester) -> CodeRecord:
        record = self._editable(code_id, requester)
        self.storage.history.mark_deleted(record.id)
        self.storage.audit.record(requester.user_id, "deleted", record.id)
        return self.get(record.id)

    def quota(self) -> list[QuotaStatus]:
        """A+C codes counted per mini program (the configured one listed even when unused)."""
        counts = self.storage.ledger.apps()
        default = self.upstream.wechat.appid if self.upstream.wechat else None
        if default and default not in counts:
            counts[default] = 0
        return [QuotaStatus(app=app, used=used, cap=self.settings.minpcode_ac_cap) for app, used in sorted(counts.items())]

    # -- helpers ------------------------------------------------------------------------------------
    def _editable(self, code_id: str, requester: Requester) -> CodeRecord:
        record = self.get(code_id)
        if record.status is Status.DELETED:
            raise NotFound(f"码 {code_id} 已删除。", f"Code {code_id} is already deleted.")
        if record.requested_by != requester.user_id and not self.is_admin(requester):
            raise PermissionDenied(
                f"只有创建者（{record.requested_by_name or record.requested_by}）或管理员可以修改码 {code_id}。",
                f"Only its creator ({record.requested_by_name or record.requested_by}) or an admin may change code {code_id}.",
            )
        return record

    def _check_quota(self, request: CodeRequest) -> list[Notice]:
        if not request.type.counts_against_cap or not request.app:
            return []
        ledger = self.storage.ledger
        status = QuotaStatus(app=request.app, used=ledger.used(request.app), cap=self.settings.minpcode_ac_cap)
        if status.used >= status.cap and not ledger.counted(request.app, request.reuse_key()):
            raise QuotaExhausted(
                f"小程序 {request.app} 的 A/C 码已用完 {status.cap} 个的终身额度，不能再生成新的 A/C 码。请改用 B 码"
                "（type=B，参数放进 scene，数量不限）。",
                f"Mini program {request.app} has used all {status.cap} A/C codes of its lifetime quota; no new "
                "A/C code can be made. Use a B code instead (type=B, parameters in the scene; unlimited).",
            )
        after = QuotaStatus(app=request.app, used=status.used + 1, cap=status.cap)
        notice = after.notice()
        return [notice] if notice else []

    def _sandbox_notice(self) -> list[Notice]:
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

    async def options(self, kind: ListKind, *, timeout: float | None = None) -> list[Option]:
        """Campaigns, channels or mini programs a form may offer (cached; see :mod:`bot.lookups`)."""
        return await self.lookups.get(kind, timeout=timeout)

    def may_manage(self, record: CodeRecord, requester: Requester) -> bool:
        """Whether ``requester`` may rename or delete ``record``: its creator or an admin."""
        return record.requested_by == requester.user_id or self.is_admin(requester)

    def find(self, code_id: str) -> CodeRecord | None:
        """The record with this id, or None (ids from outside are bounded before the read)."""
        code_id = code_id.strip()
        if not code_id or len(code_id) > 64:
            return None
        return self.storage.history.get(code_id)

    def history(self, query: HistoryQuery, requester: Requester | None = None) -> HistoryPage:
        """One page of history; ``mine`` means the requester's own codes."""
        who = requester.user_id if (query.mine and requester is not None) else (query.requested_by or None)
        records, more = self._page(query, who)
        return HistoryPage(items=records, limit=query.limit, offset=query.offset,
                           next_offset=query.offset + len(records) if more else None)

    def _page(self, query: HistoryQuery, who: str | None) -> tuple[list[CodeRecord], bool]:
        history = self.storage.history

        def fetch(limit: int, offset: int) -> list[CodeRecord]:
            if query.text and query.text.strip():
                return history.search(query.text, requested_by=who, limit=limit, offset=offset)
            return history.recent(requested_by=who, limit=limit, offset=offset,
                                  include_deleted=query.status is Status.DELETED)

        if query.type is None and query.status is None:
            rows = fetch(query.limit + 1, query.offset)
            return rows[: query.limit], len(rows) > query.limit
        matched: list[CodeRecord] = []
        skip, position = query.offset, 0
        while len(matched) <= query.limit:
            rows = fetch(SCAN_BATCH, position)
            position += len(rows)
            for record in rows:
                if (query.type and record.type is not query.type) or (query.status and record.status is not query.status):
                    continue
                if skip:
                    skip -= 1
                else:
                    matched.append(record)
            if len(rows) < SCAN_BATCH:
                break
        return matched[: query.limit], len(matched) > query.limit

    def scene_params(self, key: str) -> str | None:
        """The parameters stored behind a long-scene key, or None."""
        key = key.strip()
        return scenes.resolve(self.storage, key) if 0 < len(key) <= 64 else None

    def pending_count(self) -> int:
        return len(self.storage.history.pending())


__all__ = ["HistoryPage", "HistoryQuery", "Notice", "QuotaStatus", "Service", "Submission"]
