"""Whether what is written now can be kept: for ``/readyz``, the answers to requests and the background writers.

    writes = Writes(conn, path)
    writes.problem()                    # StorageUnavailable (deleted, replaced, full) or None
    writes.failed(exc)                  # the StorageUnavailable a write's sqlite3 error means, or None
    writes.halted("the scan flusher")   # problem(), and said in the log once per writer while it lasts

Two causes. The file deleted or replaced under the running process (:class:`storage.db.FileWatch`):
final until a restart, since anything written would land in a file nobody will open again. A full
disk: SQLite answers SQLITE_FULL (also past the database's own ``max_page_count``). Nothing announces
it beforehand, so it is remembered from the first failed write: for at least :data:`HOLD` seconds,
then until there is room again (free space in the folder, and a page to write: the database under its
page limit or a free page inside it), looked at no more than once a second. The log says when it
starts and when it ends, once each.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import time
from pathlib import Path

from bot.errors import StorageUnavailable
from storage.db import FileWatch

log = logging.getLogger("minpcode.storage")

HOLD = 5.0  # seconds a full disk is assumed to stay full after a write failed on it
LOOK = 1.0  # seconds between two looks for room
MIN_FREE = 1024 * 1024  # bytes free in the folder before writes are tried again
_SQLITE_FULL = 13  # https://www.sqlite.org/rescode.html#full


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite saying the disk (or the database's page limit) is full."""
    return isinstance(exc, sqlite3.Error) and (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == _SQLITE_FULL


def _full() -> StorageUnavailable:
    # Said to whoever asked (an API client, a chat): no server path in it; the log line names the folder.
    return StorageUnavailable("服务器的磁盘满了，现在保存不了新的内容，请稍后再试（腾出空间后会自动恢复）。",
                              "The server's disk is full: nothing new can be saved now. Try again later (it recovers "
                              "by itself once there is room).", "full")


class Writes:
    """The one answer to "can a write be kept now?" for a database file (see the module docstring)."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, hold: float = HOLD,
                 min_free: int = MIN_FREE) -> None:
        self.path = path
        self.watch = FileWatch(path)
        self._conn = conn
        self._hold = hold
        self._min_free = min_free
        self._failed_at: float | None = None  # the last write that failed on a full disk (monotonic)
        self._looked = 0.0
        self._told: set[str] = set()  # the writers that said they stopped, while the problem lasts

    def failed(self, exc: BaseException) -> StorageUnavailable | None:
        """The :class:`StorageUnavailable` a failed write's error means (a full disk: remembered for
        :meth:`problem`), or None for any other error, which stays the caller's to raise."""
        if not disk_full(exc):
            return None
        if self._failed_at is None:
            log.error("The disk holding %s is full (%s): writes fail and are answered 503, /readyz is red, until "
                      "there is room again. Free some space there.", self.path, exc)
        self._failed_at = time.monotonic()
        return _full()

    def problem(self) -> StorageUnavailable | None:
        """Why a write now would fail or be lost, or None."""
        lost = self.watch.problem()
        if lost is not None:
            return lost
        if self._failed_at is None:
            return None
        now = time.monotonic()
        if now - self._failed_at < self._hold or now - self._looked < LOOK:
            return _full()
        self._looked = now
        if not self._room():
            return _full()
        self._failed_at = None
        self._told.clear()
        log.warning("There is room again on the disk holding %s: writes resume.", self.path)
        return None

    def halted(self, writer: str) -> StorageUnavailable | None:
        """:meth:`problem`, said once by each ``writer`` (a background task) that stops for it."""
        problem = self.problem()
        if problem is not None and writer not in self._told:
            self._told.add(writer)
            log.warning("%s stops writing: %s", writer, problem.en)
        return problem

    def _room(self) -> bool:
        try:
            if shutil.disk_usage(self.path.parent).free < self._min_free:
                return False
            pages, most, unused = (int(self._conn.execute(f"PRAGMA {name}").fetchone()[0])
                                   for name in ("page_count", "max_page_count", "freelist_count"))
        except (OSError, sqlite3.Error):
            return False
        return pages < most or unused > 0


__all__ = ["HOLD", "MIN_FREE", "Writes", "disk_full"]
