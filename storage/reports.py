"""Aggregate reads for summaries that the other stores do not offer (no writes here)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from storage.engine import Database

# What the summary calls made / failed (bot/summary.py): a deleted row was made if it got something from
# upstream, and failed if it got nothing but an error. A sharper copy for a poster is its original's image,
# not a code made (_ORIGINAL). _MADE and _ORIGINAL are, word for word, the WHERE of the partial index
# codes_made (migration codes_copy_of): SQLite uses a partial index only for a query that repeats its
# condition, and INDEXED BY turns any drift into an error instead of a slow scan.
_MADE = ("(status = 'done' OR (status = 'deleted' AND "
         "(image_sha256 IS NOT NULL OR link IS NOT NULL OR tracking_url IS NOT NULL)))")
_ORIGINAL = "copy_of IS NULL"
_HAS_ERROR = "(error_code IS NOT NULL OR coalesce(error_zh, '') != '' OR coalesce(error_en, '') != '')"
TOP_PAGES = 10


class FailureCount(BaseModel):
    """Failed requests with the same stored code and sentences; ``ids`` oldest first."""

    code: str | None
    zh: str | None
    en: str | None
    count: int
    ids: list[str]


class PeriodCounts(BaseModel):
    """Every count a summary shows for ``[since, until)``, from one statement (one consistent read).

    Tallies are ``(name, count)`` with ``name`` None for "not set"; the ``daily_*`` maps are keyed by
    the day's position in the period, with ``""`` for "not set"; ``top_pages`` counts made codes and
    reuses together.
    """

    requested: int = 0
    made: int = 0
    deleted: int = 0
    failed: int = 0
    pending: int = 0
    tracking_links: int = 0
    by_type: list[tuple[str, int]] = []
    by_campaign: list[tuple[str | None, int]] = []
    by_channel: list[tuple[str | None, int]] = []
    by_person: list[tuple[str, int]] = []
    failures: list[FailureCount] = []
    top_pages: list[tuple[str, int]] = []
    daily_total: dict[int, int] = {}
    daily_campaign: dict[int, dict[str, int]] = {}
    daily_channel: dict[int, dict[str, int]] = {}


class ReuseRow(BaseModel):
    """One "reused" audit entry joined with the code that was offered again."""

    actor: str
    code_id: str | None = None
    type: str | None = None
    app: str | None = None
    page: str | None = None
    campaign: str | None = None
    channel: str | None = None
    requested_by_name: str | None = None


class Reports:
    def __init__(self, db: Database) -> None:
        self._db = db

    def reuses(self, since: str, until: str) -> list[ReuseRow]:
        """Every reuse recorded in [since, until), with the reused code's type, app and page."""
        rows = self._db.execute(
            "SELECT a.actor, a.code_id, c.type, c.app, c.page, c.campaign, c.channel, "
            "(SELECT c2.requested_by_name FROM codes c2 WHERE c2.requested_by = a.actor "
            " AND c2.requested_by_name IS NOT NULL ORDER BY c2.created_at DESC LIMIT 1) "
            "FROM audit a LEFT JOIN codes c ON c.id = a.code_id "
            "WHERE a.action = 'reused' AND a.at >= ? AND a.at < ? ORDER BY a.at",
            [since, until],
        ).fetchall()
        names = ("actor", "code_id", "type", "app", "page", "campaign", "channel", "requested_by_name")
        return [ReuseRow.model_validate(dict(zip(names, row, strict=True))) for row in rows]

    def period(self, since: str, until: str, day_starts: Sequence[str] = ()) -> PeriodCounts:
        """Every count of ``[since, until)`` in one aggregate statement (one consistent read): no row
        becomes a record, so a week of a million-row history reads in milliseconds.

        ``day_starts``: when each local day after the first begins (stored-time text, ascending); the
        daily counts are keyed by the day's position (0 = the first day). Comparing text keeps every
        time zone and daylight-saving switch exact.
        """
        params: dict[str, str] = {"since": since, "until": until}
        params.update({f"b{i}": start for i, start in enumerate(day_starts, start=1)})
        day = _day_index(0, len(day_starts) + 1)
        if self._db.dialect == "postgresql":
            return _period_counts(self._db.execute(_postgres_period(day), params).fetchall())
        period = "created_at >= :since AND created_at < :until"
        # Made rows come from the covering index codes_made alone; requested, pending and the few
        # failures from (created_at, status), reading a row only for a failure's reasons.
        made = f"FROM codes INDEXED BY codes_made WHERE {period} AND {_MADE} AND {_ORIGINAL}"
        sql = f"""
            SELECT 'group', {day}, type, count(*), provider, status, campaign, channel {made}
                   GROUP BY 2, campaign, channel, type, provider, status
            UNION ALL SELECT 'all', NULL, NULL, count(*), count(*) FILTER (WHERE status = 'pending'), 0, 0, 0
                   FROM codes INDEXED BY codes_created_status WHERE {period}
            UNION ALL SELECT 'person', coalesce(requested_by_name, requested_by), NULL, count(*), 0, 0, 0, 0
                   {made} GROUP BY 2
            UNION ALL SELECT 'failure', error_code, zh || char(10) || en, count(*),
                   group_concat(created_at || ' ' || id, ','), 0, 0, 0 FROM (
                SELECT id, created_at, error_code, trim(coalesce(error_zh, '')) AS zh,
                       trim(coalesce(error_en, '')) AS en
                FROM codes INDEXED BY codes_created_status
                WHERE {period} AND (status = 'failed' OR (status = 'deleted' AND NOT {_MADE} AND {_HAS_ERROR}))
            ) GROUP BY error_code, zh, en
            UNION ALL SELECT * FROM (
                SELECT 'page', page, NULL, count(*), 0, 0, 0, 0 FROM (
                    SELECT page {made}
                    UNION ALL SELECT c.page FROM audit a JOIN codes c ON c.id = a.code_id
                    WHERE a.action = 'reused' AND a.at >= :since AND a.at < :until AND c.page IS NOT NULL
                ) GROUP BY page ORDER BY count(*) DESC, page LIMIT {TOP_PAGES})
        """
        return _period_counts(self._db.execute(sql, params).fetchall())


def _postgres_period(day: str) -> str:
    """:meth:`Reports.period`'s statement in PostgreSQL's words: no INDEXED BY (its planner picks codes_made
    by itself), string_agg for group_concat, every branch's columns of one type (a UNION must agree), and
    an alias on every subquery."""
    period = "created_at >= :since AND created_at < :until"
    made = f"FROM codes WHERE {period} AND {_MADE} AND {_ORIGINAL}"
    return f"""
        SELECT 'group', CAST({day} AS TEXT), type, count(*), provider, status, campaign, channel {made}
               GROUP BY 2, campaign, channel, type, provider, status
        UNION ALL SELECT 'all', NULL, NULL, count(*), CAST(count(*) FILTER (WHERE status = 'pending') AS TEXT),
               NULL, NULL, NULL FROM codes WHERE {period}
        UNION ALL SELECT 'person', coalesce(requested_by_name, requested_by), NULL, count(*), NULL, NULL, NULL, NULL
               {made} GROUP BY 2
        UNION ALL SELECT 'failure', error_code, zh || chr(10) || en, count(*),
               string_agg(created_at || ' ' || id, ','), NULL, NULL, NULL FROM (
            SELECT id, created_at, error_code, trim(coalesce(error_zh, '')) AS zh,
                   trim(coalesce(error_en, '')) AS en
            FROM codes
            WHERE {period} AND (status = 'failed' OR (status = 'deleted' AND NOT {_MADE} AND {_HAS_ERROR}))
        ) AS failed GROUP BY error_code, zh, en
        UNION ALL SELECT * FROM (
            SELECT 'page', page, NULL, count(*), NULL, NULL, NULL, NULL FROM (
                SELECT page {made}
                UNION ALL SELECT c.page FROM audit a JOIN codes c ON c.id = a.code_id
                WHERE a.action = 'reused' AND a.at >= :since AND a.at < :until AND c.page IS NOT NULL
            ) AS pages GROUP BY page ORDER BY count(*) DESC, page LIMIT {TOP_PAGES}) AS top
    """


def _day_index(lo: int, hi: int) -> str:
    """SQL for the position of ``created_at`` among days ``lo``..``hi - 1``: a binary search over the
    ``:b<i>`` day starts, so a year costs nine text comparisons a row and a week three."""
    if hi - lo <= 1:
        return str(lo)
    mid = (lo + hi) // 2
    return f"(CASE WHEN created_at < :b{mid} THEN {_day_index(lo, mid)} ELSE {_day_index(mid, hi)} END)"


def _period_counts(rows: list[tuple[Any, ...]]) -> PeriodCounts:
    out = PeriodCounts()
    types: Counter[str] = Counter()
    campaigns: Counter[str | None] = Counter()
    channels: Counter[str | None] = Counter()
    daily_total: Counter[int] = Counter()
    daily_campaign: dict[int, dict[str, int]] = defaultdict(dict)
    daily_channel: dict[int, dict[str, int]] = defaultdict(dict)
    for kind, k1, k2, n, a, b, c, d in rows:
        if kind == "all":
            out.requested, out.pending = int(n), int(a)  # text on PostgreSQL, where a UNION's columns agree
        elif kind == "group":  # made codes: one group per day, type, provider, status, campaign and channel
            provider, status, campaign, channel = a, b, c, d
            out.made += n
            out.deleted += n if status == "deleted" else 0
            out.tracking_links += n if provider == "gio" else 0
            types[k2] += n
            campaigns[campaign] += n
            channels[channel] += n
            day = int(k1)
            daily_total[day] += n
            daily_campaign[day][campaign or ""] = daily_campaign[day].get(campaign or "", 0) + n
            daily_channel[day][channel or ""] = daily_channel[day].get(channel or "", 0) + n
        elif kind == "person":
            out.by_person.append((k1, n))
        elif kind == "failure":
            zh, _, en = str(k2).partition("\n")
            ids = [item.split(" ", 1)[1] for item in sorted(str(a).split(","))]
            out.failures.append(FailureCount(code=k1, zh=zh or None, en=en or None, count=n, ids=ids))
            out.failed += n
        elif kind == "page":
            out.top_pages.append((k1, n))
    out.by_type, out.by_campaign, out.by_channel = list(types.items()), list(campaigns.items()), list(channels.items())
    out.daily_total = dict(daily_total)
    out.daily_campaign, out.daily_channel = dict(daily_campaign), dict(daily_channel)
    return out


__all__ = ["FailureCount", "PeriodCounts", "Reports", "ReuseRow"]
