"""The one boundary where httpx failures and upstream answers become our error tree."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from bot.errors import RateLimited, UpstreamBusy
from bot.media import sniff
from bot.messages import unreachable
from bot.metrics import METRICS, endpoint_label
from bot.redact import guard_logs

log = logging.getLogger("minpcode.upstream")
T = TypeVar("T")

guard_logs()


def image_type(content: bytes) -> str | None:
    """The image type told by the bytes (:func:`bot.media.sniff`); None for anything but an image."""
    mime = sniff(content)
    return mime if mime and mime.startswith("image/") else None


def json_body(content: bytes) -> dict[str, Any] | None:
    """The JSON object in a body, or None when the body is not a JSON object."""
    try:
        value = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _failure_code(response: httpx.Response) -> str | None:
    """An HTTP error status, or WeChat's non-zero ``errcode`` in a 200 answer; None for success."""
    if response.status_code >= 400:
        return str(response.status_code)
    content = response.content
    if len(content) > 65536 or not content.lstrip().startswith(b"{"):
        return None  # an image, or nothing WeChat would put an errcode in
    errcode = (json_body(content) or {}).get("errcode")
    return str(errcode) if isinstance(errcode, int) and errcode != 0 else None


async def send(http: httpx.AsyncClient, provider: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Send one request; transport failures and 5xx become :class:`UpstreamBusy` (chained).

    Every call is counted here, with its latency and, when it failed, its code (bot/metrics.py).
    """
    endpoint, started = endpoint_label(httpx.URL(url).path), time.perf_counter()
    try:
        response = await http.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        METRICS.upstream(provider, endpoint, time.perf_counter() - started, "timeout")
        raise unreachable(provider, "timeout") from exc
    except httpx.TransportError as exc:
        METRICS.upstream(provider, endpoint, time.perf_counter() - started, type(exc).__name__)
        raise unreachable(provider, type(exc).__name__) from exc
    METRICS.upstream(provider, endpoint, time.perf_counter() - started, _failure_code(response))
    if response.status_code >= 500 and provider == "wechat":
        raise unreachable(provider, f"HTTP {response.status_code}")
    return response


async def with_backoff(call: Callable[[], Awaitable[T]], *, attempts: int = 3, base: float = 0.2,
                       cap: float = 2.0, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> T:
    """Retry only passing failures (busy, timeout), a bounded number of times with jittered backoff.

    Rate limits are not passing failures: retrying them blindly spends the next window too.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except RateLimited:
            raise
        except UpstreamBusy as exc:
            if attempt == attempts:
                raise
            delay = min(cap, base * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            log.info("upstream busy (%s %s), retry %d in %.2fs", exc.provider, exc.code, attempt, delay)
            await sleep(delay)
    raise AssertionError("unreachable")
