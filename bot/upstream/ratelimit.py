"""A sliding-window limiter shared by every caller of one upstream (GrowingIO: 10 requests/second)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

from bot import priority


class RateLimiter:
    """At most ``rate`` requests in any ``per`` seconds; callers wait their turn in order.

    ``async with limiter:`` around one request holds its slot while the request is in flight and
    counts it from when it *ends*: the server saw it arrive somewhere in between, so time spent in
    transit cannot squeeze more than ``rate`` arrivals into one of the server's windows (counting
    from the start, a burst whose first requests were slow to connect did exactly that).
    ``acquire()`` alone counts from now.

    Priority (bot/priority.py): a batch row's call never takes a slot while an interactive call is
    waiting for one. Each priority queues in order behind its own lock. While people are active (an
    interactive call in the last ``reserve_for`` seconds) batch calls also leave ``reserve`` slots
    free, so the next person's call finds one at once instead of waiting for the window to move.
    The reserve costs a batch one slot in ``rate`` while it lasts, so it lasts ``reserve_for`` = 10 s:
    a person's next call within that finds a slot at once; a later one waits for the next slot to
    come free (slots free one after another, about ``per / rate`` apart while a batch runs).
    """

    def __init__(self, rate: int, per: float = 1.0, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, reserve: int = 0,
                 reserve_for: float = 10.0) -> None:
        if rate < 1:
            raise ValueError("rate must be at least 1")
        self.rate = rate
        self.per = per
        self._clock = clock
        self._sleep = sleep
        self._stamps: list[float] = []  # math.inf while the request is still in flight
        self._lock = asyncio.Lock()  # interactive callers, in order
        self._batch_lock = asyncio.Lock()  # batch callers, in order, each behind any interactive one
        self._released = asyncio.Event()
        self._urgent = 0  # interactive callers waiting for a slot
        self.reserve = min(reserve, rate - 1)
        self.reserve_for = reserve_for
        self._last_urgent = -math.inf

    async def acquire(self) -> None:
        await self._take(in_flight=False)

    async def _take(self, in_flight: bool) -> None:
        urgent = priority.CURRENT.get() is priority.Priority.INTERACTIVE
        if urgent:
            self._urgent += 1
        try:
            async with self._lock if urgent else self._batch_lock:
                await self._wait_for_slot(in_flight, urgent=urgent)
        finally:
            if urgent:
                self._urgent -= 1
                self._released.set()  # a batch caller that stood aside may go now

    async def _wait_for_slot(self, in_flight: bool, *, urgent: bool) -> None:
        while True:
            now = self._clock()
            self._stamps = [s for s in self._stamps if now - s < self.per]
            full = len(self._stamps) >= self.rate
            if urgent:
                self._last_urgent = now
            elif not full and self.reserve and now - self._last_urgent < self.reserve_for:
                full = len(self._stamps) >= self.rate - self.reserve
            if not full and (urgent or not self._urgent):
                self._stamps.append(math.inf if in_flight else now)
                return
            oldest = min(self._stamps) if full else math.inf
            if oldest == math.inf:  # every slot in flight, or a batch caller standing aside for a person
                self._released.clear()
                await self._released.wait()
            else:
                await self._sleep(self.per - (now - oldest) + 0.001)

    def _release(self) -> None:
        if math.inf in self._stamps:
            self._stamps[self._stamps.index(math.inf)] = self._clock()
        self._released.set()

    async def __aenter__(self) -> RateLimiter:
        await self._take(in_flight=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release()
