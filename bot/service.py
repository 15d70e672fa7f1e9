"""The one entry point every front-end calls, and the composition root of the core's features.

    service = Service(settings, storage, upstream)   # the process builds it: bot.server.open_service
    await service.submit(request, requester)              # the code verbs (bot/codes.py)
    service.live.repoint(code_id, page, requester)        # live codes (bot/live/)
    await service.posters.make(code_id, poster, requester)   # posters (bot/posters/)
    await service.batches.dry_run(sheet, origin)          # batches (bot/batch/)
    service.permissions.may_manage(record, requester)     # who may change what (bot/permissions.py)
    await service.webhooks.add(url, events, requester=r)  # signed webhooks (bot/webhooks/; serve's sender)

A feature is a package with one service object, built here and handed what it needs (the
permissions, the storage, the code verbs); front-ends call ``service.<feature>.<verb>``. No feature
imports this module: those that make codes are handed :class:`bot.codes.Codes`, which this class
extends, so there is no import circle, not even one for type checking.
"""

from __future__ import annotations

from bot.batch.engine import BatchEngine
from bot.codes import Codes
from bot.config import Settings
from bot.live.service import LiveService
from bot.permissions import Permissions
from bot.posters.service import Posters
from bot.upstream import Upstream
from bot.webhooks import Webhooks
from storage import Storage


class Service(Codes):
    """What every front-end calls (they never reach storage or the upstream client themselves): the code
    verbs of :class:`bot.codes.Codes`, and :attr:`permissions`, :attr:`live`, :attr:`posters`,
    :attr:`batches`, :attr:`webhooks`. Lifecycle: :meth:`start`, :meth:`close` (or ``async with``)."""

    def __init__(self, settings: Settings, storage: Storage, upstream: Upstream, *, concurrency: int = 4) -> None:
        permissions = Permissions(settings.minpcode_admins, storage.audit)
        # Built first: the code verbs and the live feature record what happens for the operator's endpoints.
        webhooks = Webhooks(settings, storage, permissions)
        # Scans whose Referer names another mini program are not counted: ours is the WeChat client's appid.
        live = LiveService(settings, storage, permissions, webhooks,
                           appid=upstream.wechat.appid if upstream.wechat else None)
        super().__init__(settings, storage, upstream, permissions=permissions, live=live, webhooks=webhooks,
                         concurrency=concurrency)
        self.posters = Posters(self, storage, permissions)
        # One engine per process: the chats, the upload page, the CLI and serve's resume share it.
        self.batches = BatchEngine(self, self.posters)

    async def start(self) -> int:
        """Start the features and the worker, resuming every pending row; returns how many were resumed."""
        await self.live.start()
        return await super().start()

    async def close(self) -> None:
        await self.live.close()  # every scan counted so far is written before the database closes
        await super().close()


__all__ = ["Service"]
