"""The worker that runs pending codes: durable (rows live in SQLite) and resumable after a restart."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("minpcode.jobs")


class JobRunner:
    """Runs ``handler(code_id)`` for queued ids on a few concurrent tasks; waiters learn when each ends."""

    def __init__(self, handler: Callable[[str], Awaitable[None]], concurrency: int = 4) -> None:
        self._handler = handler
        self._concurrency = concurrency
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._done: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._queued: set[str] = set()

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._work(), name=f"minpcode-worker-{i}")
                           for i in range(self._concurrency)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def enqueue(self, code_id: str) -> None:
        """Queue once: a row already waiting or running is not queued again."""
        if code_id not in self._queued:
            self._queued.add(code_id)
            self._queue.put_nowait(code_id)

    def event(self, code_id: str) -> asyncio.Event:
        """Set when the job for ``code_id`` next finishes. Take it *before* checking the row's status."""
        return self._done.setdefault(code_id, asyncio.Event())

    async def _work(self) -> None:
        while True:
            code_id = await self._queue.get()
            try:
                await self._handler(code_id)
            except Exception:  # the handler records failures itself; this guards the loop
                log.exception("job %s crashed", code_id)
            finally:
                self._queued.discard(code_id)
                event = self._done.pop(code_id, None)
                if event is not None:
                    event.set()
                self._queue.task_done()
