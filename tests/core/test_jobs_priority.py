"""Interactive work goes first: the job runner's two queues and the rate limiter's priority.

Pure asyncio, no wire: these are the scheduling rules themselves (the engine tests run them over the emulators).
"""

from __future__ import annotations

import asyncio
import time

from bot import priority
from bot.jobs import JobRunner
from bot.priority import Priority
from bot.upstream.ratelimit import RateLimiter


async def test_interactive_jobs_run_before_queued_batch_jobs_and_one_worker_stays_free() -> None:
    order: list[str] = []
    release = asyncio.Event()

    async def handler(code_id: str) -> None:
        order.append(code_id)
        if code_id.startswith("b"):
            await release.wait()

    runner = JobRunner(handler, concurrency=2)
    for i in range(4):
        runner.enqueue(f"b{i}", Priority.BATCH)
    runner.start()
    await asyncio.sleep(0.05)
    assert order == ["b0"]  # batch jobs may hold only concurrency - 1 workers
    done = runner.event("i0")
    runner.enqueue("i0")
    await asyncio.wait_for(done.wait(), 1)  # the free worker answers at once though b0 still runs
    assert order == ["b0", "i0"] and runner.waiting(Priority.BATCH) == 3
    release.set()
    await asyncio.sleep(0.05)
    assert order == ["b0", "i0", "b1", "b2", "b3"] and runner.waiting() == 0
    await runner.stop()


async def test_the_rate_limiter_gives_the_next_slot_to_an_interactive_caller() -> None:
    limiter = RateLimiter(1, per=0.2)
    got: list[tuple[str, float]] = []
    start = time.monotonic()

    async def call(name: str, level: Priority) -> None:
        priority.CURRENT.set(level)
        await limiter.acquire()
        got.append((name, time.monotonic() - start))

    await call("first", Priority.BATCH)
    batch = [asyncio.create_task(call(f"b{i}", Priority.BATCH)) for i in range(2)]
    await asyncio.sleep(0.05)  # both batch callers are waiting for the next slot
    urgent = asyncio.create_task(call("person", Priority.INTERACTIVE))
    await asyncio.gather(urgent, *batch)
    assert [name for name, _ in got] == ["first", "person", "b0", "b1"]
    assert got[1][1] < 0.3  # the person waited for one window, not behind the batch


async def test_while_people_are_active_batch_calls_leave_a_slot_free() -> None:
    limiter = RateLimiter(3, per=60.0, reserve=1)
    priority.CURRENT.set(Priority.BATCH)
    for _ in range(3):
        await asyncio.wait_for(limiter.acquire(), 0.5)  # nobody active: the batch may use every slot
    limiter = RateLimiter(3, per=60.0, reserve=1)
    priority.CURRENT.set(Priority.INTERACTIVE)
    await limiter.acquire()
    priority.CURRENT.set(Priority.BATCH)
    await asyncio.wait_for(limiter.acquire(), 0.5)
    third = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0.05)
    assert not third.done()  # the last slot is kept for the next person
    priority.CURRENT.set(Priority.INTERACTIVE)
    await asyncio.wait_for(limiter.acquire(), 0.5)
    third.cancel()
