"""The worker that runs pending codes: durable (rows live in SQLite) and resumable after a restart."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot import logs

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
        self._request_ids: dict[str, str | None] = {}  # the request that queued each job, for its log lines
        self._running: set[str] = set()
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._work(), name=f"minpcode-worker-{i}")
                           for i in range(self._concurrency)]

    async def stop(self, grace: float = 0.0) -> None:
        """Take no new job; give the running ones up to ``grace`` seconds to finish, then cancel them.

        A cancelled or never-started job's row stays ``pending`` in the database: the next start
        resumes it (the attempt counter tells the upstream client it may be a resumption)."""
        self._closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._running and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if self._running or not self._queue.empty():
            log.warning("stopping with %d code(s) in flight and %d queued: their rows stay pending and are resumed "
                        "at the next start", len(self._running), self._queue.qsize())
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._closing = False

    def drain(self) -> None:
        """Shutdown begins (safe from a signal handler): take no new job and wake every waiter now, so
        requests waiting for a code answer "still making it" while the rows stay pending."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self._closing = True
        for event in self._done.values():
            event.set()

    def enqueue(self, code_id: str) -> None:
        """Queue once: a row already waiting or running is not queued again."""
        if code_id not in self._queued:
            self._queued.add(code_id)
            self._request_ids[code_id] = logs.current_request_id()
            self._queue.put_nowait(code_id)

    def event(self, code_id: str) -> asyncio.Event:
        """Set when the job for ``code_id`` next finishes (or shutdown begins). Take it *before* checking
        the row's status."""
        event = self._done.setdefault(code_id, asyncio.Event())
        if self._closing:
            event.set()
        return event

    async def _work(self) -> None:
        while True:
            code_id = await self._queue.get()
            if self._closing:  # shutting down: the row stays pending for the next start
                self._queue.put_nowait(code_id)
                await asyncio.Event().wait()
            self._running.add(code_id)
            try:
                with logs.request_id(self._request_ids.pop(code_id, None) or f"job-{code_id}"):
                    await self._handler(code_id)
            except Exception:  # the handler records failures itself; this guards the loop
                log.exception("job %s crashed", code_id)
            finally:
                self._running.discard(code_id)
                self._queued.discard(code_id)
                event = self._done.pop(code_id, None)
                if event is not None:
                    event.set()
                self._queue.task_done()
