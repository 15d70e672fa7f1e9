"""Logging: one line per event, a request id on every line, no secret and no forged line.

    from bot import logs
    logs.setup(settings.minpcode_log_level, settings.minpcode_log_format,
               secrets=[s.get_secret_value() for s in (settings.wechat_secret, ...) if s])
    with logs.request_id():            # or logs.request_id("slack-3f9a…") to carry one in
        log.info("made %s", code_id)   # → ... [rid=8c1e…] made q3x8…

``MINPCODE_LOG_FORMAT=json`` writes JSON lines (``ts``, ``level``, ``logger``, ``request_id``, ``msg``,
``exc``); ``text`` (the default) writes ``time LEVEL logger [rid=…] message``. Every message is
redacted (:func:`redact`: tokens and secrets in URLs, headers, JSON and Slack token shapes, plus the
exact secret values given to :func:`setup`) and, in text, escaped: a newline or other control
character a person typed shows as ``\\n``/``\\x1b`` and can never start a line of its own. Tracebacks
are kept, escaped onto the same line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets as _random
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.redact import RedactSecrets, escape, redact, remember

__all__ = ["RedactSecrets", "RequestIdMiddleware", "current_request_id", "escape", "is_setup", "redact", "request_id",
           "setup"]

_request_id: ContextVar[str | None] = ContextVar("minpcode_request_id", default=None)

def current_request_id() -> str | None:
    return _request_id.get()


@contextlib.contextmanager
def request_id(value: str | None = None) -> Iterator[str]:
    """Give every log line inside the block this id (a new random one by default)."""
    rid = value or _random.token_hex(6)
    token = _request_id.set(rid)
    try:
        yield rid
    finally:
        _request_id.reset(token)


_GIVEN_ID = re.compile(r"[A-Za-z0-9._-]{6,64}")
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


access_log = logging.getLogger("minpcode.access")
QUIET_PATHS = ("/api/scenes/", "/q/")


class RequestIdMiddleware:
    """ASGI: every HTTP request runs under a request id — a well-formed ``X-Request-Id`` it came with,
    else a new one — and the answer carries it back. Work the request spawns (tasks copy contextvars,
    the job queue carries it) logs under the same id, so one grep follows a request to the upstream.

    It also writes the access line (``minpcode.access``: client, method, path, status, time to the
    answer's start), in place of uvicorn's: never the query string (a scan's ``visitor`` id, the words
    of a search are no one's business in a log), and none for an answered scan of a printed code
    (``/api/scenes/``, ``/q/``): a print run brings thousands a second, each counted in the scans table
    and /metrics, and uvicorn's line alone cost a third of a scan's time. Their 4xx and 5xx still log."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers") or ():
            if name == b"x-request-id":
                given = value
                break
        started = time.perf_counter()
        with request_id(_given_id(given)) as rid:
            async def send_with_id(message: MutableMapping[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
                    status = message["status"]
                    path = scope["path"]
                    if status >= 400 or not path.startswith(QUIET_PATHS):
                        client = scope.get("client")
                        access_log.info('%s "%s %s" %d %.1f ms', client[0] if client else "-", scope["method"],
                                        path, status, (time.perf_counter() - started) * 1000)
                await send(message)

            await self.app(scope, receive, send_with_id)


def _given_id(raw: bytes) -> str | None:
    given = raw.decode("latin-1")
    return given if given and _GIVEN_ID.fullmatch(given) else None


class _Formatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        message = redact(record.getMessage())
        failure = redact(self.formatException(record.exc_info)) if record.exc_info else None
        rid = getattr(record, "request_id", None) or _request_id.get()
        when = datetime.fromtimestamp(record.created, UTC)
        if self.as_json:
            line: dict[str, Any] = {"ts": when.isoformat(timespec="milliseconds"), "level": record.levelname,
                                    "logger": record.name, "request_id": rid, "msg": message}
            if failure:
                line["exc"] = failure
            # JSON escapes control characters; these three it leaves, and some readers break lines on them.
            text = json.dumps(line, ensure_ascii=False)
            return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\x85", "\\u0085")
        text = f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z {record.levelname} {record.name} " \
               f"[rid={rid or '-'}] {escape(message)}"
        return text + (f" | {escape(failure)}" if failure else "")


class _Stderr(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is now (test runners swap it), like logging's last resort."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def is_setup() -> bool:
    """Whether :func:`setup` has given the root logger our handler."""
    return any(isinstance(h, _Stderr) for h in logging.getLogger().handlers)


def setup(level: str | int = "INFO", fmt: str = "text", *, secrets: Iterable[str] = ()) -> logging.Handler:
    """Send every log record to stderr through our formatter; calling it again replaces the handler.

    ``secrets``: exact values (the configured tokens) masked wherever they appear; shorter than 6
    characters they are ignored, so no common word is masked.
    """
    remember(secrets)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Stderr)]:
        root.removeHandler(handler)
    handler = _Stderr()
    handler.setFormatter(_Formatter(as_json=fmt.lower() == "json"))
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
