"""Answers promised before an ack, kept until delivered — after a crash and a restart too.

A front-end that acknowledges a request now and answers later (WeCom's empty 200, Slack's
"working on it…") first :meth:`Outbox.accept`\\ s it: the request and where its answer goes (chat,
conversation, person, message to update) are saved in one transaction, with the request's id
remembered for its replay window. It then :meth:`Outbox.deliver`\\ s it under a lease (one process
at a time) and marks it done; on start, :meth:`Outbox.replay` delivers what a previous run left.
A crash between sending and marking done can send one answer twice; it never loses one.

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
from typing import Any

from bot.jobs import run_leased
from storage import Storage

log = logging.getLogger("minpcode.outbox")

RETRY = 2.0  # seconds between looks at a row another process is delivering

Deliver = Callable[[int, str, dict[str, Any]], Awaitable[None]]


class Outbox:
    def __init__(self, storage: Storage, owner: str) -> None:
        self._storage = storage
        self._store = storage.outbox
        self._leases = storage.leases
        self.owner = owner

    def first_seen(self, key: str, ttl: float) -> bool:
        """True the first time ``key`` is seen in ``ttl`` seconds, by any process on this data directory."""
        return self._store.first_seen(key, ttl)

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
                await work()
                self._store.done(row_id)

        while not await run_leased(self._leases, f"outbox:{row_id}", self.owner, run):
            if self._store.state(row_id) != "pending":
                return False  # another process delivered it
            await asyncio.sleep(RETRY)  # another process holds it: deliver it if its lease lapses
        return True

    def pending(self, front: str) -> list[tuple[int, str, dict[str, Any]]]:
        return [(row_id, kind, json.loads(payload)) for row_id, kind, payload in self._store.pending(front)]


__all__ = ["Deliver", "Outbox"]
