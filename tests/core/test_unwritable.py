"""The background writers while the database cannot keep what they write (issue 22): its file deleted under
the running process. SQLite would go on writing into the unlinked file, so the job worker would spend an
upstream call on a code nobody will see and the scan flusher would count scans into nothing. Each stops,
says so once in the log, and keeps its work for when writes can be kept. Over the emulators on loopback
ports and a real SQLite file; the deleted file is read back through the connection still open on it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.errors import StorageUnavailable
from bot.models import Status
from bot.server import open_service
from bot.service import Service
from tests.emulators.upstreams import ALICE, Upstreams

B_PATH = "/wxa/getwxacodeunlimit"


@pytest.fixture
def said(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger="minpcode")
    yield caplog


def lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


async def delete_database(service: Service, folder: Path) -> None:
    for file in folder.glob("minpcode.db*"):
        file.unlink()
    await asyncio.sleep(1.1)  # the file is looked at once a second
    assert service.storage.lost() is not None


async def test_the_job_worker_makes_no_code_into_a_deleted_database(upstreams: Upstreams, tmp_path: Path,
                                                                    said: pytest.LogCaptureFixture) -> None:
    service = open_service(upstreams.settings(tmp_path))
    try:
        # recorded before the file goes, made after: as a row resumed at start or queued again by the sweeper
        record = (await service.submit({"type": "B", "page": "pages/index/index", "scene": "id=gone"}, ALICE,
                                       wait=False)).record
        await delete_database(service, tmp_path)
        made_before = upstreams.wechat.calls[B_PATH]
        for _ in range(2):
            finished = service.jobs.event(record.id)
            service.jobs.enqueue(record.id)
            if not service.jobs.running:
                await service.start()
            await asyncio.wait_for(finished.wait(), 10)
        assert upstreams.wechat.calls[B_PATH] == made_before  # no upstream call, no quota spent
        kept = service.storage.history.get(record.id)  # the unlinked file, through the connection still open
        assert kept is not None and kept.status is Status.PENDING and not kept.image_sha256
        with pytest.raises(StorageUnavailable) as waited:
            await service.wait(record.id, timeout=5)  # a person waiting is told at once, not after the timeout
        assert waited.value.cause == "deleted"
    finally:
        await service.close()
    assert len(lines(said, "The job worker stops writing")) == 1, said.text  # once, however many jobs


async def test_the_scan_flusher_writes_no_scan_into_a_deleted_database(upstreams: Upstreams, tmp_path: Path,
                                                                       said: pytest.LogCaptureFixture) -> None:
    service = open_service(upstreams.settings(tmp_path))
    recorder = service.live.scans
    await service.start()
    try:
        recorder.record("k=before0001", visitor="v0")
        for _ in range(50):
            if service.storage.scans.count("k=before0001") == 1:
                break
            await asyncio.sleep(0.1)
        assert service.storage.scans.count("k=before0001") == 1  # the flusher writes while the file is there

        await delete_database(service, tmp_path)
        for n in range(5):
            recorder.record("k=after00001", visitor=f"v{n}")
        await asyncio.sleep(2.5)  # two flush intervals
        assert service.storage.scans.count("k=after00001") == 0  # nothing went into the unlinked file
        assert recorder.pending == 5  # kept for when writes can be kept
        assert not (tmp_path / "minpcode.db").exists()  # nor was a new, empty file made at its path
    finally:
        await service.close()  # stops the flusher: what waits is counted in the log, not written
    assert len(lines(said, "The scan flusher stops writing")) == 1, said.text
    assert lines(said, "5 scan(s) not written at stop"), said.text
