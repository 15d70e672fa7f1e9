"""A per-client token bucket for the public routes (the scene resolver, the /q/ page).

Keys cannot be guessed (62^10 of them), and the limit makes trying them slow: each client IP gets
``per_minute`` requests a minute, in bursts of up to a tenth of that (at least 10). Many phones
behind one carrier NAT share an IP, so the default (600 a minute) is generous; behind a reverse
proxy, run uvicorn with ``--forwarded-allow-ips`` so the client's address is the one counted.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

CLIENTS_MAX = 100_000  # buckets kept; the least recently seen client is forgotten first


class PerClientLimit:
    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(max(10, per_minute // 10))
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)

    def allow(self, client: str) -> bool:
        """Take one token for ``client``; False when it has none left (answer 429)."""
        now = self._clock()
        tokens, at = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > CLIENTS_MAX:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after(self) -> int:
        """Seconds until one token is back."""
        return max(1, int(1 / self.rate + 0.999))


__all__ = ["PerClientLimit"]
