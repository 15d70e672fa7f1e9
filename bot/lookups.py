"""What forms offer: campaign, channel and mini-program choices, cached and served stale while refreshing.

A form must open and answer fast whatever GrowingIO does (Slack allows 3 s for the whole round
trip), so a cold list is waited for at most ``timeout`` seconds and a stale list is served at once
while one refresh (single flight) runs in the background.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from pydantic import BaseModel

from bot.concurrency import SingleFlight
from bot.errors import MinpcodeError
from bot.upstream import Upstream
from bot.upstream.growingio import Created

log = logging.getLogger("minpcode.lookups")

ListKind = Literal["campaign", "channel", "apps"]
LIST_TTL = 60.0  # seconds a list is fresh; GrowingIO's own lists change rarely
_KIND_OF: dict[Created, ListKind] = {"campaigns": "campaign", "channels": "channel"}


class Option(BaseModel):
    """One choice a form can offer: ``value`` goes back to the service, ``label`` is shown."""

    value: str
    label: str


class Lookups:
    def __init__(self, upstream: Upstream, clock: Callable[[], float] = time.monotonic) -> None:
        self.upstream = upstream
        self._clock = clock
        self._data: dict[ListKind, tuple[float, list[Option]]] = {}
        self._flight: SingleFlight[ListKind, list[Option]] = SingleFlight()
        self._tasks: set[asyncio.Task[list[Option]]] = set()
        if upstream.gio is not None:
            # A campaign or channel made by any request (create=yes in a chat, the CLI, the API, a batch)
            # shows in the next form at once, not after LIST_TTL.
            upstream.gio.on_created(lambda what: self.invalidate(_KIND_OF[what]))

    def cached(self, kind: ListKind) -> list[Option]:
        """What is known now, without waiting (empty when nothing was loaded yet)."""
        entry = self._data.get(kind)
        return entry[1] if entry else []

    def fresh(self, kind: ListKind) -> bool:
        entry = self._data.get(kind)
        return entry is not None and self._clock() - entry[0] < LIST_TTL

    def invalidate(self, *kinds: ListKind) -> None:
        for kind in kinds:
            self._data.pop(kind, None)

    async def get(self, kind: ListKind, *, timeout: float | None = None) -> list[Option]:
        """The list; stale answers at once (refreshing behind), cold waits ``timeout`` at most ([] then)."""
        entry = self._data.get(kind)
        if entry is not None and self.fresh(kind):
            return entry[1]
        task = asyncio.ensure_future(self._flight.run(kind, lambda: self._load(kind)))
        self._tasks.add(task)
        task.add_done_callback(self._settled)
        if entry is not None:
            return entry[1]
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout)
        except (TimeoutError, MinpcodeError):
            return []

    def _settled(self, task: asyncio.Task[list[Option]]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            text = exc.en if isinstance(exc, MinpcodeError) else type(exc).__name__
            log.warning("could not load a list for the forms: %s", text)

    async def _load(self, kind: ListKind) -> list[Option]:
        loaders: dict[ListKind, Callable[[], Awaitable[list[Option]]]] = {
            "apps": self._apps, "campaign": self._campaigns, "channel": self._channels}
        items = await loaders[kind]()
        self._data[kind] = (self._clock(), items)
        return items

    async def _apps(self) -> list[Option]:
        return [Option(value=p.spn or p.id, label=f"{p.name} ({p.spn or p.id})")
                for p in await self.upstream.mini_programs()]

    async def _campaigns(self) -> list[Option]:
        gio = self.upstream.gio
        return [Option(value=c.id, label=c.name) for c in await gio.campaigns()] if gio else []

    async def _channels(self) -> list[Option]:
        gio = self.upstream.gio
        return [Option(value=c.id, label=c.name) for c in await gio.channels()] if gio else []


__all__ = ["LIST_TTL", "ListKind", "Lookups", "Option"]
