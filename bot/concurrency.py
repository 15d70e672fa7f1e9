"""The concurrency machinery every part shares, one copy each (a leaf: imports nothing of ours).

- :class:`KeyedLocks` — one ``asyncio.Lock`` per key, forgotten when nobody holds or waits for it.
- :class:`SingleFlight` — concurrent callers for one key share one in-flight call.
- :class:`TtlSet` — keys seen within a time window, bounded in size (dedupe of retries and replays).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class KeyedLocks(Generic[K]):
    """``async with locks.hold(key):`` serialises work on one key; locks do not pile up."""

    def __init__(self) -> None:
        self._locks: dict[K, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: K) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class SingleFlight(Generic[K, T]):
    """``await flight.run(key, fetch)``: callers arriving while ``fetch`` runs for ``key`` share its result."""

    def __init__(self) -> None:
        self._inflight: dict[K, asyncio.Future[T]] = {}

    async def run(self, key: K, fetch: Callable[[], Awaitable[T]]) -> T:
        future = self._inflight.get(key)
        if future is None or future.done():
            future = asyncio.ensure_future(fetch())
            self._inflight[key] = future
            future.add_done_callback(functools.partial(self._forget, key))
        # shield: one caller being cancelled must not cancel the call the others wait on
        return await asyncio.shield(future)

    def _forget(self, key: K, done: asyncio.Future[T]) -> None:
        if self._inflight.get(key) is done:
            del self._inflight[key]
        if not done.cancelled():
            done.exception()  # retrieved here so a failure nobody awaited is not logged as lost


class TtlSet(Generic[K]):
    """Keys seen within ``ttl`` seconds, at most ``capacity`` of them: ``first(key)`` is True once."""

    def __init__(self, ttl: float, capacity: int = 200_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self.clock = clock
        self._keys: OrderedDict[K, float] = OrderedDict()

    def first(self, key: K) -> bool:
        now = self.clock()
        while self._keys:
            _, at = next(iter(self._keys.items()))
            if now - at < self.ttl and len(self._keys) < self.capacity:
                break
            self._keys.popitem(last=False)
        if key in self._keys:
            return False
        self._keys[key] = now
        return True

    def __contains__(self, key: object) -> bool:
        at = self._keys.get(key)  # type: ignore[arg-type]
        return at is not None and self.clock() - at < self.ttl

    def __len__(self) -> int:
        return len(self._keys)


__all__ = ["KeyedLocks", "SingleFlight", "TtlSet"]
