"""The delivery loop ``serve`` runs: every due delivery POSTed, signed, under its lease; its outcome recorded.

A delivery is claimed under the lease ``webhook:<id>`` (storage/leases.py, as the outbox's rows and the code jobs
are), so one process at a time sends it, and re-read under it, so one that another process sent or rescheduled
meanwhile is left alone. Its row is written only after the change it tells of was saved (bot/webhooks/service.py),
so nothing is sent early, and a killed process's rows are still pending at the next start: nothing is lost.
A receiver that answered 2xx but whose "done" was not written before a crash sees the event again with the
same id, which it dedupes on (docs/webhooks.md).

Bounded: ``TIMEOUT`` per attempt, no redirect followed (a 3xx is a failure), at most ``ANSWER_MAX`` bytes of the
answer read, the body never larger than ``BODY_MAX``; the address checked again before each attempt
(bot/webhooks/guard.py). A failure or a non-2xx answer is tried again after the next wait of the schedule
(``MINPCODE_WEBHOOKS_RETRY``); past its last the delivery is given up and listed as failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

import httpx

from bot.errors import MinpcodeError, StorageUnavailable
from bot.jobs import run_leased
from bot.metrics import METRICS
from bot.redact import redact, redact_url
from bot.version import __version__
from bot.webhooks import guard, signing
from storage.leases import Leases
from storage.webhooks import DeliveryRow, WebhookStore

log = logging.getLogger("minpcode.webhooks")

TIMEOUT = 10.0          # seconds for one attempt: connecting, sending, the answer's headers
ANSWER_MAX = 1024       # bytes of an answer read (kept, cut, as the attempt's error when not 2xx)
BODY_MAX = 64 * 1024    # a body is a few hundred bytes; a larger one is our bug, refused rather than sent
POLL = 1.0              # seconds between looks for due rows (another process may have recorded them)
AT_ONCE = 8             # deliveries in flight at once: one slow receiver does not hold up the others
WRITER = "The webhook sender"


class Sender:
    def __init__(self, store: WebhookStore, leases: Leases, owner: str, *, schedule: Sequence[float],
                 allow_private: Callable[[], bool], open_secret: Callable[[str, str], str],
                 halted: Callable[[str], StorageUnavailable | None] | None = None, poll: float = POLL) -> None:
        self._store = store
        self._leases = leases
        self.owner = owner
        self._schedule = tuple(schedule)
        self._allow_private = allow_private
        self._halted = halted
        self._poll = poll
        self._open_secret = open_secret  # the endpoint's stored secret, opened (bot/webhooks/sealing.py)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gate = asyncio.Semaphore(AT_ONCE)
        self._inflight: set[int] = set()

    # -- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="minpcode-webhook-sender")

    async def stop(self) -> None:
        """Stop sending; a delivery cut off here stays pending and is sent by the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        """Something was recorded in this process: look now rather than at the next poll. Safe from any thread
        (a change made in a worker thread records its event there)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, trust_env=False,
                                     headers={"User-Agent": f"minpcode/{__version__} (webhooks)"}) as http:
            running: set[asyncio.Task[None]] = set()
            try:
                while True:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll)
                    self._wake.clear()
                    try:
                        if self._halted is not None and self._halted(WRITER) is not None:
                            continue
                        due = [i for i in self._store.due() if i not in self._inflight]
                    except Exception:
                        log.exception("reading due webhook deliveries failed; trying again shortly")
                        continue
                    for delivery_id in due:
                        self._inflight.add(delivery_id)
                        task = asyncio.create_task(self._one(http, delivery_id), name=f"webhook-{delivery_id}")
                        running.add(task)
                        task.add_done_callback(running.discard)
            finally:
                for task in running:
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)

    async def _one(self, http: httpx.AsyncClient, delivery_id: int) -> None:
        try:
            async with self._gate:
                await self.deliver(http, delivery_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook delivery %d failed unexpectedly; it stays pending", delivery_id)
        finally:
            self._inflight.discard(delivery_id)

    # -- one delivery ---------------------------------------------------------------------------------
    async def deliver(self, http: httpx.AsyncClient, delivery_id: int) -> str | None:
        """Attempt one due delivery under its lease: "delivered", "retrying", "failed"; None when another
        process has it or it is not due (sent or rescheduled meanwhile)."""
        outcome: list[str] = []

        async def work() -> None:
            row = self._store.delivery(delivery_id)
            if row is None or row.state != "pending" or row.next_at > time.time():
                return
            outcome.append(await self._attempt(http, row))

        await run_leased(self._leases, f"webhook:{delivery_id}", self.owner, work)
        return outcome[0] if outcome else None

    async def _attempt(self, http: httpx.AsyncClient, row: DeliveryRow) -> str:
        endpoint = self._store.endpoint(row.endpoint_id)
        if endpoint is None or endpoint.removed_at is not None:
            self._store.attempted(row.id, status=None, error="endpoint removed", state="failed")
            METRICS.webhook_deliveries.labels("failed").inc()
            return "failed"
        body = row.body.encode("utf-8")
        status: int | None = None
        try:
            if len(body) > BODY_MAX:
                raise ValueError(f"body of {len(body)} bytes is over {BODY_MAX}")
            try:
                secret = self._open_secret(endpoint.id, endpoint.secret)
            except MinpcodeError as exc:
                log.error("webhook %s to endpoint %s cannot be signed: %s", row.event_id, endpoint.id, exc.en)
                raise
            await guard.check(endpoint.url, allow_private=self._allow_private())
            stamp = int(time.time())
            headers = {"Content-Type": "application/json", "X-Minpcode-Event": row.event_type,
                       "X-Minpcode-Event-Id": row.event_id, **signing.headers(secret, stamp, body)}
            async with http.stream("POST", endpoint.url, content=body, headers=headers) as answer:
                status = answer.status_code
                read = b""
                async for chunk in answer.aiter_raw():
                    read += chunk
                    if len(read) >= ANSWER_MAX:
                        break  # the rest is not read: closing the stream drops the connection
            error = None if 200 <= status <= 299 else f"HTTP {status}: {read[:200].decode('utf-8', 'replace')}"
        except MinpcodeError as exc:
            error = f"refused: {exc.en}"
        except (httpx.HTTPError, OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        if error is None:
            self._store.attempted(row.id, status=status, error=None, state="done")
            METRICS.webhook_deliveries.labels("delivered").inc()
            log.info("webhook %s (%s) delivered to endpoint %s", row.event_id, row.event_type, endpoint.id)
            return "delivered"
        error = redact(error.replace(endpoint.url, redact_url(endpoint.url)))  # kept and listed: no token of its URL
        attempts = row.attempts + 1
        if row.event_type == "ping" or attempts > len(self._schedule):
            self._store.attempted(row.id, status=status, error=error, state="failed")
            METRICS.webhook_deliveries.labels("failed").inc()
            log.warning("webhook %s to endpoint %s given up after %d attempt(s): %s", row.event_id, endpoint.id,
                        attempts, error)
            return "failed"
        wait = self._schedule[attempts - 1]
        self._store.attempted(row.id, status=status, error=error, state="pending", next_at=time.time() + wait)
        METRICS.webhook_deliveries.labels("retrying").inc()
        log.info("webhook %s to endpoint %s failed (attempt %d), next in %.0f s: %s", row.event_id, endpoint.id,
                 attempts, wait, error)
        return "retrying"


__all__ = ["ANSWER_MAX", "BODY_MAX", "TIMEOUT", "Sender"]
