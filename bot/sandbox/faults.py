"""Pieces both emulators share: one-shot fault injection, latency, request ids."""

from __future__ import annotations

import asyncio
import secrets
import threading
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


def path_matches(wanted: str, path: str) -> bool:
    """``wanted`` names a request path exactly, or its tail (``minplinks`` matches ``.../meta/minplinks``)."""
    wanted = wanted.strip()
    if wanted == path:
        return True
    tail = "/" + wanted.lstrip("/")
    return path == tail or path.endswith(tail)


@dataclass
class _Fault(Generic[T]):
    answer: T
    remaining: int
    path: str | None


class FaultQueue(Generic[T]):
    """Answers queued by a test, each served ``times`` times, first queued first served.

    A fault with ``path=None`` hits any path the emulator calls "business" (not token endpoints,
    not image downloads), so a test can say "the next call fails" without naming it.
    Tests inject from their own thread while the server runs in another, hence the lock.
    """

    def __init__(self) -> None:
        self._faults: list[_Fault[T]] = []
        self._lock = threading.Lock()

    def add(self, answer: T, times: int = 1, path: str | None = None) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._faults.append(_Fault(answer, times, path))

    def take(self, path: str, business: bool = True) -> T | None:
        with self._lock:
            for fault in self._faults:
                hit = path_matches(fault.path, path) if fault.path is not None else business
                if hit:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault.answer
        return None

    def pending(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


async def delay(seconds: float) -> None:
    """Latency knob: real wall-clock sleep, independent of any fake clock."""
    if seconds > 0:
        await asyncio.sleep(seconds)


def request_id() -> str:
    """WeChat's ``rid``: three dash-separated 8-hex-digit groups."""
    return "-".join(secrets.token_hex(4) for _ in range(3))
