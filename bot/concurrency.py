"""The concurrency machinery every part shares, one copy each (a leaf: imports nothing of ours).

- :class:`KeyedLocks` — one ``asyncio.Lock`` per key, forgotten when nobody holds or waits for it.
- :class:`SingleFlight` — concurrent callers for one key share one in-flight call.
- :class:`TtlSet` — keys seen within a time window, bounded in size (dedupe of retries and replays).
- :class:`PerClientLimit` — a token bucket per key (a client's address; an address and a live code's key),
  bounded in size: the public routes' limits.
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


CLIENTS_MAX = 100_000  # buckets a PerClientLimit keeps; the least recently seen is forgotten first


class PerClientLimit:
    """``per_minute`` a minute for each key, in bursts of up to a tenth of that (at least 10).

    ``allow(key)`` takes one token for ``key``: False when it has none left. A forgotten key starts
    again with a full bucket, so the bound on memory never refuses anyone."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(max(10, per_minute // 10))
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def allow(self, key: str) -> bool:
        now = self._clock()
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > CLIENTS_MAX:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after(self) -> int:
        """Seconds until one token is back."""
        return max(1, int(1 / self.rate + 0.999))


__all__ = ["CLIENTS_MAX", "KeyedLocks", "PerClientLimit", "SingleFlight", "TtlSet"]
