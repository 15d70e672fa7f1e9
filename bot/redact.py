"""Secrets out of log lines (a leaf: imports nothing of ours).

WeChat and WeCom carry tokens and secrets in the query string, and httpx logs every URL at INFO,
so the loggers that print request URLs get a filter that masks those values.
"""

from __future__ import annotations

import logging
import re

import httpx

_SECRET_PARAMS = re.compile(r"((?:access_token|corpsecret|secret|key)=)[^&\s\"']+")


def redact(text: str) -> str:
    """``text`` with the values of ``access_token``, ``corpsecret``, ``secret`` and ``key`` masked."""
    return _SECRET_PARAMS.sub(r"\1***", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(redact(str(a)) if isinstance(a, httpx.URL | str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def guard_logs() -> None:
    """Install the redaction on the loggers that print request URLs (idempotent)."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


__all__ = ["RedactSecrets", "guard_logs", "redact"]
