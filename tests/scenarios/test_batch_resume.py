"""``minpcode serve`` (a real process on a loopback port, the sandbox upstreams) resumes batches left running."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot.batch.models import BatchOrigin, BatchStatus, RowStatus
from bot.batch.sheets import read_pasted
from bot.config import Settings
from bot.server import open_service
from storage import Storage
from tests.served import Served

pytestmark = pytest.mark.slow  # every test here starts a process or a browser

ROWS = "page,type,scene\n" + "".join(f"pages/index/index,B,id={i}\n" for i in range(6))


async def test_serve_resumes_a_batch_a_stop_left_running(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(_env_file=None, minpcode_data_dir=data, minpcode_sandbox=True)  # type: ignore[call-arg]
    async with open_service(settings) as service:
        engine = service.batches
        plan = await engine.dry_run(read_pasted(ROWS), BatchOrigin(user_id="U1", chat="cli"))
        assert plan.ready == 6
        # What a process killed right after the person pressed Start leaves behind: running, nothing made.
        service.storage.batches.set_status(plan.batch.id, BatchStatus.RUNNING)
    proc = Served(data).start()
    try:
        deadline = time.monotonic() + 60
        store = Storage.open(data)
        try:
            while time.monotonic() < deadline:
                batch = store.batches.get(plan.batch.id)
                if batch is not None and batch.status is BatchStatus.DONE:
                    break
                time.sleep(0.2)
            assert batch is not None and batch.status is BatchStatus.DONE, proc.log()
            rows = store.batches.rows(plan.batch.id)
            assert [r.status for r in rows] == [RowStatus.DONE] * 6
            assert len({r.code_id for r in rows}) == 6
        finally:
            store.close()
    finally:
        proc.stop()
    assert "resuming batch" in proc.log()
