"""Answers promised before an ack, kept until delivered — after a crash and a restart too.

A front-end that acknowledges a request now and answers later (WeCom's empty 200, Slack's
"working on it…") first :meth:`Outbox.accept`\\ s it: the request and where its answer goes (chat,
conversation, person, message to update) are saved in one transaction, with the request's id
remembered for its replay window. It then :meth:`Outbox.deliver`\\ s it under a lease (one process
at a time) and marks it done; on start, the front-end delivers what :meth:`Outbox.pending` says a previous
run left.

A crash between a send the platform took and marking the row done runs the delivery again: it never
loses an answer, and can repeat a send. Where the platform can recognise a repeat (WeCom's duplicate
check on a media message, handlers/wecom/deliver.py), the work keeps what the repeat must reuse with the
row, before the send: :func:`attempt` is the row being delivered, ``remember`` writes, ``recall`` reads.

While writes cannot be kept (the database file deleted under the server, a full disk: storage/writes.py)
nothing is delivered: the answer would make a code or a draft nobody keeps, and its "done" would land
in a file nobody opens again. Each delivery waits, said once in the log, and goes on when writes can be
kept again (a full disk with room again; a restored file only after the restart, which redelivers).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from bot.jobs import run_leased
from storage import Storage
from storage import outbox as stored

log = logging.getLogger("minpcode.outbox")

RETRY = 2.0  # seconds between looks at a row another process is delivering

Deliver = Callable[[int, str, dict[str, Any]], Awaitable[None]]


class Attempt:
    """One run of one row's delivery: what it remembers is there for the next run, after a crash."""

    def __init__(self, store: stored.Outbox, row_id: int) -> None:
        self._store = store
        self.row_id = row_id

    def recall(self, key: str) -> str | None:
        return self._store.notes(self.row_id).get(key)

    def pending(self) -> bool:
        return self._store.state(self.row_id) == "pending"

    def remember(self, key: str, value: str) -> None:
        """Written to disk before this returns: call it before the send that ``value`` is for."""
        self._store.note(self.row_id, key, value)


# The delivery this task runs, if any: set around the work so that code deep in a front-end's answer (a
# deliverer) reaches its row without every call on the way passing it along.
_ATTEMPT: ContextVar[Attempt | None] = ContextVar("minpcode_outbox_attempt", default=None)


def attempt() -> Attempt | None:
    """The outbox row the current task is delivering; None outside a delivery."""
    run = _ATTEMPT.get()
    # a task the work started inherits the variable and may outlive the row (a WeCom batch run): not its row
    return run if run is not None and run.pending() else None


class Outbox:
    def __init__(self, storage: Storage, owner: str) -> None:
        self._storage = storage
        self._store = storage.outbox
        self._leases = storage.leases
        self.owner = owner

    def first_seen(self, key: str, ttl: float) -> bool:
        """True the first time ``key`` is seen in ``ttl`` seconds, by any process on this data directory."""
        return self._store.first_seen(key, ttl)

    def seen(self, key: str) -> bool:
        """True when ``key`` was seen and its window has not lapsed; changes nothing."""
        return self._store.seen(key)

    def forget(self, key: str) -> None:
        """Undo :meth:`first_seen` (a one-time link whose sheet was not taken may be used again)."""
        self._store.forget(key)

    def accept(self, front: str, kind: str, payload: dict[str, Any], *, seen: str | None = None,
               ttl: float = 0.0) -> int | None:
        """Save what is owed (before the ack); None when ``seen`` was seen already (a replay: nothing saved)."""
        return self._store.accept(front, kind, json.dumps(payload, ensure_ascii=False), seen=seen, ttl=ttl)

    async def deliver(self, row_id: int, work: Callable[[], Awaitable[None]]) -> bool:
        """Run ``work`` for the row under its lease, then mark it done; False when another process has it."""
        while self._storage.halted("The outbox") is not None:
            await asyncio.sleep(RETRY)
        if self._store.state(row_id) != "pending":
            return False

        async def run() -> None:
            if self._store.state(row_id) == "pending":
                token = _ATTEMPT.set(Attempt(self._store, row_id))
                try:
                    await work()
                finally:
                    _ATTEMPT.reset(token)
                self._store.done(row_id)

        while not await run_leased(self._leases, f"outbox:{row_id}", self.owner, run):
            if self._store.state(row_id) != "pending":
                return False  # another process delivered it
            await asyncio.sleep(RETRY)  # another process holds it: deliver it if its lease lapses
        return True

    def pending(self, front: str) -> list[tuple[int, str, dict[str, Any]]]:
        return [(row_id, kind, json.loads(payload)) for row_id, kind, payload in self._store.pending(front)]


__all__ = ["Attempt", "Deliver", "Outbox", "attempt"]
