"""What a batch is, as every front-end sees it (pydantic, no behaviour): a leaf storage may import."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from bot.models import Requester


class BatchStatus(StrEnum):
    DRAFT = "draft"  # dry run done, waiting for the person to start or cancel it
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"


class RowStatus(StrEnum):
    INVALID = "invalid"  # fails the field rules: never sent upstream
    READY = "ready"  # valid, not yet submitted
    QUEUED = "queued"  # a code record exists (``code_id``) and is being made
    DONE = "done"  # made by this batch
    REUSED = "reused"  # an identical live code already existed (in history or earlier in the sheet)
    FAILED = "failed"  # the upstream refused or failed
    SKIPPED = "skipped"  # not made: the batch was cancelled first, or its A/C rows would cross the cap

    @property
    def final(self) -> bool:
        return self not in (RowStatus.READY, RowStatus.QUEUED)


class BatchOrigin(BaseModel):
    """Who started a batch and where; chat ids are opaque strings the core never interprets."""

    user_id: str
    user_name: str | None = None
    chat: str = "cli"  # cli | slack | wecom | console | api
    channel_id: str | None = None  # where it was started and its results go: Slack channel / DM, WeCom conversation
    thread_id: str | None = None  # the thread in ``channel_id`` its results go to (Slack thread ts, ...)
    message_id: str | None = None  # the message to update in place with progress
    # where ``message_id`` is when that is not ``channel_id``: a Slack batch started in a channel keeps its
    # dry run and progress in the starter's DM and posts its results in the channel
    message_channel_id: str | None = None
    lang: str = "zh"
    # The front-end that reports the batch (its runner and upload intake in bot/batch/engine.py) when the chat
    # has more than one: "wecom_aibot" beside the self-built app's "wecom". The person stays ``chat:user_id``
    # whichever front-end they wrote to; a batch stored before this field (None) is the chat's own front-end's.
    front: str | None = None

    @property
    def front_end(self) -> str:
        """The name a front-end registers under to run and report this batch (:meth:`BatchEngine.runner_for`)."""
        return self.front or self.chat

    @property
    def requester(self) -> Requester:
        """The person the rows are made for (their codes, their audit lines)."""
        return Requester(chat=self.chat, user_id=self.user_id, user_name=self.user_name, channel_id=self.channel_id,
                         lang="en" if self.lang == "en" else "zh")

    @property
    def message_channel(self) -> str | None:
        """The conversation of ``message_id`` (the dry run, progress)."""
        return self.message_channel_id or self.channel_id

    @property
    def key(self) -> str:
        """``front-end:id``, as codes and admins name a person."""
        return self.requester.key


class BatchRow(BaseModel):
    batch_id: str
    line: int
    fields: dict[str, Any]
    status: RowStatus
    code_id: str | None = None
    poster_id: str | None = None  # the row's poster, once made (rows with a ``poster`` field)
    error: str | None = None  # bilingual, Chinese line then English line
    attempts: int = 0


class Batch(BaseModel):
    id: str
    origin: BatchOrigin
    filename: str
    sha256: str
    encoding: str
    status: BatchStatus
    total: int
    counts: dict[str, int] = {}  # RowStatus value -> rows
    posters: dict[str, int] = {}  # "wanted" / "made" / "failed" -> rows asking for a poster
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None

    @property
    def left(self) -> int:
        return self.counts.get(RowStatus.READY.value, 0) + self.counts.get(RowStatus.QUEUED.value, 0)


__all__ = ["Batch", "BatchOrigin", "BatchRow", "BatchStatus", "RowStatus"]
