"""Posting a summary to the places the process was given (bot/ports.py ``Announcer``), keeping the books.

The chart is drawn once and shared; each announcer posts its own rendering in steps. A failure in
one place does not stop the others; every step done is reported at once (the scheduler and the
summary runs record it), so a retry posts only what is missing.

    outcomes = await announce(announcers, summary, lang="zh", done=run.done_steps, on_step=record)
    text, code = await cli_summary(service, announcers, days=7, post=True)   # ``minpcode summary``
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime

from bot.ports import Announcement, Announcer, OnStep, PostError, PostOutcome
from bot.service import Service
from bot.summary import (
    MAX_DAYS,
    Lang,
    Summary,
    chart_filename,
    chart_title,
    render_text,
    summary_chart,
    summary_for_days,
)

log = logging.getLogger("minpcode.announce")


async def step(name: str, done: set[str], on_step: OnStep, call: Callable[[], Awaitable[object]]) -> None:
    """Run one step unless it is in ``done``; report it the moment it succeeds."""
    if name in done:
        return
    await call()
    done.add(name)
    on_step(name)


async def announce(announcers: Sequence[Announcer], summary: Summary, *, lang: Lang = "zh",
                   done: Iterable[str] = (), on_step: OnStep | None = None) -> list[PostOutcome]:
    """Post ``summary`` to every announcer (skipping ``done`` steps); one outcome each."""
    png = await asyncio.to_thread(summary_chart, summary, lang) if announcers else None
    announcement = Announcement(summary=summary, lang=lang, png=png, filename=chart_filename(summary),
                                title=chart_title(summary, lang))
    finished = set(done)
    outcomes = []
    for announcer in announcers:
        steps: list[str] = []

        def record(name: str, steps: list[str] = steps) -> None:
            steps.append(name)
            if on_step is not None:
                on_step(name)

        try:
            await announcer.announce(announcement, done=finished, on_step=record)
        except PostError as exc:
            log.warning("summary post to %s failed: %s", announcer.where, exc.detail)
            outcomes.append(PostOutcome(destination=announcer.name, where=announcer.where, ok=False, steps=steps,
                                        error=exc.detail, retryable=exc.retryable))
        else:
            outcomes.append(PostOutcome(destination=announcer.name, where=announcer.where, ok=True, steps=steps))
    return outcomes


async def post_and_record(service: Service, announcers: Sequence[Announcer], summary: Summary, *,
                          lang: Lang = "zh", now: datetime | None = None) -> list[PostOutcome]:
    """An on-demand post, recorded in the summary runs (kind ``manual``) with its outcome."""
    runs = service.storage.summary_runs
    now = now or datetime.now(UTC)
    run = runs.start_manual(summary.start, summary.end, now=now)
    try:
        outcomes = await announce(announcers, summary, lang=lang,
                                  on_step=lambda name: runs.step_done(run.id, name, now))
    except BaseException as exc:
        runs.fail(run.id, f"{type(exc).__name__}: {exc}", now, retry_at=None)
        raise
    errors = [o.error for o in outcomes if not o.ok and o.error]
    if errors:
        runs.fail(run.id, "; ".join(errors), now, retry_at=None)
    else:
        runs.finish(run.id, now)
    return outcomes


async def cli_summary(service: Service, announcers: Sequence[Announcer] = (), *, days: int | None = None,
                      post: bool = False, as_json: bool = False, now: datetime | None = None,
                      lang: Lang | None = None) -> tuple[str, int]:
    """``minpcode summary [--days N] [--post] [--json]`` → (what to print, exit code).

    Exit codes: 0 done; 1 a configured destination refused the post; 2 bad days, or ``--post`` with
    no SLACK_SUMMARY_CHANNEL (with SLACK_BOT_TOKEN) nor WECOM_WEBHOOK_URL configured.
    The text is in Chinese when the terminal's locale is (LANG=zh_…), in English otherwise.
    """
    lang = lang or service.settings.terminal_lang
    if days is not None and not 1 <= days <= MAX_DAYS:
        message = (f"天数须在 1 到 {MAX_DAYS} 之间。" if lang == "zh" else f"--days must be between 1 and {MAX_DAYS}.")
        return message, 2
    if post and not announcers:
        message = ("没有可发送的地方：请设置 SLACK_SUMMARY_CHANNEL（及 SLACK_BOT_TOKEN）或 WECOM_WEBHOOK_URL。"
                   if lang == "zh" else
                   "Nowhere to post: set SLACK_SUMMARY_CHANNEL (with SLACK_BOT_TOKEN) or WECOM_WEBHOOK_URL.")
        return message, 2
    now = now or datetime.now(UTC)
    summary = summary_for_days(service, days, now=now)
    outcomes: list[PostOutcome] = []
    if post:
        outcomes = await post_and_record(service, announcers, summary, lang=lang, now=now)
    failed = any(not o.ok for o in outcomes)
    if as_json:
        data = summary.model_dump(mode="json")
        if post:
            data["posted"] = [o.model_dump(mode="json") for o in outcomes]
        return json.dumps(data, ensure_ascii=False, indent=2), 1 if failed else 0
    text = render_text(summary, lang)
    if outcomes:
        text += "\n\n" + "\n".join(o.describe(lang) for o in outcomes)
    return text, 1 if failed else 0


__all__ = ["announce", "cli_summary", "post_and_record", "step"]
