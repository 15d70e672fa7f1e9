"""Counting scans off the request path: the resolver appends to memory, a flusher writes each second
(or as soon as ``FLUSH_ROWS`` wait).

    recorder = ScanRecorder(storage.scans, hash_key)
    recorder.record("k=3fZq9LmA0x", visitor="o6_bm…", source="wxa", page="pages/a", platform="ios")   # no I/O
    await recorder.start()  ...  await recorder.stop()       # stop writes whatever is left

Durability, said plainly: a clean shutdown (``Service.close``) loses nothing, since ``stop`` flushes
the buffer; a crash loses at most the scans of the last flush interval (one second by default), and
never more than about ``FLUSH_ROWS`` of them plus the batch being written. While writes cannot be kept
(the database file deleted under the server, a full disk: ``guard``, storage/writes.py) nothing is
written: scans wait in memory, at most ``HELD_MAX`` of them (the oldest are dropped past it, counted in
``dropped``), and the log says so once; they are written when writes can be kept again, and the ones a
stop finds still waiting are counted in the log, never written into a file nobody will open again.

A visitor value (whatever anonymous id the mini program sends, an openid included) is stored only
as an HMAC-SHA256 under a secret key: ``MINPCODE_SCAN_HASH_KEY`` when set, otherwise a random key
generated at the first start and kept in the database (storage/secrets.py: one key for every process and
host on it; before, ``<data dir>/scan-hash.key``, whose value the upgrade takes in). The same visitor always
hashes the same, on every host, so unique visitors can be counted, and the hash tells nothing without the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from bot.errors import StorageUnavailable
from storage.scans import ScanRow, ScanStore
from storage.secrets import Secrets

log = logging.getLogger("minpcode.scans")

FLUSH_SECONDS = 1.0
FLUSH_ROWS = 2000       # or sooner, when this many wait: a busy print run writes small batches often, so
                        # no single write holds the server up for long (and a crash loses less)
VISITOR_MAX = 256       # characters of a visitor value read from a request (longer ones are cut)
HELD_MAX = 100_000      # scans kept in memory while they cannot be written (some 25 MB)
WRITER = "The scan flusher"  # how the log names it when it stops writing

ScanListener = Callable[[str, str], None]  # (key, source): e.g. the metrics counter of resolver scans
WrittenListener = Callable[[Sequence[ScanRow]], None]  # scans just written (webhooks' scan milestones)


class WriteGuard(Protocol):
    """Whether a write can be kept now (storage.Storage: the file still ours, the disk not full)."""

    def halted(self, writer: str) -> StorageUnavailable | None: ...

    def failed(self, exc: BaseException) -> StorageUnavailable | None: ...


def hash_key(configured: str | None, store: Secrets) -> bytes:
    """The secret visitor values are hashed under: the setting, else the install key kept in the database,
    made at the first start (every process and host on the database hashes with the same one)."""
    return store.install_key(configured)


class ScanRecorder:
    def __init__(self, store: ScanStore, key: bytes, *, interval: float = FLUSH_SECONDS,
                 clock: Callable[[], float] = time.time, guard: WriteGuard | None = None) -> None:
        self._store = store
        self._guard = guard
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)
        self._interval = interval
        self._clock = clock
        self._buffer: list[ScanRow] = []
        # The rows the background flusher is writing in its thread. A read (flush() before counting) must see
        # them: it waits for that write, or writes them itself if the thread has not begun, so a count never
        # misses scans that are neither in the buffer nor yet in the database.
        self._inflight: list[ScanRow] | None = None
        self._writing = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._due = asyncio.Event()   # set by stop, and by record when FLUSH_ROWS wait
        self._listeners: list[ScanListener] = []
        self._written: list[WrittenListener] = []
        self.recorded = 0   # scans recorded since start (flushed or not)
        self.dropped = 0    # scans dropped past HELD_MAX while writes could not be kept

    def visitor_hash(self, visitor: str | None) -> str | None:
        if not visitor:
            return None
        digest = self._keyed.copy()  # the key already mixed in: cheaper than a new HMAC per scan
        digest.update(visitor[:VISITOR_MAX].encode("utf-8", "replace"))
        return digest.hexdigest()[:32]

    def add_listener(self, listener: ScanListener) -> None:
        """Call ``listener(key, source)`` on every scan (in the request path: it must be quick)."""
        self._listeners.append(listener)

    def add_written_listener(self, listener: WrittenListener) -> None:
        """Call ``listener(rows)`` after each write of scans, off the request path."""
        self._written.append(listener)

    def _wrote(self, rows: Sequence[ScanRow]) -> None:
        for listener in self._written:
            try:
                listener(rows)
            except Exception:  # what follows a write must never put its scans back to be written again
                log.exception("scan written-listener failed")

    def record(self, key: str, *, visitor: str | None = None, source: str = "wxa", page: str | None = None,
               platform: str | None = None) -> None:
        """Count one scan now, in memory; the flusher writes it (``page``: where it was sent; ``platform``: what
        the router page reported, bot/live/routes.py ``reported_platform``)."""
        self._buffer.append((key, self._clock(), self.visitor_hash(visitor), source, page, platform))
        self.recorded += 1
        if len(self._buffer) >= FLUSH_ROWS:
            self._due.set()
        for listener in self._listeners:
            try:
                listener(key, source)
            except Exception:  # a metrics hook must never cost a scan
                log.exception("scan listener failed")

    def flush(self) -> int:
        """Write what is buffered and what the background flusher is writing (blocking: it waits for that
        write); returns how many scans this call wrote."""
        with self._writing:
            rows = [*(self._inflight or ()), *self._take()]
            self._inflight = None
            try:
                self._store.add_many(rows)
            except Exception:
                self._buffer[:0] = rows  # kept for the next flush
                raise
        self._wrote(rows)
        return len(rows)

    def _write_inflight(self, rows: list[ScanRow]) -> bool:
        """The background write (in a worker thread); False when a flush() wrote ``rows`` first."""
        with self._writing:
            if self._inflight is not rows:
                return False
            self._store.add_many(rows)
            self._inflight = None
            return True

    def _take(self) -> list[ScanRow]:
        # Called on the event loop's thread only, where record() runs: no append can slip between.
        rows, self._buffer = self._buffer, []
        return rows

    @property
    def pending(self) -> int:
        return len(self._buffer)

    async def start(self) -> None:
        if self._task is None:
            self._stopping, self._due = asyncio.Event(), asyncio.Event()
            self._task = asyncio.create_task(self._loop(), name="minpcode-scan-flusher")

    async def _loop(self) -> None:
        stopping = self._stopping
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), self._interval)
            self._due.clear()
            rows = self._take()
            if not rows:
                continue
            if self._halted() is not None:
                self._keep(rows)
                continue
            self._inflight = rows
            try:
                written = await asyncio.to_thread(self._write_inflight, rows)
            except Exception as exc:
                self._inflight = None
                self._keep(rows)
                if self._guard is not None and self._guard.failed(exc) is not None:
                    self._halted()  # a full disk: said once, and the next flushes wait for room
                else:
                    log.exception("writing scans failed; retrying in %.0f s", self._interval)
                continue
            if written:
                self._wrote(rows)

    def _halted(self) -> StorageUnavailable | None:
        return self._guard.halted(WRITER) if self._guard is not None else None

    def _keep(self, rows: list[ScanRow]) -> None:
        """Put ``rows`` back before what came since, for the next flush; past HELD_MAX the oldest go."""
        self._buffer[:0] = rows
        over = len(self._buffer) - HELD_MAX
        if over > 0:
            if not self.dropped:
                log.error("scans cannot be written and %d wait in memory: the oldest are dropped from now on", HELD_MAX)
            del self._buffer[:over]
            self.dropped += over

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping.set()
            self._due.set()
            await self._task  # the write under way finishes; the loop writes what is left and ends
            self._task = None
        problem = self._halted()
        if problem is not None:
            if self._buffer:
                log.error("%d scan(s) not written at stop: %s", len(self._buffer), problem.en)
            self._buffer = []
            return
        self.flush()


__all__ = ["FLUSH_ROWS", "FLUSH_SECONDS", "HELD_MAX", "ScanListener", "ScanRecorder", "WriteGuard", "WrittenListener",
           "hash_key"]
