"""Live codes (活码): a B code printed once whose destination can change, and whose scans are counted.

A live code is a B code (never A/C quota) for one fixed page of the mini program, the router page
(``MINPCODE_ROUTER_PAGE``), whose scene is a key in the long-scene format (``k=`` + 10 letters and
digits, bot/scenes.py): the router page asks ``GET /api/scenes/{key}`` where to go and redirects
there. The destination is a page with its query (up to 1024 characters; a GrowingIO tracking URL
``pages/x?aid=…`` fits). Re-pointing changes one row (no WeChat call, the image never changes);
every destination is kept with who set it and when. A paused or expired code leads to the fallback
page (``MINPCODE_FALLBACK_PAGE``) until it is resumed.

Resolving is on every scan's path: answers come from memory (an LRU of keys kept ``CACHE_SECONDS``,
dropped at once on a change made here) or one indexed read, and the scan is counted in memory
(bot/live/scans.py writes it).

A scan of a key that exists is always answered: a refused scan would send a person to the fallback
page, and phones behind one address (a venue's Wi-Fi, a carrier's NAT) are normal. What is limited is
what a scan adds to the counts: beyond ``MINPCODE_RESOLVER_RATE`` a minute from one address for one code,
scans are answered and not counted; a scan from a develop/trial/review build or the IDE is counted apart
as a test scan; one from another mini program is answered and not counted (:func:`scan_origin`).
"""

from __future__ import annotations

import io
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import segno
from pydantic import BaseModel

from bot import scenes
from bot.concurrency import PerClientLimit
from bot.destinations import destination_errors
from bot.errors import FieldError, InputError
from bot.live.routes import PLATFORMS, RouteChange, Routes, Window, routes_from_json
from bot.live.scans import ScanRecorder
from bot.metrics import METRICS
from bot.models import CodeRecord, CodeType, Requester, Status, page_path
from storage import Storage
from storage.live import LiveRow, Resolved
from storage.scans import TEST_SOURCE
from storage.webhooks import Events

CACHE_MAX = 50_000      # keys kept in memory; a miss is one indexed read
CACHE_SECONDS = 1.0     # how long a key is answered from memory: a change made by another process or host (the
                        # CLI while serve runs, another replica) is seen within this; changes made here drop the
                        # entry at once. Issue 25 promises every host leads to a new page within 2 s: this is half,
                        # so a scan's own request time fits in the rest (one indexed read per key a second).
STATS_DAYS = 30         # days of the per-day chart


class NotLive(InputError):
    code_name = "not_live"


class Share(BaseModel):
    page: str
    weight: int


class DatedRoute(BaseModel):
    page: str
    from_day: date | None       # its first day in MINPCODE_TIMEZONE; None: from now
    until_day: date | None      # its last day; None: open-ended


class RoutesView(BaseModel):
    """A live code's routes (bot/live/routes.py): a scan takes the dated route while it holds, else the rule for
    its phone's platform, else its share, else the default destination."""

    shares: list[Share] = []
    platforms: dict[str, str] = {}      # ios / android / ohos / other -> page
    dated: DatedRoute | None = None

    def lines(self, lang: str) -> list[str]:
        """One line per kind of route, in ``lang``."""
        d = self.dated
        return Routes(shares=tuple((s.page, s.weight) for s in self.shares), platforms=tuple(self.platforms.items()),
                      window=Window(d.page, d.from_day, d.until_day) if d else None).describe(lang)


def routes_view(routes: Routes) -> RoutesView | None:
    if not routes:
        return None
    w = routes.window
    return RoutesView(shares=[Share(page=p, weight=n) for p, n in routes.shares], platforms=dict(routes.platforms),
                      dated=DatedRoute(page=w.page, from_day=w.first, until_day=w.last) if w else None)


class Destination(BaseModel):
    page: str
    set_by: str | None
    set_at: datetime
    routes: RoutesView | None = None


class ScanCounts(BaseModel):
    total: int = 0
    today: int = 0
    last_7_days: int = 0
    unique: int = 0     # distinct visitors among scans that sent a visitor value
    tests: int = 0      # test scans (develop/trial/review builds, the IDE): in none of the figures above


class LiveView(BaseModel):
    """What show, stats, the CLI's ``--json`` and the API say about one live code."""

    code_id: str
    key: str
    destination: str        # '' while the code is blank
    blank: bool = False     # a blank code (空码): no destination yet, scans open the fallback page until repoint binds it
    paused: bool
    expired: bool
    expires_at: datetime | None     # the instant it stops leading to the destination
    expires_on: date | None         # its last day, in MINPCODE_TIMEZONE
    leads_to: str           # where a scan goes now: the destination, or the fallback page
    destinations: list[Destination]
    scans: ScanCounts
    routes: RoutesView | None = None    # None: every scan goes to the destination


class DayScans(BaseModel):
    day: date
    scans: int
    pages: dict[str, int] = {}  # the day's scans per page they were sent to


UNKNOWN = "unknown"  # a scan's platform or page when it was not reported or predates routes


class ScanBreakdown(BaseModel):
    """A live code's real scans over a period, counted per page sent to, per platform, per source."""

    days: int
    pages: dict[str, int]
    platforms: dict[str, int]   # as the router page reports wx.getDeviceInfo().platform; "unknown" when not sent
    sources: dict[str, int]     # wxa: the B code; link: the plain-link QR opened in WeChat; web: /q/ outside WeChat


@dataclass(frozen=True)
class Resolution:
    """The resolver's answer for one key (``page`` and ``query`` split from where it leads now)."""

    key: str
    scene: str
    page: str | None
    query: str
    live: bool
    paused: bool


SOURCES = frozenset({"wxa", "link", "web"})  # how a scan reached us (see ScanBreakdown.sources)


# wx.request sends a Referer it cannot change: https://servicewechat.com/{appid}/{version}/page-frame.html, version
# 0 for a develop, trial or review build and "devtools" for the IDE, any other for the released version
# (https://developers.weixin.qq.com/miniprogram/dev/framework/ability/network.html, 使用限制).
WXA_REFERER = "https://servicewechat.com/"
WXA_PAGE = "page-frame.html"
TEST_VERSIONS = frozenset({"0", "devtools"})
Origin = Literal["real", "test", "other"]


def scan_origin(referer: str | None, appid: str | None) -> Origin:
    """Whose scan this is, from the request's Referer: ``real``, ``test`` (a develop/trial/review build or
    the IDE: counted apart) or ``other`` (another mini program's page asked: answered, not counted).

    Our assumption, not WeChat's rule: a request without that Referer (the /q/ page in a browser, another
    client, a proxy that drops it) is counted as it always was, as a real scan; a Referer proves nothing
    against a forger anyway, it only keeps honest test builds and other mini programs out of the counts.
    With no appid configured, no mini program can be told from ours."""
    if not referer or not referer.startswith(WXA_REFERER):
        return "real"
    # a split rather than a regular expression: this runs on every scan
    parts = referer[len(WXA_REFERER):].split("/")
    if len(parts) != 3 or parts[2] != WXA_PAGE or not parts[0] or not parts[1]:
        return "real"  # not the documented form
    if appid and parts[0] != appid:
        return "other"
    return "test" if parts[1] in TEST_VERSIONS else "real"


def split(destination: str) -> tuple[str, str]:
    page, _, query = destination.partition("?")
    return page, query


def link_qr(url: str, scale: int = 10) -> bytes:
    """A square QR code of ``url`` as PNG bytes (the plain-link form: no WeChat call, no quota)."""
    buffer = io.BytesIO()
    segno.make(url, error="m", micro=False).save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


def normal_key(key: str) -> str | None:
    """``key`` as stored (``k=`` + 10), from the forms a mini program may send; None if it is no key."""
    key = key.strip()
    if len(key) > 64:
        return None
    if not key.startswith(scenes.KEY_PREFIX):
        key = scenes.KEY_PREFIX + key
    return key if scenes.is_key(key) else None


class LiveCodes:
    def __init__(self, storage: Storage, recorder: ScanRecorder, *, router_page: str, fallback_page: str,
                 zone: ZoneInfo, appid: str | None = None, counted_per_minute: int = 600,
                 clock: Callable[[], float] | None = None) -> None:
        self.storage = storage
        self.recorder = recorder
        self.router_page = page_path(router_page)
        self.fallback_page = page_path(fallback_page)
        self.zone = zone
        self.appid = appid      # the mini program whose Referer counts (scan_origin); None: any
        # One bucket per address and code: a venue's phones behind one address are counted up to this rate,
        # a script replaying one code from one address adds no more than it to the counts.
        self.counted = PerClientLimit(counted_per_minute)
        self._cache: OrderedDict[str, tuple[Resolved, float]] = OrderedDict()
        self._clock = clock     # injected by tests of dated routes; None: the wall clock, read when asked

    def now(self) -> float:
        return self._clock() if self._clock is not None else time.time()

    # -- making ------------------------------------------------------------------------------------
    def place(self, data: dict[str, object]) -> None:
        """Turn a ``live`` request's page into its destination, and aim the code at the router page."""
        if data.get("live") is not True or data.get("destination") is not None:
            return  # not live, or placed already (a request prepared twice)
        scene = data.get("scene")
        if isinstance(scene, str) and scene.strip():
            raise FieldError("scene", "活码的 scene 由 minpcode 填写（一个编号），请去掉 scene，把参数写进页面的 ?参数。",
                             "A live code's scene is a key minpcode fills in; leave out the scene and put "
                             "parameters in the page's ?query.")
        page = data.get("page")
        data["destination"] = page.strip() if isinstance(page, str) else page
        kind = data.get("type")
        if kind and str(getattr(kind, "value", kind)).strip().upper() != "B":
            return  # the model says a live code is a B code
        data["page"] = self.router_page
        data["scene"] = self._new_key()

    def _new_key(self) -> str:
        while True:  # a taken key (odds ~1e-17 per draw) just means: draw another
            key = scenes.new_key()
            if not self.storage.live.taken(key):
                return key

    def register(self, record: CodeRecord, destination: str, expires: date | None, requester: Requester) -> None:
        """Store the key of a live code just recorded (before the worker asks WeChat for its image)."""
        assert record.scene is not None
        until = self.end_of(expires) if expires is not None else None
        self.storage.live.create(record.scene, record.id, destination, requester.key, until)
        self._cache.pop(record.scene, None)

    def end_of(self, day: date) -> float:
        """The end of ``day`` in MINPCODE_TIMEZONE, as Unix seconds (a code expiring on a day works all of it)."""
        return datetime.combine(day + timedelta(days=1), datetime.min.time(), self.zone).timestamp()

    # -- managing ----------------------------------------------------------------------------------
    def row(self, record: CodeRecord) -> LiveRow:
        row = self.storage.live.for_code(record.id)
        if row is None:
            raise NotLive(f"码 {record.id} 不是活码，不能改指向、暂停或统计扫码。",
                          f"Code {record.id} is not a live code: it cannot be re-pointed, paused or counted.")
        return row

    def repoint(self, record: CodeRecord, destination: str | RouteChange, requester: Requester,
                events: Events | None = None) -> LiveRow:
        """Send scans to ``destination`` from now on (its routes cleared), or apply a :class:`RouteChange`: new
        routes with a default, or (dated) a window beside the code's other routes. ``events``: the webhook events
        of the change, written in its transaction (storage/webhooks.py)."""
        row = self.row(record)
        if isinstance(destination, str):
            destination = page_path(destination)
            errors = destination_errors(destination)
            if errors:
                raise errors[0]
            change = RouteChange(destination, Routes())
        else:
            change = destination
        page = change.default or row.page
        routes = change.routes
        if change.keep_routes:
            kept = routes_from_json(row.routes, self.zone)
            routes = Routes(shares=kept.shares, platforms=kept.platforms, window=routes.window)
        stored = routes.to_json()
        self.storage.live.set_page(row.key, page, requester.key, stored, events)
        self.storage.audit.record(requester.key, "repointed", record.id, old=row.page, new=page,
                                  **({"routes": stored} if stored else {}))
        return self._changed(row.key)

    def set_paused(self, record: CodeRecord, paused: bool, requester: Requester,
                   events: Events | None = None) -> LiveRow:
        row = self.row(record)
        # Resuming an expired code lifts the expiry too: "resume" means "lead to the destination again".
        self.storage.live.set_paused(row.key, paused, clear_expiry=not paused and self._expired(row), events=events)
        self.storage.audit.record(requester.key, "paused" if paused else "resumed", record.id)
        return self._changed(row.key)

    def _changed(self, key: str) -> LiveRow:
        self._cache.pop(key, None)
        found = self.storage.live.get(key)
        assert found is not None
        return found

    def leads_to(self, row: LiveRow) -> str:
        """Where a scan of the code leads now: its destination, or the fallback page while paused or expired."""
        stopped = row.paused or self._expired(row) or (not row.page and row.routes is None)  # or blank (空码)
        return self.fallback_page if stopped else row.page

    def _expired(self, row: LiveRow, now: float | None = None) -> bool:
        return row.expires_at is not None and (now if now is not None else self.now()) >= row.expires_at

    # -- resolving ---------------------------------------------------------------------------------
    def lookup(self, key: str) -> Resolved:
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[1] < CACHE_SECONDS:
            self._cache.move_to_end(key)
            return cached[0]
        found = self.storage.live.resolve(key)
        if found.live is None and found.params is None:
            return found  # unknown keys are not kept: they would crowd out the real ones
        self._cache[key] = (found, now)
        self._cache.move_to_end(key)
        if len(self._cache) > CACHE_MAX:
            self._cache.popitem(last=False)
        return found

    def resolve(self, raw_key: str, *, visitor: str | None = None, source: str = "wxa", client: str | None = None,
                referer: str | None = None, platform: str | None = None) -> Resolution | None:
        """Where ``raw_key`` leads now, counting the scan of a live code; None for any unknown key.

        A live code's scan is always answered; it is counted unless :meth:`uncounted` says why not. ``platform``
        (as :func:`bot.live.routes.reported_platform` keeps it) and ``visitor`` choose among the code's routes."""
        key = normal_key(raw_key)
        if key is None:
            return None
        found = self.lookup(key)
        if found.live is not None:
            row = found.live
            now = self.now()
            # not row.page and no routes: a blank code (空码), not bound yet, opens the fallback page
            stopped = row.paused or self._expired(row, now) or (not row.page and row.routes is None)
            if stopped:
                destination = self.fallback_page
            elif row.routes is None:
                destination = row.page
            else:  # parsed once per stored text (cached), so a routed scan costs a dict lookup and a hash
                destination = routes_from_json(row.routes, self.zone).pick(row.page, key=key, visitor=visitor,
                                                                            platform=platform, now=now) \
                    or self.fallback_page
            origin = scan_origin(referer, self.appid)
            why = self.uncounted(key, origin, client)
            if why is None:
                self.recorder.record(key, visitor=visitor, source=TEST_SOURCE if origin == "test" else source,
                                     page=destination, platform=platform)
            else:
                METRICS.scans_uncounted.labels(why).inc()
            page, query = split(destination)
            return Resolution(key, query, page, query, True, stopped)
        if found.params is not None:
            return Resolution(key, found.params, None, found.params, False, False)
        return None

    def uncounted(self, key: str, origin: Origin, client: str | None) -> str | None:
        """Why a scan of ``key`` is not counted (``other_app``, ``rate``), or None: count it."""
        if origin == "other":
            return "other_app"
        if client is not None and not self.counted.allow(f"{client} {key}"):
            return "rate"
        return None

    # -- reading -----------------------------------------------------------------------------------
    def view(self, record: CodeRecord, row: LiveRow | None = None) -> LiveView | None:
        row = row or self.storage.live.for_code(record.id)
        if row is None:
            return None
        self.recorder.flush()
        expired = self._expired(row)
        ends = datetime.fromtimestamp(row.expires_at, self.zone) if row.expires_at is not None else None
        routes = routes_view(routes_from_json(row.routes, self.zone))
        return LiveView(
            code_id=record.id, key=row.key, destination=row.page, blank=not row.page and row.routes is None,
            paused=row.paused, expired=expired, expires_at=ends,
            expires_on=(ends - timedelta(seconds=1)).date() if ends else None,
            leads_to=self.leads_to(row),
            destinations=[Destination(page=d.page, set_by=d.set_by, set_at=d.set_at,
                                      routes=routes_view(routes_from_json(d.routes, self.zone)))
                          for d in self.storage.live.destinations(row.key)],
            scans=self.counts(row.key), routes=routes,
        )

    def counts(self, key: str) -> ScanCounts:
        store = self.storage.scans
        today = self._midnight(self._today())
        return ScanCounts(total=store.count(key), today=store.count(key, today),
                          last_7_days=store.count(key, today - 6 * 86400), unique=store.unique(key),
                          tests=store.count(key, tests=True))

    def totals(self, records: list[CodeRecord]) -> dict[str, tuple[LiveRow, int]]:
        """Live rows and scan totals of those ``records`` that are live codes (one read each, for lists)."""
        rows = self.storage.live.for_codes([r.id for r in records])
        if not rows:
            return {}
        self.recorder.flush()
        totals = self.storage.scans.totals([row.key for row in rows.values()])
        return {code_id: (row, totals.get(row.key, 0)) for code_id, row in rows.items()}

    def per_day(self, record: CodeRecord, days: int = STATS_DAYS) -> list[DayScans]:
        row = self.row(record)
        self.recorder.flush()
        last = self._today()
        span = [last - timedelta(days=days - 1 - i) for i in range(days)]
        bounds = [self._midnight(d) for d in span] + [self._midnight(last + timedelta(days=1))]
        per_page = self.storage.scans.pages_per_bucket(row.key, bounds)
        return [DayScans(day=d, scans=sum(pages.values()), pages={p or UNKNOWN: n for p, n in pages.items()})
                for d, pages in zip(span, per_page, strict=True)]

    def breakdown(self, record: CodeRecord, days: int = STATS_DAYS) -> ScanBreakdown:
        """Real scans of the last ``days`` local days per page, platform and source."""
        row = self.row(record)
        self.recorder.flush()
        since = self._midnight(self._today() - timedelta(days=days - 1))
        store = self.storage.scans

        def named(counts: dict[str | None, int]) -> dict[str, int]:
            return dict(sorted(((v or UNKNOWN, n) for v, n in counts.items()), key=lambda item: (-item[1], item[0])))

        return ScanBreakdown(days=days, pages=named(store.by(row.key, "page", since)),
                             platforms=named(store.by(row.key, "platform", since)),
                             sources=named(store.by(row.key, "source", since)))

    def export(self, record: CodeRecord, days: int | None = None) -> Iterator[tuple[datetime, str, str, str, str, bool]]:
        """Every scan of ``record`` (over the last ``days`` local days, or all), oldest first: (time in
        MINPCODE_TIMEZONE, page, platform, source, visitor hash or "", test scan). Never a raw visitor id:
        only the keyed hash is ever stored (bot/live/scans.py)."""
        row = self.row(record)
        self.recorder.flush()
        since = self._midnight(self._today() - timedelta(days=days - 1)) if days else None
        for at, page, platform, source, visitor in self.storage.scans.export(row.key, since):
            test = source == TEST_SOURCE
            yield (datetime.fromtimestamp(at, self.zone), page or UNKNOWN, platform or UNKNOWN,
                   UNKNOWN if test else source, visitor or "", test)

    def _today(self) -> date:
        return datetime.fromtimestamp(self.now(), self.zone).date()

    def top(self, start: datetime, end: datetime, limit: int = 5) -> list[tuple[str, int]]:
        """(code id, scans) of the most scanned live codes in ``[start, end)``."""
        self.recorder.flush()
        found = []
        for key, count in self.storage.scans.top(start.timestamp(), end.timestamp(), limit):
            row = self.storage.live.get(key)
            if row is not None:
                found.append((row.code_id, count))
        return found

    def short_link(self, destination: str) -> str | None:
        """A Short Link made for the same page and still working (offered on the /q/ page: it opens the mini
        program when pasted into WeChat); a temporary one lasts 30 days and is never offered after."""
        for record in self.storage.history.search(destination.partition("?")[0], limit=50):
            if (record.type is CodeType.SHORTLINK and record.status is Status.DONE and record.link
                    and record.page == destination and not record.expired()):
                return record.link
        return None

    def _midnight(self, day: date) -> float:
        return datetime.combine(day, datetime.min.time(), self.zone).timestamp()


__all__ = ["PLATFORMS", "SOURCES", "UNKNOWN", "DatedRoute", "DayScans", "Destination", "LiveCodes", "LiveView",
           "NotLive", "Origin", "Resolution", "RoutesView", "ScanBreakdown", "ScanCounts", "Share", "link_qr",
           "normal_key", "routes_view", "scan_origin", "split"]
