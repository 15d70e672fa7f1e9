"""Who goes first when work waits: a person waiting for one code before the rows of a batch.

A leaf: the job runner sets :data:`CURRENT` while it runs a job, and the upstream rate limiter
reads it, so a batch row never takes the slot an interactive request is waiting for.
"""

from __future__ import annotations

import contextvars
from enum import IntEnum


class Priority(IntEnum):
    INTERACTIVE = 0
    BATCH = 1


CURRENT: contextvars.ContextVar[Priority] = contextvars.ContextVar("minpcode_priority", default=Priority.INTERACTIVE)

__all__ = ["CURRENT", "Priority"]
