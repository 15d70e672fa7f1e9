"""``service.live``: what front-ends do with live codes (resolve a scan, re-point, pause, resume, stats,
the site's verification files). The rules themselves are in :mod:`bot.live.rules`; scans are written
off the request path by :mod:`bot.live.scans`.

    live = service.live
    found = live.resolve("k=3fZq9LmA0x", visitor="o6_bm…", client="203.0.113.7", referer=…)   # Resolution | None
    view = live.repoint(code_id, "pages/spring/index?from=poster", requester)   # LiveView
    view, per_day = live.stats(code_id, days=30)
    view = live.repoint(code_id, parse_routes(["pages/a=70", "pages/b=30"], {}, zone), requester)   # routes
    rows = live.export(code_id)     # every scan: local time, page, platform, source, visitor hash, test
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterator
from datetime import datetime

from bot.config import Settings
from bot.errors import FieldError
from bot.history import get_record
from bot.live.routes import RouteChange, reported_platform, routes_from_json
from bot.live.rules import DayScans, LiveCodes, LiveView, Resolution, RoutesView, ScanBreakdown, routes_view
from bot.live.scans import ScanRecorder, hash_key
from bot.live.selection import Selections, tag_codes
from bot.metrics import METRICS
from bot.models import CodeRecord, Requester, split_tags
from bot.permissions import Permissions
from bot.webhooks import Webhooks, events
from storage import Storage
from storage.webhooks import Events

SITE_FILE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\.txt\Z")
SITE_FILE_MAX = 4096


class LiveService:
    """Live codes for every front-end; :attr:`rules` is what making a code asks (place, register, end_of)."""

    def __init__(self, settings: Settings, storage: Storage, permissions: Permissions, webhooks: Webhooks, *,
                 appid: str | None = None) -> None:
        self.storage = storage
        self.permissions = permissions
        self.webhooks = webhooks
        secret = settings.minpcode_scan_hash_key
        self.scans = ScanRecorder(storage.scans, hash_key(secret.get_secret_value() if secret else None,
                                                          storage.secrets), guard=storage)
        self.scans.add_written_listener(webhooks.scans_written)  # scan milestones, once their scans are saved
        self.rules = LiveCodes(storage, self.scans, router_page=settings.minpcode_router_page,
                               fallback_page=settings.minpcode_fallback_page, zone=settings.zone, appid=appid,
                               counted_per_minute=settings.minpcode_resolver_rate)
        self.selections = Selections(storage, permissions, self.rules, self._events)  # changes to many codes at once

    async def start(self) -> None:
        await self.scans.start()

    async def close(self) -> None:
        await self.scans.stop()  # every scan counted so far is written before the database closes

    # -- the scan's path --------------------------------------------------------------------------
    def resolve(self, key: str, *, visitor: str | None = None, source: str = "wxa", client: str | None = None,
                referer: str | None = None, platform: str | None = None) -> Resolution | None:
        """Where a scanned key leads now; None for any unknown key. A live code's scan is never refused; it is
        counted (a test scan apart) unless ``client`` (the scanner's address) has passed the per-code rate or
        ``referer`` names another mini program (:meth:`bot.live.rules.LiveCodes.resolve`)."""
        found = self.rules.resolve(key, visitor=visitor, source=source, client=client, referer=referer,
                                   platform=reported_platform(platform))
        (METRICS.scans_found if found is not None else METRICS.scans_unknown).inc()
        return found

    def is_live(self, key: str) -> bool:
        """Whether ``key`` (as stored, ``k=`` + 10) is a live code's; no scan is counted."""
        return self.rules.lookup(key).live is not None

    def short_link_for(self, destination: str) -> str | None:
        """A Short Link already made for ``destination`` (page?query), if any."""
        return self.rules.short_link(destination)

    # -- reading ----------------------------------------------------------------------------------
    def view(self, record: CodeRecord) -> LiveView | None:
        """The live side of ``record`` (destination history, paused, scans), None for other codes."""
        return self.rules.view(record)

    def routes_of(self, record: CodeRecord) -> RoutesView | None:
        """A live code's routes, None when it has none (or is no live code)."""
        row = self.storage.live.for_code(record.id)
        return routes_view(routes_from_json(row.routes, self.rules.zone)) if row is not None else None

    def totals(self, records: builtins.list[CodeRecord]) -> dict[str, tuple[str, bool, int]]:
        """For the live codes among ``records``: id -> (destination, paused, total scans)."""
        return {code_id: (row.page, row.paused, n) for code_id, (row, n) in self.rules.totals(records).items()}

    def stats(self, code_id: str, days: int = 30) -> tuple[LiveView, builtins.list[DayScans]]:
        """A live code's view and its scans per local day over the last ``days`` days."""
        record = get_record(self.storage, code_id)
        return self._view(record), self.rules.per_day(record, days)

    def breakdown(self, code_id: str, days: int = 30) -> ScanBreakdown:
        """A live code's real scans over the last ``days`` days per page sent to, platform and source."""
        return self.rules.breakdown(get_record(self.storage, code_id), days)

    def export(self, code_id: str, days: int | None = None) -> Iterator[tuple[datetime, str, str, str, str, bool]]:
        """Every scan of a live code (the last ``days`` days, or all), oldest first, for a CSV."""
        return self.rules.export(get_record(self.storage, code_id), days)

    def most_scanned(self, start: datetime, end: datetime, limit: int = 5) -> builtins.list[tuple[CodeRecord, int]]:
        """The live codes scanned most in ``[start, end)``, with their scans."""
        return [(get_record(self.storage, code_id), n) for code_id, n in self.rules.top(start, end, limit)]

    # -- changing (its creator or an admin; no WeChat call) -----------------------------------------
    def repoint(self, code_id: str, page: str | RouteChange, requester: Requester) -> LiveView:
        """Send a live code's scans to ``page`` from now on, or set its routes (:func:`bot.live.routes.parse_routes`)."""
        record = self._manageable(code_id, requester)
        self.rules.repoint(record, page, requester, self._events(events.LIVE_REPOINTED, record))
        return self._changed(record)

    def pause(self, code_id: str, requester: Requester) -> LiveView:
        record = self._manageable(code_id, requester)
        self.rules.set_paused(record, True, requester, self._events(events.LIVE_PAUSED, record))
        return self._changed(record)

    def resume(self, code_id: str, requester: Requester) -> LiveView:
        record = self._manageable(code_id, requester)
        self.rules.set_paused(record, False, requester, self._events(events.LIVE_RESUMED, record))
        return self._changed(record)

    # -- tags (any code; its creator or an admin) --------------------------------------------------
    def tag(self, code_id: str, tags: str | builtins.list[str], requester: Requester) -> builtins.list[str]:
        """Add tags to one code (normalised as a new code's ``tag=``); its tags after."""
        return self._tagged(code_id, tags, requester, add=True)

    def untag(self, code_id: str, tags: str | builtins.list[str], requester: Requester) -> builtins.list[str]:
        """Take tags off one code; its tags after."""
        return self._tagged(code_id, tags, requester, add=False)

    def tags(self, code_id: str) -> builtins.list[str]:
        return self.storage.tags.of(code_id)

    def tags_of(self, records: builtins.list[CodeRecord]) -> dict[str, builtins.list[str]]:
        return self.storage.tags.of_codes([r.id for r in records])

    def _tagged(self, code_id: str, tags: str | builtins.list[str], requester: Requester, *, add: bool) -> builtins.list[str]:
        value = self.selections.checked("tag" if add else "untag", tags if isinstance(tags, str) else ",".join(tags))
        record = self._manageable(code_id, requester)
        return tag_codes(self.storage, record, split_tags(value), requester, add=add)

    # -- the site's files (WeChat's domain verification file) ----------------------------------------
    def site_file(self, name: str) -> bytes | None:
        """A file served at the site's root, by its name."""
        return self.storage.site_files.get(name) if SITE_FILE_RE.match(name) else None

    def save_site_file(self, name: str, body: bytes, requester: Requester) -> None:
        if not SITE_FILE_RE.match(name):
            raise FieldError("file", "校验文件名应像 abcdef123.txt（字母、数字、- _，以 .txt 结尾）。",
                             "The verification file's name should look like abcdef123.txt (letters, digits, - _, .txt).")
        if len(body) > SITE_FILE_MAX:
            raise FieldError("file", f"校验文件最大 {SITE_FILE_MAX} 字节。",
                             f"The verification file may have at most {SITE_FILE_MAX} bytes.")
        self.storage.site_files.put(name, body, requester.key)
        self.storage.audit.record(requester.key, "site_file", None, name=name, size=len(body))

    # -- helpers ------------------------------------------------------------------------------------
    def _events(self, event_type: str, record: CodeRecord) -> Events:
        """The change's webhook event, written in its transaction: read from the live row as just written there
        (no scan flush, no counts: nothing that writes may run inside it)."""
        def state() -> tuple[str, bool, str] | None:
            row = self.storage.live.for_code(record.id)
            return None if row is None else (row.page, row.paused, self.rules.leads_to(row))
        return self.webhooks.live_events(event_type, record, state)

    def _changed(self, record: CodeRecord) -> LiveView:
        """The change and its webhook event are saved: the sender is woken before the person is answered."""
        self.webhooks.recorded()
        return self._view(record)

    def _view(self, record: CodeRecord) -> LiveView:
        view = self.rules.view(record)
        if view is None:
            self.rules.row(record)  # raises NotLive
        assert view is not None
        return view

    def _manageable(self, code_id: str, requester: Requester) -> CodeRecord:
        record = get_record(self.storage, code_id)
        self.permissions.check(record, requester, "change")
        return record


__all__ = ["SITE_FILE_MAX", "SITE_FILE_RE", "LiveService"]
