"""Summary posts: one row per period, so each scheduled period is posted at most once.

A scheduled run is *claimed* before anything is posted (a unique index on the period makes the
claim the lock, across restarts and across processes). Each posting step that succeeds
(``slack.message``, ``slack.chart``, ``wecom.markdown``, ``wecom.image``) is recorded at once, so a
retry only redoes the steps that failed. Every attempt is kept in ``summary_attempts``.

    status   posting ─┬─> posted
                      ├─> retrying ──(next_attempt_at passes)──> posting ...
                      └─> failed          (no attempts left)
             skipped                      (a period that ended before the scheduler first ran)

Times are given by the caller (the scheduler's clock), stored as ``storage.clock`` text.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from storage.clock import from_text, to_text
from storage.engine import Database

RunStatus = Literal["posting", "retrying", "posted", "failed", "skipped"]
RunKind = Literal["scheduled", "manual"]

_COLUMNS = ("id, kind, period_start, period_end, fire_at, status, attempts, steps, last_error, "
            "next_attempt_at, lease_until, created_at, updated_at")


_INSERTED = _COLUMNS.removeprefix("id, ")  # the id is the database's to give


class SummaryRun(BaseModel):
    id: int
    kind: RunKind
    period_start: datetime
    period_end: datetime
    fire_at: datetime | None = None
    status: RunStatus
    attempts: int = 0
    steps: dict[str, str] = {}
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    lease_until: datetime | None = None
    created_at: datetime
    updated_at: datetime

    @property
    def done_steps(self) -> set[str]:
        return {step for step, state in self.steps.items() if state == "done"}


class SummaryAttempt(BaseModel):
    run_id: int
    at: datetime
    ok: bool
    error: str | None = None


class SummaryRuns:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- claiming ---------------------------------------------------------------------------------
    def claim(self, period_start: datetime, period_end: datetime, *, fire_at: datetime | None, now: datetime,
              lease_until: datetime) -> SummaryRun | None:
        """Claim a scheduled period for posting; None when it was already claimed, posted or skipped."""
        row = self._db.execute(
            f"INSERT INTO summary_runs ({_INSERTED}) VALUES ('scheduled', ?, ?, ?, 'posting', 1, "
            "'{}', NULL, NULL, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
            [to_text(period_start), to_text(period_end), _opt(fire_at), to_text(lease_until), to_text(now),
             to_text(now)],
        ).fetchone()
        if row is None:
            return None
        return self.get(int(row[0]))

    def skip(self, period_start: datetime, period_end: datetime, *, fire_at: datetime | None, now: datetime,
             reason: str) -> bool:
        """Mark a scheduled period as not to be posted (False if it already had a row)."""
        row = self._db.execute(
            f"INSERT INTO summary_runs ({_INSERTED}) VALUES ('scheduled', ?, ?, ?, 'skipped', 0, "
            "'{}', ?, NULL, NULL, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
            [to_text(period_start), to_text(period_end), _opt(fire_at), reason, to_text(now), to_text(now)],
        ).fetchone()
        return row is not None

    def claim_due(self, now: datetime, lease_until: datetime) -> list[SummaryRun]:
        """Runs whose retry time has come, or whose claimer died mid-post (lease passed); each claimed anew."""
        stamp = to_text(now)
        rows = self._db.execute(
            "SELECT id FROM summary_runs WHERE kind = 'scheduled' AND ("
            "(status = 'retrying' AND next_attempt_at <= ?) OR (status = 'posting' AND lease_until <= ?)) "
            "ORDER BY period_end", [stamp, stamp],
        ).fetchall()
        claimed = []
        for (run_id,) in rows:
            cursor = self._db.execute(
                "UPDATE summary_runs SET status = 'posting', attempts = attempts + 1, lease_until = ?, "
                "next_attempt_at = NULL, updated_at = ? WHERE id = ? AND ("
                "(status = 'retrying' AND next_attempt_at <= ?) OR (status = 'posting' AND lease_until <= ?))",
                [to_text(lease_until), stamp, run_id, stamp, stamp],
            )
            if cursor.rowcount == 1:
                run = self.get(int(run_id))
                if run is not None:
                    claimed.append(run)
        return claimed

    def start_manual(self, period_start: datetime, period_end: datetime, *, now: datetime) -> SummaryRun:
        """An on-demand post (``minpcode summary --post``): recorded, never deduplicated."""
        row = self._db.execute(
            f"INSERT INTO summary_runs ({_INSERTED}) VALUES ('manual', ?, ?, NULL, 'posting', 1, '{{}}', "
            "NULL, NULL, NULL, ?, ?) RETURNING id",
            [to_text(period_start), to_text(period_end), to_text(now), to_text(now)],
        ).fetchone()
        run = self.get(int(row[0]))
        assert run is not None
        return run

    # -- progress -----------------------------------------------------------------------------------
    def step_done(self, run_id: int, step: str, now: datetime) -> None:
        name = step.replace('"', "")
        if self._db.dialect == "postgresql":
            self._db.execute("UPDATE summary_runs SET steps = (steps::jsonb || jsonb_build_object(?::text, 'done'))::text, "
                             "updated_at = ? WHERE id = ?", [name, to_text(now), run_id])
            return
        self._db.execute(
            "UPDATE summary_runs SET steps = json_set(steps, ?, 'done'), updated_at = ? WHERE id = ?",
            ['$."' + name + '"', to_text(now), run_id],  # quoted: step names contain dots
        )

    def finish(self, run_id: int, now: datetime) -> None:
        """Every step posted."""
        self._db.execute(
            "UPDATE summary_runs SET status = 'posted', last_error = NULL, lease_until = NULL, "
            "next_attempt_at = NULL, updated_at = ? WHERE id = ?", [to_text(now), run_id],
        )
        self._attempt(run_id, now, True, None)

    def fail(self, run_id: int, error: str, now: datetime, *, retry_at: datetime | None) -> None:
        """This attempt failed: retry at ``retry_at``, or give up (``failed``) when it is None."""
        status = "retrying" if retry_at is not None else "failed"
        self._db.execute(
            "UPDATE summary_runs SET status = ?, last_error = ?, next_attempt_at = ?, lease_until = NULL, "
            "updated_at = ? WHERE id = ?", [status, error, _opt(retry_at), to_text(now), run_id],
        )
        self._attempt(run_id, now, False, error)

    # -- reading ------------------------------------------------------------------------------------
    def get(self, run_id: int) -> SummaryRun | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM summary_runs WHERE id = ?", [run_id]).fetchone()
        return _run(row) if row else None

    def for_period(self, period_start: datetime, period_end: datetime) -> SummaryRun | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM summary_runs WHERE kind = 'scheduled' AND period_start = ? AND period_end = ?",
            [to_text(period_start), to_text(period_end)],
        ).fetchone()
        return _run(row) if row else None

    def scheduled_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM summary_runs WHERE kind = 'scheduled'").fetchone()[0])

    def recent(self, limit: int = 20, kind: RunKind | None = None) -> list[SummaryRun]:
        where, params = ("WHERE kind = ?", [kind]) if kind else ("", [])
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM summary_runs {where} ORDER BY period_end DESC, id DESC LIMIT ?", [*params, limit]
        ).fetchall()
        return [_run(r) for r in rows]

    def next_retry_at(self) -> datetime | None:
        """When the earliest waiting retry (or lease expiry) falls due."""
        row = self._db.execute(
            "SELECT min(t) FROM (SELECT next_attempt_at AS t FROM summary_runs WHERE status = 'retrying' "
            "UNION ALL SELECT lease_until FROM summary_runs WHERE status = 'posting' AND kind = 'scheduled') AS due"
        ).fetchone()
        return from_text(row[0]) if row and row[0] else None

    def attempts(self, run_id: int) -> list[SummaryAttempt]:
        rows = self._db.execute(
            "SELECT run_id, at, ok, error FROM summary_attempts WHERE run_id = ? ORDER BY id", [run_id]
        ).fetchall()
        return [SummaryAttempt(run_id=r[0], at=from_text(r[1]), ok=bool(r[2]), error=r[3]) for r in rows]

    def _attempt(self, run_id: int, now: datetime, ok: bool, error: str | None) -> None:
        self._db.execute(
            "INSERT INTO summary_attempts (run_id, at, ok, error) VALUES (?, ?, ?, ?)",
            [run_id, to_text(now), int(ok), error],
        )


def _opt(moment: datetime | None) -> str | None:
    return to_text(moment) if moment is not None else None


def _run(row: tuple[Any, ...]) -> SummaryRun:
    names = [c.strip() for c in _COLUMNS.split(",")]
    data = dict(zip(names, row, strict=True))
    for key in ("period_start", "period_end", "fire_at", "next_attempt_at", "lease_until", "created_at", "updated_at"):
        if data[key] is not None:
            data[key] = from_text(data[key])
    data["steps"] = json.loads(data["steps"] or "{}")
    return SummaryRun.model_validate(data)


__all__ = ["SummaryAttempt", "SummaryRun", "SummaryRuns"]
