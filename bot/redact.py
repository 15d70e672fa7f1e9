"""Secrets out of log lines, and log lines that cannot be forged (a leaf: imports nothing of ours).

WeChat and WeCom carry tokens and secrets in the query string, httpx logs every URL at INFO, and
people type newlines: every line we write is redacted (:func:`redact`) and escaped (:func:`escape`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

_PATTERNS = (
    (re.compile(r"((?:access_token|corpsecret|secret|key|token|password)=)[^&\s\"']+"), r"\1***"),
    (re.compile(r"(\"(?:access_token|secret|corpsecret|token|password|app_secret|client_secret)\"\s*:\s*\")"
                r"[^\"]*"), r"\1***"),
    (re.compile(r"((?:authorization|x-api-key|x-client-id)['\"]?\s*[:=]\s*['\"]?)(?:bearer\s+)?[^'\"\s,}]+",
                re.IGNORECASE), r"\1***"),
    (re.compile(r"\b(Bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1***"),
    (re.compile(r"\bx(?:ox[abeoprs]|app)-[A-Za-z0-9-]+"), "xox*-***"),
    # The signed batch links (bot/links.py's UPLOAD_ROUTE and DOWNLOAD_ROUTE) work for anyone holding them
    # until they expire, and an upload link's payload names the person: the route stays, the token goes.
    (re.compile(r"(/batches/upload/)[^/\s\"'?#]+"), r"\1***"),
    (re.compile(r"(/batches/)[^/\s\"'?#]+(\.zip)"), r"\1***\2"),
)
_known: set[str] = set()
_QUERY_VALUE = re.compile(r"=[^&#]*")


def redact_url(url: str) -> str:
    """``url`` as it may be shown: every query value and any user name or password masked, the rest whole.

    A receiver's URL may carry its own token (``?token=…``, ``?sig=…``, ``https://user:pass@…``) under a name
    :func:`redact`'s patterns do not know, so here every value goes, whatever its name."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority_end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority, tail = rest[:authority_end], rest[authority_end:]
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    path, qmark, query = tail.partition("?")
    if qmark:
        query, hashmark, fragment = query.partition("#")
        # a part with no "=" may be the token itself (``?3f9a…``): masked whole
        query = "&".join(_QUERY_VALUE.sub("=***", part) if "=" in part else ("***" if part else part)
                         for part in query.split("&")) + hashmark + fragment
    return f"{scheme}{sep}{authority}{path}{qmark}{query}"


def redact(text: str) -> str:
    """``text`` with tokens, keys and secrets masked (query values, headers, JSON fields, Slack tokens)."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    for value in _known:
        text = text.replace(value, "***")
    return text


_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029\\]")
_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def escape(text: str) -> str:
    """One line, always: backslashes doubled, control characters as ``\\n``, ``\\r``, ``\\t`` or ``\\xNN``."""
    return _CONTROL.sub(_escaped, text)


class RedactSecrets(logging.Filter):
    """For a logger of someone else's (httpx) whose records may never reach our handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(redact(str(a)) if isinstance(a, str) or type(a).__name__ == "URL" else a
                                for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True



def remember(values: Iterable[str]) -> None:
    """Mask these exact secret values too (the configured tokens and keys; short values are ignored)."""
    _known.update(v for v in values if len(v) >= 6)


def guard_logs() -> None:
    """Install the redaction on the loggers that print request URLs (idempotent)."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


__all__ = ["RedactSecrets", "escape", "guard_logs", "redact", "redact_url", "remember"]
