"""A sliding-window limiter shared by every caller of one upstream (GrowingIO: 10 requests/second)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable


class RateLimiter:
    """At most ``rate`` requests in any ``per`` seconds; callers wait their turn in order.

    ``async with limiter:`` around one request holds its slot while the request is in flight and
    counts it from when it *ends*: the server saw it arrive somewhere in between, so time spent in
    transit cannot squeeze more than ``rate`` arrivals into one of the server's windows (counting
    from the start, a burst whose first requests were slow to connect did exactly that).
    ``acquire()`` alone counts from now.
    """

    def __init__(self, rate: int, per: float = 1.0, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if rate < 1:
            raise ValueError("rate must be at least 1")
        self.rate = rate
        self.per = per
        self._clock = clock
        self._sleep = sleep
        self._stamps: list[float] = []  # math.inf while the request is still in flight
        self._lock = asyncio.Lock()
        self._released = asyncio.Event()

    async def acquire(self) -> None:
        await self._take(in_flight=False)

    async def _take(self, in_flight: bool) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                self._stamps = [s for s in self._stamps if now - s < self.per]
                if len(self._stamps) < self.rate:
                    self._stamps.append(math.inf if in_flight else now)
                    return
                oldest = min(self._stamps)
                if oldest == math.inf:  # every slot is in flight: wait for one to end
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
