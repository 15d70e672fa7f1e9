"""Webhook endpoints and their deliveries: one row per (endpoint, event), delivered by bot/webhooks/sender.py.

    store.add(endpoint_id, url, secret, events, created_by)
    store.record(event_id, event_type, body)   # one pending row for each endpoint that wants the event
    record_events(db, events)                       # the same, inside a change's own transaction (below)
    store.due(now)                                  # ids whose next attempt is due, oldest first
    store.attempted(delivery_id, ...)               # the attempt's outcome, and when the next one is due

Why a table of its own rather than the outbox (storage/outbox.py): the outbox keeps what one front-end owes one
chat and delivers it at once, with no schedule; a webhook delivery is retried on a schedule for up to a day,
and its attempts and last answer are listed to the operator. The same machinery delivers both: a row is
claimed under its lease (storage/leases.py, ``webhook:<id>``), one process at a time.

An event is written in the transaction of the change it tells of where a storage verb writes that change (a code
made or failed, storage/history.py; a live code re-pointed, paused or resumed, storage/live.py): the verb takes an
``events`` callable, called inside its transaction once the change is written, and this module's
:func:`record_events` writes what it answers. Both are kept, or neither: a crash between the change and its event
cannot lose the event. The callable reads the rows as just written (the transaction's own connection) and must
not open a transaction of its own.

Each (endpoint, event id) is unique, so an event recorded twice (two processes noticing the same scan
milestone, a retried write) is delivered once. The endpoint's secret is stored as the core hands it: sealed
(bot/webhooks/sealing.py), opaque text here; storage never sees the key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from storage.engine import Database
from storage.transaction import immediate

MIGRATION = "webhooks"
KEEP_FINISHED = 30 * 86400.0  # delivered and given-up rows are listed for a month, then dropped
STATES = ("pending", "done", "failed")


@dataclass(frozen=True)
class EndpointRow:
    id: str
    url: str
    secret: str
    events: tuple[str, ...]  # empty: every event
    created_by: str
    created_at: float
    removed_at: float | None


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    endpoint_id: str
    event_id: str
    event_type: str
    body: str
    state: str
    attempts: int
    next_at: float
    last_status: int | None
    last_error: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Event:
    """One event to record: its id, type, and the JSON body every delivery carries (bot/webhooks/events.py)."""

    id: str
    type: str
    body: str


# Called inside a change's transaction, after the change is written: the events that change makes.
Events = Callable[[], Sequence[Event]]

_ENDPOINT = "id, url, secret, events, created_by, created_at, removed_at"
_DELIVERY = ("id, endpoint_id, event_id, event_type, body, state, attempts, next_at, last_status, last_error, "
             "created_at, updated_at")


def _endpoint(row: tuple[object, ...]) -> EndpointRow:
    return EndpointRow(id=str(row[0]), url=str(row[1]), secret=str(row[2]),
                       events=tuple(str(e) for e in json.loads(str(row[3]))), created_by=str(row[4]),
                       created_at=float(row[5]),  # type: ignore[arg-type]
                       removed_at=None if row[6] is None else float(row[6]))  # type: ignore[arg-type]


def _delivery(row: tuple[object, ...]) -> DeliveryRow:
    return DeliveryRow(id=int(row[0]), endpoint_id=str(row[1]), event_id=str(row[2]),  # type: ignore[call-overload]
                       event_type=str(row[3]), body=str(row[4]), state=str(row[5]),
                       attempts=int(row[6]), next_at=float(row[7]),  # type: ignore[call-overload, arg-type]
                       last_status=None if row[8] is None else int(row[8]),  # type: ignore[call-overload]
                       last_error=None if row[9] is None else str(row[9]),
                       created_at=float(row[10]), updated_at=float(row[11]))  # type: ignore[arg-type]


class WebhookStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- endpoints ------------------------------------------------------------------------------------
    def add(self, endpoint_id: str, url: str, secret: str, events: list[str], created_by: str) -> EndpointRow:
        now = time.time()
        self._db.execute(f"INSERT INTO webhook_endpoints ({_ENDPOINT}) VALUES (?, ?, ?, ?, ?, ?, NULL)",
                         [endpoint_id, url, secret, json.dumps(sorted(events)), created_by, now])
        found = self.endpoint(endpoint_id)
        assert found is not None
        return found

    def endpoint(self, endpoint_id: str) -> EndpointRow | None:
        row = self._db.execute(f"SELECT {_ENDPOINT} FROM webhook_endpoints WHERE id = ?", [endpoint_id]).fetchone()
        return _endpoint(row) if row else None

    def reseal(self, convert: Callable[[str, str], str | None]) -> int:
        """Replace every stored secret (removed endpoints' too) for which ``convert(endpoint_id, stored)`` answers a
        new value; how many were replaced. Read and written under the write lock, so two processes starting together
        convert each row once: the second reads what the first wrote."""
        changed = 0
        with immediate(self._db):
            for endpoint_id, stored in self._db.execute("SELECT id, secret FROM webhook_endpoints").fetchall():
                new = convert(str(endpoint_id), str(stored))
                if new is not None and new != stored:
                    self._db.execute("UPDATE webhook_endpoints SET secret = ? WHERE id = ?", [new, endpoint_id])
                    changed += 1
        return changed

    def endpoints(self, *, removed: bool = False) -> list[EndpointRow]:
        """The endpoints registered and not removed (and the removed ones too with ``removed``), oldest first."""
        where = "" if removed else "WHERE removed_at IS NULL "
        rows = self._db.execute(f"SELECT {_ENDPOINT} FROM webhook_endpoints {where}"
                                "ORDER BY created_at, id").fetchall()
        return [_endpoint(r) for r in rows]

    def remove(self, endpoint_id: str) -> bool:
        """Stop delivering to the endpoint: what it was still owed is given up (kept, listed as failed)."""
        now = time.time()
        with immediate(self._db):
            cursor = self._db.execute("UPDATE webhook_endpoints SET removed_at = ? WHERE id = ? AND removed_at IS NULL",
                                      [now, endpoint_id])
            if cursor.rowcount != 1:
                return False
            self._db.execute("UPDATE webhook_deliveries SET state = 'failed', last_error = ?, updated_at = ? "
                             "WHERE endpoint_id = ? AND state = 'pending'", ["endpoint removed", now, endpoint_id])
        return True

    # -- deliveries -----------------------------------------------------------------------------------
    def record(self, event_id: str, event_type: str, body: str, *, endpoint_id: str | None = None,
               now: float | None = None) -> list[int]:
        """One pending row per endpoint that wants ``event_type`` (or for ``endpoint_id`` alone), in one
        transaction; an (endpoint, event id) recorded before is not recorded again. Returns the new rows' ids."""
        with immediate(self._db):
            return _insert(self._db, [Event(event_id, event_type, body)], endpoint_id=endpoint_id, now=now)

    def delivery(self, delivery_id: int) -> DeliveryRow | None:
        row = self._db.execute(f"SELECT {_DELIVERY} FROM webhook_deliveries WHERE id = ?", [delivery_id]).fetchone()
        return _delivery(row) if row else None

    def due(self, now: float | None = None, limit: int = 50) -> list[int]:
        """Pending deliveries whose next attempt is due, the longest-waiting first."""
        at = time.time() if now is None else now
        rows = self._db.execute("SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_at <= ? "
                                "ORDER BY next_at, id LIMIT ?", [at, limit]).fetchall()
        return [int(r[0]) for r in rows]

    def next_due(self) -> float | None:
        """When the earliest pending delivery is due (None: nothing pending)."""
        row = self._db.execute("SELECT min(next_at) FROM webhook_deliveries WHERE state = 'pending'").fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def attempted(self, delivery_id: int, *, status: int | None, error: str | None, state: str,
                  next_at: float | None = None) -> None:
        """One attempt's outcome: ``state`` done, failed (given up) or pending again at ``next_at``."""
        now = time.time()
        self._db.execute(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = ?, last_error = ?, state = ?, "
            "next_at = ?, updated_at = ? WHERE id = ? AND state = 'pending'",
            [status, error, state, now if next_at is None else next_at, now, delivery_id])
        if state != "pending":
            # indexed on updated_at: the month-old rows only, however many are kept
            self._db.execute("DELETE FROM webhook_deliveries WHERE updated_at < ? AND state <> 'pending'",
                             [now - KEEP_FINISHED])

    def recent(self, endpoint_id: str | None = None, limit: int = 20) -> list[DeliveryRow]:
        """The latest deliveries (of one endpoint), newest first."""
        if endpoint_id is None:
            rows = self._db.execute(f"SELECT {_DELIVERY} FROM webhook_deliveries ORDER BY id DESC LIMIT ?",
                                    [limit]).fetchall()
        else:
            rows = self._db.execute(f"SELECT {_DELIVERY} FROM webhook_deliveries WHERE endpoint_id = ? "
                                    "ORDER BY id DESC LIMIT ?", [endpoint_id, limit]).fetchall()
        return [_delivery(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Deliveries kept, by state (the metrics page)."""
        rows = self._db.execute("SELECT state, count(*) FROM webhook_deliveries GROUP BY state").fetchall()
        return {str(r[0]): int(r[1]) for r in rows}


def record_events(db: Database, events: Events | None, now: float | None = None) -> list[int]:
    """Inside the caller's transaction: the rows of the events ``events()`` answers, for the endpoints that want
    them; ``events`` is not called when no endpoint is registered (nothing is built for nobody)."""
    if events is None:
        return []
    endpoints = _endpoints(db)
    if not endpoints:
        return []
    return _insert(db, events(), endpoints=endpoints, now=now)


def _endpoints(db: Database) -> list[EndpointRow]:
    rows = db.execute(f"SELECT {_ENDPOINT} FROM webhook_endpoints WHERE removed_at IS NULL "
                      "ORDER BY created_at, id").fetchall()
    return [_endpoint(r) for r in rows]


def _insert(db: Database, events: Sequence[Event], *, endpoint_id: str | None = None,
            endpoints: list[EndpointRow] | None = None, now: float | None = None) -> list[int]:
    at = time.time() if now is None else now
    made: list[int] = []
    for endpoint in _endpoints(db) if endpoints is None else endpoints:
        for event in events:
            if endpoint_id is not None and endpoint.id != endpoint_id:
                continue
            if endpoint_id is None and endpoint.events and event.type not in endpoint.events:
                continue
            row = db.execute(
                "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, body, state, attempts, next_at, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?) "
                "ON CONFLICT (endpoint_id, event_id) DO NOTHING RETURNING id",
                [endpoint.id, event.id, event.type, event.body, at, at, at]).fetchone()
            if row is not None:
                made.append(int(row[0]))
    return made


def migration(db: Database) -> None:
    """The endpoints and their deliveries (migrations.py lists it; both backends)."""
    ident = ("INTEGER PRIMARY KEY AUTOINCREMENT" if db.dialect == "sqlite"
             else "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
    db.execute("""
        CREATE TABLE webhook_endpoints (
            id TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            secret TEXT NOT NULL,
            events TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            removed_at DOUBLE PRECISION
        )""")
    db.execute(f"""
        CREATE TABLE webhook_deliveries (
            id {ident},
            endpoint_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            body TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
            attempts BIGINT NOT NULL DEFAULT 0,
            next_at DOUBLE PRECISION NOT NULL,
            last_status BIGINT,
            last_error TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            UNIQUE (endpoint_id, event_id)
        )""")
    db.execute("CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_at)")
    db.execute("CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id)")
    db.execute("CREATE INDEX webhook_deliveries_updated ON webhook_deliveries (updated_at)")


__all__ = ["MIGRATION", "STATES", "DeliveryRow", "EndpointRow", "Event", "Events", "WebhookStore", "migration",
           "record_events"]
