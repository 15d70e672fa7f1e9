"""The batch engine: a sheet becomes a stored dry run, then rows become jobs at batch priority.

Every front-end (CLI, Slack, WeCom, the upload page) drives batches only through :class:`BatchEngine`, the
one ``service.batches`` (built by :class:`bot.service.Service`):

    plan = await engine.dry_run(sheet, origin)      # DryRun: counts, problems, quota; a stored draft
    batch = await engine.run(batch_id, on_progress=cb, every=2.0)   # returns when every row is final
    engine.cancel(batch_id, requester)               # starter or admin; rows made stay made
    tasks = engine.resume_all(progress_for)          # at start: every batch that was running goes on
    engine.progress(batch_id) / engine.get(batch_id) / engine.recent(user_key) / engine.rows(batch_id)
    engine.manifest(batch_id) / engine.result_zip(batch_id)   (bot/batch/output.py)

No row is made twice: a row is marked ``queued`` with its code id right after the service recorded
the code, and the service's reuse key gives an identical request (a row resubmitted after a crash)
the record that already exists. A/C quota is spent only by a record that is actually made. While
writes cannot be kept (the database file deleted under the server, a full disk: storage/writes.py) rows
wait instead of failing, and go on once they can (after the restart, for a deleted file).
A row with a ``poster`` is checked and made as one ``new … poster=…`` is (:mod:`bot.batch.posters`): its
code at the width the template needs, then its poster, whose id is stored in the update that makes
the row final.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from pydantic import BaseModel

from bot.batch import output
from bot.batch import posters as row_posters
from bot.batch.links import UploadClaim, UploadLinks
from bot.batch.models import Batch, BatchOrigin, BatchRow, BatchStatus, RowStatus
from bot.batch.sheets import Sheet
from bot.codes import Codes, Submission
from bot.errors import (
    FieldError,
    InputError,
    InvalidRequest,
    MinpcodeError,
    NotFound,
    StorageUnavailable,
    UpstreamError,
)
from bot.fields import PosterAsk
from bot.live.scans import hash_key
from bot.models import CodeRecord, CodeRequest, Requester, Status
from bot.posters.service import Posters
from bot.priority import Priority

log = logging.getLogger("minpcode.batch")

RATE_CODES = frozenset({"45009", "45011", "429"})  # per-minute / per-day answers: back off, then resume
UNWRITABLE_WAIT = 2.0  # seconds between looks while writes cannot be kept (storage/writes.py)
Progress = Callable[["BatchProgress"], Awaitable[None] | None]
Intake = Callable[[Sheet, UploadClaim], Coroutine[Any, Any, None]]
_CANCELLED = ("批量任务已取消，这一行没有生成。", "The batch was cancelled before this row was made.")


class RowProblem(BaseModel):
    line: int
    field: str | None = None
    zh: str
    en: str


class DryRun(BaseModel):
    """What a run would do; ``batch`` is stored as a draft until started or cancelled."""

    batch: Batch
    encoding: str
    ready: int  # rows that will be made or reused
    invalid: int
    reuse_history: int  # identical live codes already exist
    reuse_sheet: dict[int, int]  # line -> the earlier line that makes the same code
    reuse_ids: dict[int, str]  # line -> the existing code id it reuses
    new_ac: dict[str, int]  # app -> new A/C codes the run would spend
    quota_left: dict[str, int]  # app -> A/C codes left before the cap
    over_cap: list[int]  # lines of A/C rows refused because the batch would cross the cap
    problems: list[RowProblem]
    unknown: dict[str, dict[str, list[int]]]  # "campaign"/"channel" -> value -> lines
    requests: dict[int, CodeRequest]  # line -> the prepared request (for tables)
    poster_lines: list[int] = []  # ready rows that ask for a poster

    @property
    def spend(self) -> int:
        return sum(self.new_ac.values())

    @property
    def posters(self) -> int:
        """The posters the run will make (one per ready row asking for one)."""
        return len(self.poster_lines)


class BatchProgress(BaseModel):
    batch_id: str
    status: BatchStatus
    total: int
    done: int
    reused: int
    failed: int
    invalid: int
    skipped: int
    left: int
    elapsed: float
    eta_seconds: float | None  # None until a rate is known
    posters: dict[str, int] = {}  # "wanted" / "made" / "failed" (Batch.posters)

    @property
    def finished(self) -> bool:
        return self.left == 0

    def bar(self, width: int = 20) -> str:
        todo = self.total - self.invalid
        share = 1.0 if todo <= 0 else (todo - self.left) / todo
        filled = round(share * width)
        return "█" * filled + "░" * (width - filled) + f" {share:.0%}"


class BatchEngine:
    def __init__(self, codes: Codes, posters: Posters, *, window: int | None = None, backoff: float = 60.0,
                 max_attempts: int = 5, row_timeout: float = 600.0) -> None:
        self.codes = codes
        self.posters = posters
        self.store = codes.storage.batches
        # Rows in flight at once: enough to keep the batch's workers busy, few enough that a cancel is quick.
        self.window = window or max(2, 2 * codes.jobs.batch_capacity)
        self.backoff = backoff
        self.max_attempts = max_attempts
        self.row_timeout = row_timeout
        self._pause_until = 0.0
        self._started: dict[str, float] = {}
        self._finished_now: dict[str, int] = {}
        self._runners: dict[str, Callable[[Batch], Coroutine[Any, Any, Any]]] = {}
        self._intakes: dict[str, Intake] = {}
        secret = codes.settings.minpcode_scan_hash_key
        self.links = UploadLinks(hash_key(secret.get_secret_value() if secret else None, codes.storage.secrets))

    # -- reading ------------------------------------------------------------------------------------
    def get(self, batch_id: str) -> Batch:
        found = self.store.get(batch_id)
        if found is None:
            raise NotFound(f"没有编号为 {batch_id} 的批量任务。", f"There is no batch with id {batch_id}.")
        return found

    def recent(self, user_key: str | None = None, limit: int = 20) -> list[Batch]:
        """Newest first; ``user_key`` (``front-end:id``): only that person's."""
        return self.store.recent(user_id=user_key, limit=limit)

    def rows(self, batch_id: str) -> list[BatchRow]:
        return self.store.rows(batch_id)

    def find_open(self, sha256: str, user_key: str) -> Batch | None:
        """An unfinished batch of the same file by the same person (to resume instead of starting over)."""
        return self.store.find_open(sha256, user_key)

    def progress(self, batch_id: str) -> BatchProgress:
        batch = self.get(batch_id)
        c = batch.counts
        started = self._started.get(batch_id)
        elapsed = time.monotonic() - started if started else 0.0
        finished_now = self._finished_now.get(batch_id, 0)
        eta = batch.left * elapsed / finished_now if finished_now and elapsed else None
        return BatchProgress(batch_id=batch.id, status=batch.status, total=batch.total,
                             done=c.get("done", 0), reused=c.get("reused", 0), failed=c.get("failed", 0),
                             invalid=c.get("invalid", 0), skipped=c.get("skipped", 0), left=batch.left,
                             elapsed=elapsed, eta_seconds=eta, posters=batch.posters)

    def manifest(self, batch_id: str) -> list[output.ManifestRow]:
        return output.manifest_rows(self.rows(batch_id), self.codes.storage)

    def result_zip(self, batch_id: str) -> bytes:
        return output.result_zip(self.manifest(batch_id), self.codes.storage, self.posters)

    # -- dry run --------------------------------------------------------------------------------------
    async def dry_run(self, sheet: Sheet, origin: BatchOrigin) -> DryRun:
        """Check every row as one code would be checked; store the batch as a draft; make nothing."""
        old = self.store.find_open(sheet.sha256, origin.key)
        if old is not None and old.status is BatchStatus.DRAFT:
            self.store.set_status(old.id, BatchStatus.CANCELLED)  # superseded by this fresh check
        problems: list[RowProblem] = []
        unknown: dict[str, dict[str, list[int]]] = {"campaign": {}, "channel": {}}
        requests: dict[int, CodeRequest] = {}
        statuses: dict[int, RowStatus] = {}
        errors: dict[int, str | None] = {}
        first_line: dict[str, int] = {}
        reuse_sheet: dict[int, int] = {}
        reuse_ids: dict[int, str] = {}
        new_ac: dict[str, list[int]] = {}
        poster_lines: list[int] = []
        for row in sheet.rows:
            found = [RowProblem(line=row.line, zh=zh, en=en) for zh, en in row.errors]
            request = poster = None
            if not found:
                try:
                    request, poster = await self._prepare(row.fields, origin.requester)
                except InputError as exc:
                    found = _problems(row.line, exc)
                    if isinstance(exc, NotFound) and exc.field in unknown:
                        value = str(row.fields.get(exc.field, ""))
                        unknown[exc.field].setdefault(value, []).append(row.line)
                except MinpcodeError as exc:  # the upstream could not be asked now: the run will try again
                    problems.append(RowProblem(line=row.line, zh=exc.zh, en=exc.en))
            problems += found
            statuses[row.line] = RowStatus.INVALID if found else RowStatus.READY
            errors[row.line] = _text(found) if found else None
            if request is None:
                continue
            requests[row.line] = request
            key = request.reuse_key()
            earlier = first_line.setdefault(key, row.line)
            existing = await self.codes.existing(request)
            if poster is not None:
                refused = await self._poster_refused(row.line, existing, poster)
                problems += refused
                if not refused:
                    poster_lines.append(row.line)
            if existing is not None:
                reuse_ids[row.line] = existing.id
            elif earlier != row.line:
                reuse_sheet[row.line] = earlier
            elif request.type.counts_against_cap and request.app:
                if not self.codes.storage.ledger.counted(request.app, key):
                    new_ac.setdefault(request.app, []).append(row.line)
        quota = {q.app: q.left for q in self.codes.quota()}
        over_cap: list[int] = []
        for app, lines in new_ac.items():
            left = quota.get(app, self.codes.settings.minpcode_ac_cap)
            quota.setdefault(app, left)
            if len(lines) > left:
                over_cap += lines
                zh, en = _over_cap(app, len(lines), left)
                for line in lines:
                    statuses[line], errors[line] = RowStatus.SKIPPED, f"{zh}\n{en}"
                problems.append(RowProblem(line=lines[0], field="type", zh=zh, en=en))
        batch = self.store.create(
            origin, filename=sheet.filename, sha256=sheet.sha256, encoding=sheet.encoding,
            rows=[(r.line, r.fields, statuses[r.line], None, errors[r.line]) for r in sheet.rows])
        over = set(over_cap)
        return DryRun(batch=batch, encoding=sheet.encoding, ready=sum(s is RowStatus.READY for s in statuses.values()),
                      invalid=sum(s is RowStatus.INVALID for s in statuses.values()), reuse_history=len(reuse_ids),
                      reuse_sheet=reuse_sheet, reuse_ids=reuse_ids,
                      new_ac={a: len(ls) for a, ls in new_ac.items() if not over.intersection(ls)},
                      quota_left=quota, over_cap=sorted(over_cap), problems=problems,
                      unknown={k: v for k, v in unknown.items() if v}, requests=requests,
                      poster_lines=[line for line in poster_lines if statuses[line] is RowStatus.READY])

    # -- running --------------------------------------------------------------------------------------
    async def run(self, batch_id: str, *, on_progress: Progress | None = None, every: float = 2.0) -> Batch:
        """Make every ready row (and finish rows a crash left queued); returns the batch once all are final.

        ``on_progress`` gets a :class:`BatchProgress` at most every ``every`` seconds and once at the end.
        """
        batch = self.get(batch_id)
        if batch.status in (BatchStatus.DONE, BatchStatus.CANCELLED):
            await _call(on_progress, self.progress(batch_id))
            return batch
        self.store.set_status(batch_id, BatchStatus.RUNNING)
        self._started.setdefault(batch_id, time.monotonic())
        origin = batch.origin
        requester = origin.requester
        rows = self.store.rows(batch_id, (RowStatus.READY, RowStatus.QUEUED))
        gate = asyncio.Semaphore(self.window)
        last = [0.0]

        async def one(row: BatchRow) -> None:
            async with gate:
                await self._row(batch, row, requester)
            self._finished_now[batch_id] = self._finished_now.get(batch_id, 0) + 1
            if on_progress is not None and time.monotonic() - last[0] >= every:
                last[0] = time.monotonic()
                await _call(on_progress, self.progress(batch_id))

        await asyncio.gather(*(one(row) for row in rows))
        if self.get(batch_id).status is BatchStatus.RUNNING:
            # its webhook event is written with the status (one transaction), before anyone is told
            self.store.set_status(batch_id, BatchStatus.DONE, events=self.codes.webhooks.batch_events(batch_id))
            self.codes.webhooks.recorded()
        await _call(on_progress, self.progress(batch_id))
        return self.get(batch_id)

    def intake_for(self, front_end: str, take: Intake) -> None:
        """Where a sheet sent through an upload link (:mod:`bot.batch.links`) continues: the dry run of the
        front-end that issued it (the link's ``chat``: ``wecom_aibot`` for the AI bot, ``wecom`` for the app)."""
        self._intakes[front_end] = take

    def intake(self, front_end: str) -> Intake | None:
        return self._intakes.get(front_end)

    def runner_for(self, front_end: str, run: Callable[[Batch], Coroutine[Any, Any, Any]]) -> None:
        """A front-end that reports its batches itself (progress in its message, the zip at the end) resumes
        them: those whose :attr:`BatchOrigin.front_end` is ``front_end``, so two front-ends of one chat (the
        WeCom app and the AI bot) each go on with their own after a restart."""
        self._runners[front_end] = run

    def resume_all(self, progress_for: Callable[[Batch], Progress | None] | None = None) -> list[asyncio.Task[Any]]:
        """Go on with every batch a stop or crash left running (``serve`` calls this after ``Service.start``):
        through its front-end's runner when one was given (:meth:`runner_for`), else quietly."""
        tasks: list[asyncio.Task[Any]] = []
        for batch in self.store.running():
            log.info("resuming batch %s (%d rows left)", batch.id, batch.left)
            runner = self._runners.get(batch.origin.front_end)
            callback = progress_for(batch) if progress_for else None
            work = runner(batch) if runner else self.run(batch.id, on_progress=callback)
            tasks.append(asyncio.create_task(work, name=f"batch-{batch.id}"))
        return tasks

    def place(self, batch_id: str, **where: str | None) -> Batch:
        """Record where the batch reports (``message_id``, ``thread_id``, ``channel_id``) once the chat knows."""
        batch = self.get(batch_id)
        self.store.set_origin(batch_id, batch.origin.model_copy(update=where))
        return self.get(batch_id)

    def _starter_only(self, batch_id: str, requester: Requester, verb: str, verb_zh: str) -> Batch:
        """The batch, when ``requester`` started it or is an admin; refused (audited as ``batch_<verb>_refused``)."""
        batch = self.get(batch_id)
        who = batch.origin.user_name or batch.origin.user_id
        self.codes.permissions.require_owner(batch.origin.key, requester, f"batch_{verb}", batch=batch_id,
                                             zh=f"只有发起人（{who}）或管理员可以{verb_zh}批量任务 {batch_id}。",
                                             en=f"Only its starter ({who}) or an admin may {verb} batch {batch_id}.")
        return batch

    def startable(self, batch_id: str, requester: Requester) -> Batch:
        """The batch, when ``requester`` may start it (its starter or an admin); refused and audited otherwise."""
        return self._starter_only(batch_id, requester, "start", "开始")

    def cancel(self, batch_id: str, requester: Requester) -> Batch:
        """Starter or admin: rows not yet submitted are skipped; rows made (or being made) stay."""
        batch = self._starter_only(batch_id, requester, "cancel", "取消")
        if batch.status in (BatchStatus.DRAFT, BatchStatus.RUNNING):
            self.store.set_status(batch_id, BatchStatus.CANCELLED)
            self.store.skip_unfinished(batch_id, "\n".join(_CANCELLED))
        return self.get(batch_id)

    async def _row(self, batch: Batch, row: BatchRow, requester: Requester) -> None:
        code_id, reused = row.code_id, False
        if row.status is RowStatus.QUEUED and code_id:
            record = self.codes.storage.history.get(code_id)
            reused = record is not None and (record.created_at < batch.created_at or self._earlier_row(row, code_id))
        for attempt in range(row.attempts + 1, self.max_attempts + 1):
            if code_id is None:
                if self._stopped(batch.id):
                    return
                await self._wait_pause()
                try:
                    submission = await self._submit(row, requester)
                except MinpcodeError as exc:
                    if _rate_limited(exc) and attempt < self.max_attempts:
                        self._pause(exc)
                        continue
                    status = RowStatus.INVALID if isinstance(exc, InputError) else RowStatus.FAILED
                    self.store.update_row(batch.id, row.line, status, error=_text(_problems(row.line, exc)), attempt=True)
                    return
                code_id, reused = submission.record.id, submission.reused
                self.store.update_row(batch.id, row.line, RowStatus.QUEUED, code_id=code_id, attempt=True)
            record = await self._finished(code_id)
            if record.status is Status.FAILED and record.error_code in RATE_CODES and attempt < self.max_attempts:
                self._pause(None)
                code_id, reused = None, False  # a failed record is never reused: the next submit makes a new one
                continue
            break
        else:
            return
        if record.status is Status.DONE or record.status is Status.DELETED:
            poster_id, error = await self._poster(row, code_id, requester)
            # One update: the row is final only with its poster made (or its failure said), so a resume
            # after a crash in between makes the poster then (the poster store serves it if it was saved).
            self.store.update_row(batch.id, row.line, RowStatus.REUSED if reused else RowStatus.DONE,
                                  poster_id=poster_id, error=error)
        elif record.status is Status.FAILED:
            self.store.update_row(batch.id, row.line, RowStatus.FAILED, error=record.error or record.error_code)

    async def _submit(self, row: BatchRow, requester: Requester) -> Submission:
        """The row's code submitted; while writes cannot be kept it waits (no row fails for it)."""
        while True:
            await self._writable()
            try:
                ask = row_posters.read(row.fields)
                target: CodeRequest | dict[str, Any] = ask.fields
                if ask.poster is not None:  # the code at the width the poster needs, as ``new … poster=…``
                    target = (await self.posters.plan_new(ask.fields, ask.poster.data, requester,
                                                          long_scene=ask.long_scene)).target
                return await self.codes.submit(target, requester, wait=False, long_scene=ask.long_scene,
                                               priority=Priority.BATCH)
            except StorageUnavailable:
                continue  # a full disk found by this very write: remembered, so _writable waits for room

    async def _writable(self) -> None:
        """Wait while writes cannot be kept (the database file gone, a full disk), said once in the log: a
        row written now would be lost or fail for a reason not its own. A restart resumes a gone file's run."""
        while self.codes.storage.halted("The batch engine") is not None:
            await asyncio.sleep(UNWRITABLE_WAIT)

    async def _prepare(self, fields: dict[str, Any],
                       requester: Requester) -> tuple[CodeRequest, PosterAsk | None]:
        """One row checked as one ``new`` command is: the code, and its poster when it asks for one. A row
        without a page is refused as ``new`` without one is (a B code would otherwise open the home page,
        which nobody asked for in a sheet of pages). A live row without a page is a blank code (空码), bound later."""
        if not str(fields.get("page") or "").strip() and fields.get("live") is not True:
            raise FieldError("page", "这一行没有页面路径：请在 page（页面）列填写，例如 pages/index/index。",
                             "This row has no page: fill in its page column, e.g. pages/index/index.")
        ask = row_posters.read(fields)
        if ask.poster is None:
            return await self.codes.prepare(ask.fields, long_scene=ask.long_scene), None
        planned = await self.posters.plan_new(ask.fields, ask.poster.data, requester, long_scene=ask.long_scene)
        return planned.target, ask.poster

    async def _poster_refused(self, line: int, existing: CodeRecord | None,
                              poster: PosterAsk) -> list[RowProblem]:
        """A code the row reuses may not print as asked (a sharper A/C copy needs consent): said now, not
        after the run. The row stays ready: its code is reused, its poster refused unless the sheet changes."""
        if existing is None or existing.status is not Status.DONE:
            return []
        try:
            await self.posters.check(existing.id, poster.data, sharper=poster.sharper)
        except MinpcodeError as exc:
            zh, en = row_posters.reason(exc)
            return [RowProblem(line=line, field="poster", zh=f"会复用已有的码 {existing.id}，但海报不会做：{zh}",
                               en=f"The existing code {existing.id} is reused, but its poster would not be made: {en}")]
        return []

    async def _poster(self, row: BatchRow, code_id: str, requester: Requester) -> tuple[str | None, str | None]:
        if row.poster_id is not None or not row_posters.wants_poster(row.fields):
            return row.poster_id, None
        poster = row_posters.read(row.fields).poster
        assert poster is not None  # the row was checked when it was submitted
        return await row_posters.make(self.posters, code_id, poster, requester)

    async def _finished(self, code_id: str) -> CodeRecord:
        deadline = time.monotonic() + self.row_timeout
        while True:
            try:
                record = await self.codes.wait(code_id, max(0.1, deadline - time.monotonic()))
            except StorageUnavailable:
                await self._writable()  # the worker waits too; the code is made once writes can be kept
                continue
            if record.status is not Status.PENDING or time.monotonic() >= deadline:
                return record

    def _earlier_row(self, row: BatchRow, code_id: str) -> bool:
        return any(r.code_id == code_id and r.line < row.line for r in self.store.rows(row.batch_id))

    def _stopped(self, batch_id: str) -> bool:
        return self.store.status(batch_id) is BatchStatus.CANCELLED

    def _pause(self, exc: MinpcodeError | None) -> None:
        wait = getattr(exc, "retry_after", None) or self.backoff
        self._pause_until = max(self._pause_until, time.monotonic() + wait)
        log.info("upstream rate limit: batch rows pause %.1fs", wait)

    async def _wait_pause(self) -> None:
        while (left := self._pause_until - time.monotonic()) > 0:
            await asyncio.sleep(left)


def _rate_limited(exc: MinpcodeError) -> bool:
    return isinstance(exc, UpstreamError) and str(exc.code) in RATE_CODES


def _problems(line: int, exc: MinpcodeError) -> list[RowProblem]:
    if isinstance(exc, InvalidRequest):
        return [RowProblem(line=line, field=_label(e.field), zh=e.zh, en=e.en) for e in exc.errors]
    field = getattr(exc, "field", None)
    if isinstance(exc, UpstreamError):
        where = "微信 WeChat" if exc.provider == "wechat" else "GrowingIO"
        return [RowProblem(line=line, zh=f"{exc.zh}（{where} {exc.code}）", en=f"{exc.en} ({where} {exc.code})")]
    return [RowProblem(line=line, field=_label(field) if field else None, zh=exc.zh, en=exc.en)]


def _label(field: str) -> str:
    return {"create_missing": "create", "template": "poster"}.get(field, field)


def _text(problems: Iterable[RowProblem]) -> str:
    lines: list[str] = []
    for p in problems:
        prefix = f"{p.field}: " if p.field else ""
        lines += [prefix + p.zh, prefix + p.en]
    return "\n".join(lines)


def _over_cap(app: str, wanted: int, left: int) -> tuple[str, str]:
    return (f"这批要新建 {wanted} 个 A/C 码，但小程序 {app} 只剩 {left} 个额度：这些 A/C 行不会生成。"
            "请改用 B 码（type=B，参数放进 scene，数量不限），或减少行数。",
            f"This batch would make {wanted} new A/C codes but mini program {app} has only {left} left: "
            "these A/C rows will not be made. Use B codes instead (type=B, parameters in the scene; unlimited), "
            "or fewer rows.")


async def _call(callback: Progress | None, progress: BatchProgress) -> None:
    if callback is None:
        return
    try:
        result = callback(progress)
        if inspect.isawaitable(result):
            await result
    except Exception:  # a chat that cannot show progress must not stop the batch
        log.exception("batch progress callback failed")


__all__ = ["BatchEngine", "BatchProgress", "DryRun", "Progress", "RowProblem"]
