"""The worker that runs pending codes: durable (rows live in SQLite) and resumable after a restart.

Each job runs under a lease (:func:`run_leased`): claimed atomically in SQLite, renewed while working,
taken over by another process only once it lapses, so two processes on one data directory never make
the same code twice. The queue itself stays in memory and knows nothing of leases.

Two priorities (bot/priority.py): interactive jobs are always taken first, and batch jobs may occupy
at most ``concurrency - 1`` workers, so one worker is always free for a person waiting on one code.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from bot import logs
from bot import priority as prio
from bot.priority import Priority

log = logging.getLogger("minpcode.jobs")

LEASE_SECONDS = 30.0
"""How long a claimed job stays ours without a renewal; renewed every third of it while working, so a
process that dies hands its jobs over within this long."""


class LeaseStore(Protocol):
    def claim(self, job: str, owner: str, seconds: float) -> bool: ...
    def holder(self, job: str) -> tuple[str, float] | None: ...
    def take_over(self, job: str, dead: str, owner: str, seconds: float) -> bool: ...
    def renew(self, job: str, owner: str, seconds: float) -> bool: ...
    def release(self, job: str, owner: str) -> None: ...


class JobRunner:
    """Runs ``handler(code_id)`` for queued ids on a few concurrent tasks; waiters learn when each ends."""

    def __init__(self, handler: Callable[[str], Awaitable[None]], concurrency: int = 4, *,
                 leases: LeaseStore | None = None) -> None:
        self._handler = handler
        self._leases = leases
        self.owner = new_owner()
        self._sweeper: asyncio.Task[None] | None = None
        self._concurrency = concurrency
        self._batch_cap = max(1, concurrency - 1)
        self._queues: dict[Priority, deque[str]] = {p: deque() for p in Priority}
        self._changed = asyncio.Event()
        self._batch_running = 0
        self._done: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._queued: set[str] = set()
        self._request_ids: dict[str, str | None] = {}  # the request that queued each job, for its log lines
        self._running: set[str] = set()
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def batch_capacity(self) -> int:
        """How many workers batch jobs may hold at once."""
        return self._batch_cap

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    @property
    def closing(self) -> bool:
        return self._closing

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
        if self._running or self.waiting():
            log.warning("stopping with %d code(s) in flight and %d queued: their rows stay pending and are resumed "
                        "at the next start", len(self._running), self.waiting())
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
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

    def enqueue(self, code_id: str, priority: Priority = Priority.INTERACTIVE) -> None:
        """Queue once: a row already waiting or running is not queued again."""
        if code_id not in self._queued:
            self._queued.add(code_id)
            self._request_ids[code_id] = logs.current_request_id()
            self._queues[priority].append(code_id)
            self._changed.set()

    def waiting(self, priority: Priority | None = None) -> int:
        """How many jobs wait (of one priority, or all)."""
        if priority is not None:
            return len(self._queues[priority])
        return sum(len(q) for q in self._queues.values())

    def sweep(self, pending: Callable[[], list[str]], every: float = LEASE_SECONDS / 3) -> None:
        """Every ``every`` seconds queue the pending jobs again: a lapsed lease (its process died) is
        taken over; a live one is left to its owner (the claim fails at once)."""
        async def loop() -> None:
            while True:
                await asyncio.sleep(every)
                for job in pending():
                    self.enqueue(job)

        if self._sweeper is None:
            self._sweeper = asyncio.create_task(loop(), name="minpcode-lease-sweeper")

    async def _call(self, code_id: str) -> None:
        if self._leases is None:
            await self._handler(code_id)
            return
        if not await run_leased(self._leases, f"code:{code_id}", self.owner, lambda: self._handler(code_id)):
            log.debug("job %s is leased by another process", code_id)

    def event(self, code_id: str) -> asyncio.Event:
        """Set when the job for ``code_id`` next finishes (or shutdown begins). Take it *before* checking
        the row's status."""
        event = self._done.setdefault(code_id, asyncio.Event())
        if self._closing:
            event.set()
        return event

    async def _take(self) -> tuple[str, Priority]:
        while True:
            self._changed.clear()
            if self._closing:  # shutting down: rows stay pending for the next start
                await asyncio.Event().wait()
            if self._queues[Priority.INTERACTIVE]:
                return self._queues[Priority.INTERACTIVE].popleft(), Priority.INTERACTIVE
            if self._queues[Priority.BATCH] and self._batch_running < self._batch_cap:
                self._batch_running += 1
                return self._queues[Priority.BATCH].popleft(), Priority.BATCH
            await self._changed.wait()

    async def _work(self) -> None:
        while True:
            code_id, priority = await self._take()
            token = prio.CURRENT.set(priority)
            self._running.add(code_id)
            try:
                with logs.request_id(self._request_ids.pop(code_id, None) or f"job-{code_id}"):
                    await self._call(code_id)
            except Exception:  # the handler records failures itself; this guards the loop
                log.exception("job %s crashed", code_id)
            finally:
                prio.CURRENT.reset(token)
                self._running.discard(code_id)
                if priority is Priority.BATCH:
                    self._batch_running -= 1
                    self._changed.set()
                self._queued.discard(code_id)
                event = self._done.pop(code_id, None)
                if event is not None:
                    event.set()


# -- leases: one owner per job across processes --------------------------------------------------------

@functools.cache
def where() -> str:
    """Where a pid names one process: this machine's name, its boot, and this process's pid namespace.

    The name alone is not enough once replicas share a database: machines cloned from one image share a host
    name, and containers on one host share its kernel (and, with host networking, its name) but each counts
    pids from 1. A pid seen from another of these places says nothing here, so such an owner is never taken
    for gone: its leases lapse instead (Linux's /proc; elsewhere the host name alone, as before)."""
    parts = [socket.gethostname()]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text("ascii").strip()[:8])
        parts.append("".join(c for c in os.readlink("/proc/self/ns/pid") if c.isdigit()))
    except OSError:
        pass
    return "/".join(parts)


def new_owner() -> str:
    """This process, this run: ``where:pid:random``."""
    return f"{where()}:{os.getpid()}:{secrets.token_hex(4)}"


def gone(owner: str) -> bool:
    """Whether ``owner`` is a process of this machine and pid namespace that no longer runs (its leases need not
    lapse first)."""
    place, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if place != where() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


async def run_leased(leases: LeaseStore, job: str, owner: str, work: Callable[[], Awaitable[None]],
                     seconds: float = LEASE_SECONDS) -> bool:
    """Run ``work`` while holding ``job``'s lease; False (nothing run) when another owner holds it."""
    if not leases.claim(job, owner, seconds):
        held = leases.holder(job)
        if held is None or not gone(held[0]) or not leases.take_over(job, held[0], owner, seconds):
            return False
        log.info("%s: its owner %s is gone (killed?); taken over", job, held[0])

    async def keep() -> None:
        while True:
            await asyncio.sleep(seconds / 3)
            if not leases.renew(job, owner, seconds):
                log.warning("lease on %s lapsed while working (another process may take it over)", job)
                return

    keeper = asyncio.create_task(keep(), name=f"lease-{job}")
    try:
        await work()
    finally:
        keeper.cancel()
        leases.release(job, owner)
    return True
