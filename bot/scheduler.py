"""Scheduled summaries inside ``minpcode serve``: MINPCODE_SUMMARY_CRON in MINPCODE_TIMEZONE.

Why in-process and not Slack's ``chat.scheduleMessage``: the summary is computed when it is due,
carries a chart, and also goes to WeCom; ``chat.scheduleMessage`` posts a message fixed when it is
scheduled, to Slack only (https://docs.slack.dev/reference/methods/chat.scheduleMessage).

Periods. A cron tick at ``fire`` closes the period that began at the previous tick. For daily or
coarser crons the period is whole local days: ``[midnight of the previous tick's day, midnight of
this tick's day)``; so ``0 9 * * MON`` posts last Monday..Sunday each Monday at 09:00. For crons
that tick several times a day it is ``[previous tick, this tick)``.

At most once. Before posting, the period is claimed in SQLite (``storage/summary_runs.py``; a
unique index is the lock), and every step posted is recorded at once; a restart or a second
process finds the claim and posts nothing again. If a process dies mid-post its claim lapses after
``lease`` and the steps not yet recorded are posted then. While writes cannot be kept (the database
file deleted under the server, a full disk: storage/writes.py) a tick posts nothing, since its claim
would not be kept and the period would be posted again; the catch-up below posts it once they can.

Catch-up. After downtime only the latest missed period is posted (once); older missed ticks are
not. The very first start records the period that has just ended as ``skipped`` (unless its tick
was less than ``first_start_grace`` ago): installing the bot does not post about the time before.

Retries. A failed post is retried after 1, 5, 15, 60 and 180 minutes (``retry_delays``), only the
steps that failed; each attempt is recorded, and after the last one the run is marked ``failed``.

The clock and the sleep are injectable, so tests drive all of this without waiting. The places to
post to are handed in (the announcers the process built, bot/server.py); the scheduler builds none.
As a ``FrontEnd`` (bot/ports.py) it has no routes, only start and stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from croniter import croniter
from pydantic import BaseModel
from starlette.routing import BaseRoute

from bot.announce import announce
from bot.ports import Announcer, PostOutcome
from bot.summary import Lang, build_summary, local_midnight
from storage.summary_runs import SummaryRun, SummaryRuns

if TYPE_CHECKING:
    from bot.service import Service

log = logging.getLogger("minpcode.scheduler")

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
RETRY_DELAYS = (60.0, 300.0, 900.0, 3600.0, 3 * 3600.0)
LEASE = timedelta(minutes=10)
FIRST_START_GRACE = timedelta(minutes=10)  # a tick this recent is still posted on the very first start
MAX_SLEEP = 60.0  # wake at least this often, so a changed wall clock (suspend, NTP) is noticed


def utc_now() -> datetime:
    return datetime.now(UTC)


class RunReport(BaseModel):
    """What one tick did for one period."""

    run_id: int
    period_start: datetime
    period_end: datetime
    status: Literal["posted", "retrying", "failed"]
    attempt: int
    outcomes: list[PostOutcome] = []
    error: str | None = None


class SummaryScheduler:
    name = "summary"

    def __init__(self, service: Service, announcers: Sequence[Announcer], *, cron: str | None = None, zone: ZoneInfo | None = None,
                 clock: Clock = utc_now, sleep: Sleep = asyncio.sleep, lang: Lang = "zh",
                 retry_delays: Sequence[float] = RETRY_DELAYS, lease: timedelta = LEASE,
                 max_sleep: float = MAX_SLEEP, first_start_grace: timedelta = FIRST_START_GRACE) -> None:
        self.service = service
        self.announcers = list(announcers)
        self.cron = (cron or service.settings.minpcode_summary_cron).strip()
        if not croniter.is_valid(self.cron):
            raise ValueError(f"MINPCODE_SUMMARY_CRON is not a valid cron expression: {self.cron!r}")
        self.zone: ZoneInfo = zone or service.settings.zone
        self.clock = clock
        self.sleep = sleep
        self.lang: Lang = lang
        self.retry_delays = tuple(retry_delays)
        self.lease = lease
        self.max_sleep = max_sleep
        self.first_start_grace = first_start_grace
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._baselined = False

    @property
    def runs(self) -> SummaryRuns:
        return self.service.storage.summary_runs

    def _now(self) -> datetime:
        """The injected clock's time in UTC (differences between aware times are then real durations)."""
        return self.clock().astimezone(UTC)

    # -- the calendar -----------------------------------------------------------------------------
    def latest_fire(self, now: datetime) -> datetime:
        """The last tick at or before ``now`` (local time)."""
        local = now.astimezone(self.zone)
        return croniter(self.cron, local + timedelta(microseconds=1)).get_prev(datetime)

    def next_fire(self, now: datetime) -> datetime:
        """The first tick strictly after ``now``."""
        return croniter(self.cron, now.astimezone(self.zone)).get_next(datetime)

    def previous_fire(self, fire: datetime) -> datetime:
        """The tick before ``fire``; a repeat of the same wall-clock time (DST fall-back) does not count."""
        it = croniter(self.cron, fire.astimezone(self.zone))
        while True:
            prev: datetime = it.get_prev(datetime)
            if prev.replace(tzinfo=None) != fire.astimezone(self.zone).replace(tzinfo=None):
                return prev

    def period_for(self, fire: datetime) -> tuple[datetime, datetime]:
        """The period the tick at ``fire`` reports on (see the module docstring)."""
        fire = fire.astimezone(self.zone)
        prev = self.previous_fire(fire)
        start, end = local_midnight(prev.date(), self.zone), local_midnight(fire.date(), self.zone)
        if end <= start:  # several ticks a day: report tick to tick
            return prev, fire
        return start, end

    # -- one evaluation ---------------------------------------------------------------------------
    async def tick(self) -> list[RunReport]:
        """Post the latest period if nobody has, then any retries that are due. Returns what was done."""
        if self.service.storage.halted("The summary scheduler") is not None:
            # its claim and steps could not be kept: a restart would post the same period again
            return []
        now = self._now()
        fire = self.latest_fire(now)
        start, end = self.period_for(fire)
        runs = self.runs
        if not self._baselined:
            self._baselined = True
            if runs.scheduled_count() == 0 and now - fire > self.first_start_grace and runs.skip(start, end, fire_at=fire, now=now,
                                                         reason="ended before the scheduler first ran"):
                log.info("summary scheduler: first start; the period %s – %s that just ended is not posted",
                         start, end)
        reports = []
        run = runs.claim(start, end, fire_at=fire, now=now, lease_until=now + self.lease)
        if run is not None:
            if now - fire > self.first_start_grace:
                log.info("summary scheduler: catching up on the missed period %s – %s", start, end)
            reports.append(await self._post(run))
        for due in runs.claim_due(self._now(), self._now() + self.lease):
            reports.append(await self._post(due))
        return reports

    async def _post(self, run: SummaryRun) -> RunReport:
        runs = self.runs
        summary = build_summary(self.service, run.period_start, run.period_end, now=self._now())
        try:
            outcomes = await announce(self.announcers, summary, lang=self.lang, done=run.done_steps,
                                      on_step=lambda step: runs.step_done(run.id, step, self._now()))
        except Exception as exc:  # rendering or an unexpected client error: recorded and retried like any failure
            log.exception("summary run %d failed unexpectedly", run.id)
            outcomes = [PostOutcome(destination="summary", where="(rendering)", ok=False,
                                    error=f"{type(exc).__name__}: {exc}")]
        now = self._now()
        errors = [f"{o.where}: {o.error}" for o in outcomes if not o.ok]
        if not outcomes:
            errors = ["no destination configured"]
        if not errors:
            runs.finish(run.id, now)
            log.info("summary for %s – %s posted (attempt %d)", run.period_start, run.period_end, run.attempts)
            return RunReport(run_id=run.id, period_start=run.period_start, period_end=run.period_end,
                             status="posted", attempt=run.attempts, outcomes=outcomes)
        error = "; ".join(errors)
        retry_at = None
        if run.attempts <= len(self.retry_delays):
            retry_at = now + timedelta(seconds=self.retry_delays[run.attempts - 1])
        runs.fail(run.id, error, now, retry_at=retry_at)
        if retry_at is None:
            log.error("summary for %s – %s not posted after %d attempts: %s", run.period_start, run.period_end,
                      run.attempts, error)
        else:
            log.warning("summary for %s – %s: attempt %d failed (%s); retrying at %s", run.period_start,
                        run.period_end, run.attempts, error, retry_at)
        return RunReport(run_id=run.id, period_start=run.period_start, period_end=run.period_end,
                         status="retrying" if retry_at else "failed", attempt=run.attempts, outcomes=outcomes,
                         error=error)

    def seconds_until_due(self) -> float:
        """How long the loop may sleep: until the next tick or retry, at most ``max_sleep``."""
        now = self._now()
        wake = self.next_fire(now)
        retry = self.runs.next_retry_at()
        if retry is not None and retry < wake:
            wake = retry
        return max(0.0, min(self.max_sleep, (wake - now).total_seconds()))

    # -- running inside serve (a FrontEnd without routes) ------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return []

    async def run_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick()
            except Exception:  # the loop must survive anything one tick does (a locked database, ...)
                log.exception("summary scheduler tick failed")
            delay = self.seconds_until_due()
            sleeper = asyncio.ensure_future(self.sleep(delay))
            stopper = asyncio.ensure_future(self._stopping.wait())
            try:
                await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sleeper, stopper):
                    task.cancel()

    async def start(self) -> None:
        if self._task is None:
            for announcer in self.announcers:  # said now, not at the first scheduled post days later
                problem = await announcer.check()
                if problem:
                    log.warning("summary destination %s: %s", announcer.where, problem)
            self._stopping.clear()
            self._task = asyncio.create_task(self.run_forever(), name="minpcode-summary-scheduler")
            log.info("summary scheduler: %r in %s, next at %s", self.cron, self.zone.key,
                     self.next_fire(self._now()))

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None


def scheduler_for(service: Service, announcers: Sequence[Announcer], **kwargs: object) -> SummaryScheduler | None:
    """The scheduler, or None (said once in the log) when there is nowhere to post or the cron is bad."""
    if not announcers:
        log.info("summary scheduler off: set SLACK_SUMMARY_CHANNEL (with SLACK_BOT_TOKEN) or WECOM_WEBHOOK_URL")
        return None
    try:
        return SummaryScheduler(service, announcers, **kwargs)  # type: ignore[arg-type]
    except ValueError as exc:
        log.error("summary scheduler off: %s", exc)
        return None


def summary_front_end(service: Service, announcers: Sequence[Announcer]) -> SummaryScheduler | None:
    """What ``minpcode serve`` mounts for scheduled summaries; None when there is nowhere to post."""
    return scheduler_for(service, announcers)


__all__ = ["RunReport", "SummaryScheduler", "scheduler_for", "summary_front_end"]
