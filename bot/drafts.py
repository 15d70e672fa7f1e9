"""Forms in progress that outlive a restart: what a chat front-end keeps between one member's messages.

    service.drafts.save("wecom", user, data, ttl=1800)    # data: the front-end's own JSON
    found = service.drafts.load("wecom", user)            # (data, seconds left) or None once expired
    service.drafts.drop("wecom", user)

Expiry is kept in wall-clock time (a restart resets any monotonic clock); the front-end speaks in
seconds left, so its own clock (a test's fake one) never meets ours.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from storage import Storage


class Drafts:
    def __init__(self, storage: Storage, clock: Callable[[], float] = time.time) -> None:
        self._store = storage.drafts
        self._clock = clock

    def save(self, chat: str, user: str, data: dict[str, Any], ttl: float) -> None:
        now = self._clock()
        self._store.put(chat, user, data, now + max(0.0, ttl), now)

    def load(self, chat: str, user: str) -> tuple[dict[str, Any], float] | None:
        now = self._clock()
        found = self._store.get(chat, user, now)
        return (found[0], found[1] - now) if found else None

    def drop(self, chat: str, user: str) -> None:
        self._store.drop(chat, user)


__all__ = ["Drafts"]
