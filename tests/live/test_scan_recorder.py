"""The scan recorder (bot/live/scans.py) over a real SQLite file: a count read while the background flusher is
writing in its thread includes the scans that write carries (they are in neither the buffer nor, yet, the
database: `show` and `stats` read the count right after a flush)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

from bot.live.scans import ScanRecorder
from storage import Storage
from storage.scans import ScanRow, ScanStore


class HeldStore:
    """The real scan store, whose first background write waits until the test lets it go."""

    def __init__(self, store: ScanStore) -> None:
        self.store = store
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def add_many(self, rows: Sequence[ScanRow]) -> None:
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            assert self.release.wait(10)
        self.store.add_many(rows)

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


async def test_a_flush_while_the_flusher_writes_waits_for_its_rows(tmp_path: Path) -> None:
    storage = Storage.open(tmp_path)
    held = HeldStore(storage.scans)
    recorder = ScanRecorder(held, b"k" * 32, interval=0.05)  # type: ignore[arg-type]
    try:
        await recorder.start()
        for n in range(3):
            recorder.record("k=inflight01", visitor=f"v{n}")
        assert await asyncio.to_thread(held.entered.wait, 10)  # the flusher took the three and is writing them
        recorder.record("k=inflight01", visitor="v3")
        # Let the write finish a little later, from another thread: flush() blocks this loop until then.
        threading.Timer(0.3, held.release.set).start()
        recorder.flush()
        assert storage.scans.totals(["k=inflight01"]) == {"k=inflight01": 4}
    finally:
        held.release.set()
        await recorder.stop()
        storage.close()


async def test_a_flush_before_the_flusher_thread_begins_writes_its_rows_once(tmp_path: Path) -> None:
    storage = Storage.open(tmp_path)
    recorder = ScanRecorder(storage.scans, b"k" * 32, interval=3600)
    try:
        await recorder.start()
        for n in range(3):
            recorder.record("k=inflight02", visitor=f"v{n}")
        # As the flusher does: the rows taken, the thread not yet started; a read on the loop comes first.
        rows = recorder._take()
        recorder._inflight = rows
        recorder.flush()
        assert await asyncio.to_thread(recorder._write_inflight, rows) is False  # already written: not again
        assert storage.scans.totals(["k=inflight02"]) == {"k=inflight02": 3}
    finally:
        await recorder.stop()
        storage.close()
