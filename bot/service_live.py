"""The live-code verbs of :class:`bot.service.Service` (re-point, pause, resume, scans, site files).

They live here so the service stays one readable page; the rules themselves are in :mod:`bot.live`.
"""

from __future__ import annotations

import builtins
import re
from datetime import datetime

from bot.errors import FieldError, PermissionDenied
from bot.live import DayScans, LiveCodes, LiveView, Resolution
from bot.metrics import METRICS
from bot.models import CodeRecord, Requester
from storage import Storage

SITE_FILE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\.txt\Z")
SITE_FILE_MAX = 4096


class LiveVerbs:
    """Mixed into Service, which provides ``live``, ``storage``, ``get`` and ``may_manage``."""

    live: LiveCodes
    storage: Storage

    def get(self, code_id: str) -> CodeRecord:
        raise NotImplementedError

    def may_manage(self, record: CodeRecord, requester: Requester) -> bool:
        raise NotImplementedError

    def resolve(self, key: str, *, visitor: str | None = None, source: str = "wxa") -> Resolution | None:
        """Where a scanned key leads now (a live code's scan is counted); None for any unknown key."""
        found = self.live.resolve(key, visitor=visitor, source=source)
        (METRICS.scans_found if found is not None else METRICS.scans_unknown).inc()
        return found

    def live_view(self, record: CodeRecord) -> LiveView | None:
        """The live side of ``record`` (destination history, paused, scans), None for other codes."""
        return self.live.view(record)

    def live_totals(self, records: builtins.list[CodeRecord]) -> dict[str, tuple[str, bool, int]]:
        """For the live codes among ``records``: id -> (destination, paused, total scans)."""
        return {code_id: (row.page, row.paused, n) for code_id, (row, n) in self.live.totals(records).items()}

    def repoint(self, code_id: str, page: str, requester: Requester) -> LiveView:
        """Send a live code's scans to ``page`` from now on (creator or admin; no WeChat call)."""
        record = self._manageable(code_id, requester)
        self.live.repoint(record, page, requester)
        return self._live_view(record)

    def pause(self, code_id: str, requester: Requester) -> LiveView:
        record = self._manageable(code_id, requester)
        self.live.set_paused(record, True, requester)
        return self._live_view(record)

    def resume(self, code_id: str, requester: Requester) -> LiveView:
        record = self._manageable(code_id, requester)
        self.live.set_paused(record, False, requester)
        return self._live_view(record)

    def live_stats(self, code_id: str, days: int = 30) -> tuple[LiveView, builtins.list[DayScans]]:
        """A live code's view and its scans per local day over the last ``days`` days."""
        record = self.get(code_id)
        return self._live_view(record), self.live.per_day(record, days)

    def most_scanned(self, start: datetime, end: datetime, limit: int = 5) -> builtins.list[tuple[CodeRecord, int]]:
        """The live codes scanned most in ``[start, end)``, with their scans."""
        return [(self.get(code_id), n) for code_id, n in self.live.top(start, end, limit)]

    def short_link_for(self, destination: str) -> str | None:
        """A Short Link already made for ``destination`` (page?query), if any."""
        return self.live.short_link(destination)

    def site_file(self, name: str) -> bytes | None:
        """A file served at the site's root (WeChat's domain verification file), by its name."""
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

    def _live_view(self, record: CodeRecord) -> LiveView:
        view = self.live.view(record)
        if view is None:
            self.live.row(record)  # raises NotLive
        assert view is not None
        return view

    def _manageable(self, code_id: str, requester: Requester) -> CodeRecord:
        record = self.get(code_id)
        if not self.may_manage(record, requester):
            self.storage.audit.record(requester.key, "change_refused", record.id, owner=record.requested_by)
            raise PermissionDenied(
                f"只有创建者（{record.requested_by_name or record.requested_by}）或管理员可以修改码 {code_id}。",
                f"Only its creator ({record.requested_by_name or record.requested_by}) or an admin may change code {code_id}.",
            )
        return record


__all__ = ["SITE_FILE_MAX", "SITE_FILE_RE", "LiveVerbs"]
