"""The events a webhook may ask for, and the stable shape of each delivery's body (docs/webhooks.md).

    {"id": "evt_…", "type": "code.made", "created_at": "2026-12-07T23:40:00Z", "data": {"code": {…}}}

``id`` is the same on every attempt of one event to one endpoint: a receiver dedupes on it. Events that could
be noticed twice (a scan milestone, a quota level, a batch finishing) have an id made from what they are about,
so the second notice records nothing (storage/webhooks.py: one row per endpoint and event id).

A code is described by its public fields only: never a secret, a token, a visitor's id or the upstream's raw
answer.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

from bot import links
from bot.models import CodeRecord

CODE_MADE = "code.made"
CODE_FAILED = "code.failed"
BATCH_FINISHED = "batch.finished"
LIVE_REPOINTED = "live.repointed"
LIVE_PAUSED = "live.paused"
LIVE_RESUMED = "live.resumed"
LIVE_MILESTONE = "live.scans_milestone"
QUOTA_THRESHOLD = "quota.threshold"
PING = "ping"

EVENT_TYPES: tuple[str, ...] = (CODE_MADE, CODE_FAILED, BATCH_FINISHED, LIVE_REPOINTED, LIVE_PAUSED, LIVE_RESUMED,
                                LIVE_MILESTONE, QUOTA_THRESHOLD)
# A live code's real scans (test scans left out) passing 100, 1,000, 10,000 …: one event each.
MILESTONES: tuple[int, ...] = tuple(10 ** n for n in range(2, 10))
# The A/C lifetime cap of a mini program (bot/quota.py) crossing these shares: one event each.
QUOTA_LEVELS: tuple[int, ...] = (80, 95)


def new_id() -> str:
    return "evt_" + secrets.token_hex(12)


def _time(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def body(event_id: str, event_type: str, data: dict[str, Any], at: datetime | None = None) -> str:
    """The JSON every delivery of this event carries, byte for byte (the signature covers these bytes)."""
    return json.dumps({"id": event_id, "type": event_type, "created_at": _time(at or datetime.now(UTC)),
                       "data": data}, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def code(record: CodeRecord, public_url: str) -> dict[str, Any]:
    """A code's public fields, as ``minpcode show --json`` names them."""
    error = None
    if record.error_code:
        error = {"code": record.error_code, "zh": record.error_zh, "en": record.error_en}
    return {
        "id": record.id, "type": record.type.value, "provider": record.provider.value, "status": record.status.value,
        "app": record.app, "page": record.page, "scene": record.scene, "name": record.name,
        "campaign": record.campaign, "channel": record.channel, "link": record.link,
        "tracking_url": record.tracking_url,
        "image_url": links.code_image_url(public_url, record.id) if record.image_sha256 else None,
        "expires_at": _time(record.expires_at), "error": error, "requested_by": record.requested_by,
        "created_at": _time(record.created_at), "updated_at": _time(record.updated_at),
    }


def crossed(before: int, after: int, marks: tuple[int, ...]) -> list[int]:
    """The marks in ``(before, after]``: what a count passed going from ``before`` to ``after``."""
    return [m for m in marks if before < m <= after]


__all__ = ["BATCH_FINISHED", "CODE_FAILED", "CODE_MADE", "EVENT_TYPES", "LIVE_MILESTONE", "LIVE_PAUSED",
           "LIVE_REPOINTED", "LIVE_RESUMED", "MILESTONES", "PING", "QUOTA_LEVELS", "QUOTA_THRESHOLD", "body", "code",
           "crossed", "new_id"]
