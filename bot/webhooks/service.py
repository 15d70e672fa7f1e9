"""``service.webhooks``: the endpoints an admin registers, the events the core records for them, the deliveries.

    added = await service.webhooks.add(url, events, secret, requester)   # Added: the endpoint, its secret once
    service.webhooks.endpoints(requester)           # never with a secret
    service.webhooks.remove(endpoint_id, requester)
    await service.webhooks.test(url_or_id, requester)   # a signed ping, sent now; its delivery
    service.webhooks.deliveries(requester)          # the latest deliveries and their outcome

The core records an event before anyone is told of the change, in the change's own transaction (both kept or
neither): the storage verb that writes the change takes the ``Events`` this object builds and calls them inside
it (storage/webhooks.py): a code made or failed (:meth:`code_events`, bot/codes.py), the A/C quota counted past 80%
or 95% (:meth:`quota_events`), a batch finished (:meth:`batch_events`, bot/batch/engine.py), a live code
re-pointed, paused or resumed (:meth:`live_events`, bot/live/service.py). A live code's scans written past a
milestone are recorded right after the scan flusher writes (:meth:`scans_written`, which says why and what that
can lose); that recording never fails the write it follows: a failure is logged.

An endpoint's secret is sealed before it is stored (bot/webhooks/sealing.py) and opened only to sign (the sender,
``test``). Rows written before sealing existed hold it clear: :meth:`Webhooks.seal_clear` seals them when a
service opens. It runs here, not as a migration, because a migration is storage's and storage may not know the key
(it may come from a setting, ``MINPCODE_SCAN_HASH_KEY``, which only the core reads), and sealing is the core's.
"""

from __future__ import annotations

import builtins
import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
from pydantic import BaseModel

from bot.config import Settings
from bot.errors import FieldError, NotFound, PermissionDenied
from bot.jobs import new_owner
from bot.models import CodeRecord, Requester, Status
from bot.permissions import Permissions
from bot.redact import redact_url
from bot.webhooks import events, guard, sealing
from bot.webhooks.sealing import Sealer
from bot.webhooks.sender import TIMEOUT, Sender
from storage import Storage
from storage.scans import TEST_SOURCE, ScanRow
from storage.webhooks import DeliveryRow, EndpointRow, Event, Events

log = logging.getLogger("minpcode.webhooks")

SECRET_MIN = 16


class Endpoint(BaseModel):
    """An endpoint as listed: never its secret, and its URL with query values and userinfo masked (a receiver's
    token may ride there; bot/redact.py ``redact_url``). ``webhooks test`` and ``remove`` still take the whole URL."""

    id: str
    url: str
    events: list[str]  # empty: every event
    created_by: str
    created_at: datetime


class Added(BaseModel):
    endpoint: Endpoint
    secret: str      # shown once, at add; never listed again
    generated: bool  # made here (no --secret given)


class Delivery(BaseModel):
    id: int
    endpoint_id: str
    event_id: str
    event_type: str
    state: str          # pending, done, failed
    attempts: int
    last_status: int | None
    last_error: str | None
    next_at: datetime | None  # the next attempt, while pending
    created_at: datetime
    updated_at: datetime


def _when(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def _endpoint(row: EndpointRow) -> Endpoint:
    return Endpoint(id=row.id, url=redact_url(row.url), events=list(row.events), created_by=row.created_by,
                    created_at=_when(row.created_at))


def _delivery(row: DeliveryRow) -> Delivery:
    return Delivery(id=row.id, endpoint_id=row.endpoint_id, event_id=row.event_id, event_type=row.event_type,
                    state=row.state, attempts=row.attempts, last_status=row.last_status, last_error=row.last_error,
                    next_at=_when(row.next_at) if row.state == "pending" else None,
                    created_at=_when(row.created_at), updated_at=_when(row.updated_at))


class Webhooks:
    def __init__(self, settings: Settings, storage: Storage, permissions: Permissions) -> None:
        self.settings = settings
        self.storage = storage
        self.store = storage.webhooks
        self.permissions = permissions
        configured = settings.minpcode_scan_hash_key
        self.sealer = Sealer(lambda: storage.secrets.install_key(configured.get_secret_value() if configured
                                                                 else None))
        self.sender = Sender(self.store, storage.leases, new_owner(), schedule=settings.minpcode_webhooks_retry,
                             allow_private=lambda: self.settings.minpcode_webhooks_allow_private,
                             halted=storage.halted, open_secret=self.sealer.open)
        self.seal_clear()

    def seal_clear(self) -> int:
        """Seal the secrets stored clear by a version before sealing; idempotent (a sealed one is left), and done
        under the write lock, so two processes opening at once seal each row once. Never raises: a database that
        cannot be written now is sealed at the next open, and the sender signs with a clear secret meanwhile."""
        try:
            if all(sealing.sealed(row.secret) for row in self.store.endpoints(removed=True)):
                return 0  # the usual case: a read, no write transaction for every service opened
            self.sealer.load()
            count = self.store.reseal(lambda endpoint_id, stored: None if sealing.sealed(stored)
                                      else self.sealer.seal(endpoint_id, stored))
        except Exception:
            log.exception("sealing the webhook secrets stored clear failed; trying again at the next start")
            return 0
        if count:
            log.info("sealed %d webhook secret(s) stored clear by an earlier version", count)
        return count

    # -- what admins do -------------------------------------------------------------------------------
    async def add(self, url: str, event_types: Sequence[str] = (), secret: str | None = None, *,
                  requester: Requester) -> Added:
        """Register ``url`` for ``event_types`` (none: every event); the secret is made here unless given."""
        self._require_admin(requester, "webhook_add")
        url = url.strip()
        guard.parse(url)
        wanted = sorted({e.strip() for e in event_types if e.strip()})
        unknown = [e for e in wanted if e not in events.EVENT_TYPES]
        if unknown:
            names = ", ".join(events.EVENT_TYPES)
            raise FieldError("events", f"没有这种事件：{', '.join(unknown)}。可选：{names}。",
                             f"No such event: {', '.join(unknown)}. Choose from: {names}.")
        generated = secret is None
        secret = secrets.token_urlsafe(32) if secret is None else secret.strip()
        if len(secret) < SECRET_MIN:
            raise FieldError("secret", f"密钥至少 {SECRET_MIN} 个字符（不给就自动生成一个）。",
                             f"A secret needs at least {SECRET_MIN} characters (leave it out to have one made).")
        await guard.check(url, allow_private=self.settings.minpcode_webhooks_allow_private)  # last: it asks DNS
        endpoint_id = "wh_" + secrets.token_hex(6)
        row = self.store.add(endpoint_id, url, self.sealer.seal(endpoint_id, secret), wanted, requester.key)
        self.storage.audit.record(requester.key, "webhook_added", None, endpoint=row.id, url=redact_url(url),
                                  events=",".join(wanted) or "*")
        return Added(endpoint=_endpoint(row), secret=secret, generated=generated)

    def endpoints(self, requester: Requester) -> builtins.list[Endpoint]:
        self._require_admin(requester, "webhook_list")
        return [_endpoint(r) for r in self.store.endpoints()]

    def remove(self, endpoint_id: str, requester: Requester) -> Endpoint:
        self._require_admin(requester, "webhook_remove")
        row = self._find(endpoint_id)
        self.store.remove(row.id)
        self.storage.audit.record(requester.key, "webhook_removed", None, endpoint=row.id, url=redact_url(row.url))
        return _endpoint(row)

    def deliveries(self, requester: Requester, endpoint_id: str | None = None,
                   limit: int = 20) -> builtins.list[Delivery]:
        """The latest deliveries (of one endpoint), newest first."""
        self._require_admin(requester, "webhook_list")
        if endpoint_id is not None:
            endpoint_id = self._find(endpoint_id).id
        return [_delivery(r) for r in self.store.recent(endpoint_id, limit)]

    async def test(self, target: str, requester: Requester) -> Delivery:
        """Send a signed ``ping`` to a registered endpoint (by URL or id) now; its delivery, with the outcome.
        A failed ping is not tried again."""
        self._require_admin(requester, "webhook_test")
        row = self._find(target)
        self.sealer.open(row.id, row.secret)  # a secret this install cannot open is said now, not as a failed ping
        event_id = events.new_id()
        body = events.body(event_id, events.PING, {"endpoint": row.id, "url": redact_url(row.url)})
        made = self.store.record(event_id, events.PING, body, endpoint_id=row.id)
        async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, trust_env=False) as http:
            await self.sender.deliver(http, made[0])
        found = self.store.delivery(made[0])
        assert found is not None
        return _delivery(found)

    # -- what the core records ------------------------------------------------------------------------
    def emit(self, event_type: str, data: dict[str, Any], *, event_id: str | None = None) -> None:
        """Record ``event_type`` for every endpoint that wants it, after its change was saved; never raises."""
        try:
            if not self.store.endpoints():
                return  # nobody listens: no write transaction for every code made
            event = event_id or events.new_id()
            if self.store.record(event, event_type, events.body(event, event_type, data)):
                self.sender.wake()
        except Exception:
            log.exception("recording webhook event %s failed; it is not delivered", event_type)

    def recorded(self) -> None:
        """A change's transaction that may have written events has committed: the sender looks now."""
        self.sender.wake()

    def code_events(self, code_id: str) -> Events:
        """For ``mark_done``/``mark_failed`` (storage/history.py): the code made or failed event, built inside the
        change's transaction from the row as just written, so the change and its event are kept together. A
        poster's sharper copy is not a code anyone asked for: no event."""
        def made() -> builtins.list[Event]:
            record = self.storage.history.get(code_id)
            if record is None or record.copy_of is not None or record.status not in (Status.DONE, Status.FAILED):
                return []
            kind = events.CODE_MADE if record.status is Status.DONE else events.CODE_FAILED
            return self._event(kind, lambda: {"code": events.code(record, self.settings.minpcode_public_url)})
        return made

    def live_events(self, event_type: str, record: CodeRecord,
                    state: Callable[[], tuple[str, bool, str] | None]) -> Events:
        """For the live store's re-point, pause and resume (storage/live.py): the event, built inside the change's
        transaction from ``state()``: the destination, paused, and where a scan leads now, as just written."""
        def changed() -> builtins.list[Event]:
            now = state()
            if now is None:
                return []
            destination, paused, leads_to = now
            return self._event(event_type, lambda: {
                "code": events.code(record, self.settings.minpcode_public_url),
                "live": {"destination": destination, "paused": paused, "leads_to": leads_to}})
        return changed

    def _event(self, event_type: str, data: Callable[[], dict[str, Any]], *,
               event_id: str | None = None) -> builtins.list[Event]:
        # Building the body is ours alone: a bug there is logged and the change kept without its event, rather than
        # the change refused. A failure to write the event fails the change's transaction, as it should.
        try:
            event_id = event_id or events.new_id()
            return [Event(event_id, event_type, events.body(event_id, event_type, data()))]
        except Exception:
            log.exception("building webhook event %s failed; it is not recorded", event_type)
            return []

    def batch_events(self, batch_id: str) -> Events:
        """For the batch store's ``set_status`` (storage/batches.py): the batch finished event, built inside the
        transaction that marks it done, from the batch as just written (an id of its own: recorded once)."""
        def finished() -> builtins.list[Event]:
            done = self.storage.batches.get(batch_id)
            if done is None:
                return []
            return self._event(events.BATCH_FINISHED, lambda: {"batch": {
                "id": done.id, "filename": done.filename, "total": done.total, "rows": dict(sorted(done.counts.items())),
                "requested_by": done.origin.requester.key}}, event_id=f"evt_batch_{batch_id}_finished")
        return finished

    def scans_written(self, rows: Sequence[ScanRow]) -> None:
        """The scan flusher wrote ``rows``: a live code whose real scans passed a milestone gets one event each.

        Recorded after the scans' transaction, not in it, and so not crash-proof: the crossing is found from the
        rows just written (the total before them to the total after), so a process killed between the flush and
        this check loses that milestone's event for good; the next flush starts from a total already past it. We
        checked, it is not recomputed. Left so on purpose: that write is the resolver's flusher, which keeps no reads
        under the write lock (totals, the live row and the code for each crossing), and the loss needs a kill in
        that instant, for at most one event per code and milestone; docs/webhooks.md says so."""
        try:
            if not self.store.endpoints():
                return
            added: dict[str, int] = {}
            for key, _at, _visitor, source, *_ in rows:
                if source != TEST_SOURCE:
                    added[key] = added.get(key, 0) + 1
            if not added:
                return
            totals = self.storage.scans.totals(sorted(added))
        except Exception:
            log.exception("checking scan milestones failed")
            return
        for key, total in totals.items():
            for mark in events.crossed(total - added.get(key, 0), total, events.MILESTONES):
                live = self.storage.live.get(key)
                record = self.storage.history.get(live.code_id) if live is not None else None
                if record is None:
                    continue
                self.emit(events.LIVE_MILESTONE,
                          {"code": events.code(record, self.settings.minpcode_public_url),
                           "milestone": mark, "scans": total},
                          event_id=f"evt_scans_{record.id}_{mark}")

    def quota_events(self, app: str, cap: int) -> Events:
        """For the ledger's ``spend`` (storage/ledger.py): one more A/C code was counted against ``app``'s lifetime
        cap, inside its transaction; the thresholds that count crossed, one event each (ids per app, cap and
        level: noticed twice, recorded once)."""
        def counted() -> builtins.list[Event]:
            if cap <= 0:
                return []
            used = self.storage.ledger.used(app)  # as just counted, inside the transaction
            made: builtins.list[Event] = []
            for level in events.QUOTA_LEVELS:
                mark = -(-cap * level // 100)  # the first count at or past the level
                if used - 1 < mark <= used:
                    data = {"quota": {"app": app, "level": level, "used": used, "cap": cap,
                                      "left": max(0, cap - used)}}
                    made += self._event(events.QUOTA_THRESHOLD, partial(dict, data),
                                        event_id=f"evt_quota_{app}_{cap}_{level}")
            return made
        return counted

    # -- helpers --------------------------------------------------------------------------------------
    def _find(self, target: str) -> EndpointRow:
        target = target.strip()
        for row in self.store.endpoints():
            if target in (row.id, row.url):
                return row
        raise NotFound(f"没有这个 webhook：{target}（用 minpcode webhooks list 查看）。",
                       f"No such webhook: {target} (see minpcode webhooks list).", field="url")

    def _require_admin(self, requester: Requester, action: str) -> None:
        if self.permissions.may_administer(requester):
            return
        self.storage.audit.record(requester.key, f"{action}_refused", None)
        raise PermissionDenied("只有管理员（MINPCODE_ADMINS）可以管理 webhook。",
                               "Only admins (MINPCODE_ADMINS) may manage webhooks.")


__all__ = ["Added", "Delivery", "Endpoint", "Webhooks"]
