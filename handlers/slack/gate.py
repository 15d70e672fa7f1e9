"""What every request to ``POST /slack/events`` passes before Bolt sees it: bounded, verified, then parsed.

Bolt reads the whole body and parses it before it checks the signature, so an unsigned 100 MB body
or ``payload=%7Bx`` reached its parser (and its INFO log line) first. Here the order is:

1. read at most :data:`MAX_BODY` bytes (a declared or streamed excess is answered 413, unread);
2. check ``X-Slack-Request-Timestamp`` (digits, within Slack's 5 minutes) and ``X-Slack-Signature``
   (HMAC-SHA256 of ``v0:<ts>:<body>``, compared in constant time): 401 otherwise;
3. parse: a body that is not UTF-8, not a form or JSON object, or whose ``payload`` is not a JSON
   object is a 400 — signed or not, a parse error is never a 500.

Log lines name the reason and the peer only, never the body.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any

from slack_bolt.adapter.starlette.async_handler import to_async_bolt_request
from slack_bolt.async_app import AsyncBoltRequest
from slack_bolt.request.async_internals import build_async_context
from starlette.requests import Request
from starlette.responses import JSONResponse

from bot.redact import escape
from handlers.http import BodyTooLarge, read_limited
from handlers.slack import parse

log = logging.getLogger("minpcode.slack")

MAX_BODY = 1024 * 1024
"""1 MiB. Slack's own payloads are far below it: a slash command is under 2 KB, and the largest
interactivity payload we receive (a view_submission carrying the whole modal, at most 100 blocks with
their state) stays in the low hundreds of KB even url-encoded. Anything bigger is not Slack."""
MAX_SKEW = 300
"""Slack's replay window: a signed timestamp more than 5 minutes off our clock is refused."""


UNREADABLE = (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError, OverflowError)
"""What reading a payload of an unexpected shape raises (json, urllib and Bolt's own readers)."""


class Rejected(Exception):
    """The request is refused before Bolt sees it; ``response`` is the answer."""

    def __init__(self, status: int, error: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason

    @property
    def response(self) -> JSONResponse:
        return JSONResponse({"ok": False, "error": self.error}, status_code=self.status)


def signature_ok(secret: str, body: bytes, timestamp: str, signature: str, now: float) -> bool:
    """Slack's v0 signature over ``body``, with a timestamp inside the replay window."""
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return False
    if abs(now - int(timestamp)) > MAX_SKEW:
        return False
    expected = "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body,
                                hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


async def admit(request: Request, secret: str | None, *, clock: Callable[[], float] = time.time) -> AsyncBoltRequest:
    """The verified, parsed request for Bolt, or :class:`Rejected` (413, 401 or 400)."""
    try:
        body = await read_limited(request, MAX_BODY)
    except BodyTooLarge:
        raise Rejected(413, "body_too_large", f"body over {MAX_BODY} bytes") from None
    if secret:
        headers = request.headers
        if not signature_ok(secret, body, headers.get("x-slack-request-timestamp", ""),
                            headers.get("x-slack-signature", ""), clock()):
            raise Rejected(401, "invalid_signature", "bad or missing signature or timestamp")
    try:
        bolt_request = to_async_bolt_request(request, body)
        if not bolt_request.body:
            fixed = parse.slash_body_from_raw(bolt_request.raw_body)
            if fixed is not None:
                bolt_request.body = fixed
                bolt_request.context = build_async_context(bolt_request.context, fixed)
        check_shape(bolt_request.body)
    except Rejected:
        raise
    except UNREADABLE as exc:
        raise Rejected(400, "bad_request", f"unreadable body ({type(exc).__name__})") from None
    return bolt_request


_OBJECTS = ("user", "team", "channel", "view", "container", "enterprise")


def check_shape(body: Any) -> None:
    """The envelope our listeners read: an object, and where Slack sends objects, objects."""
    if not isinstance(body, dict) or not body:
        raise Rejected(400, "bad_request", "not a Slack payload")
    for name in _OBJECTS:
        if body.get(name) is not None and not isinstance(body[name], dict):
            raise Rejected(400, "bad_request", f"{name} is not an object")
    if "actions" in body and not (isinstance(body["actions"], list)
                                  and all(isinstance(a, dict) for a in body["actions"])):
        raise Rejected(400, "bad_request", "actions is not a list of objects")
    view = body.get("view") or {}
    state = view.get("state")
    if state is not None:
        values = state.get("values") if isinstance(state, dict) else None
        if not isinstance(values, dict) or not all(
                isinstance(block, dict) and all(isinstance(v, dict) for v in block.values())
                for block in values.values()):
            raise Rejected(400, "bad_request", "view state is not an object of objects")


def log_rejection(request: Request, rejected: Rejected) -> None:
    peer = request.client.host if request.client else "?"
    log.warning("slack request rejected with %d from %s: %s", rejected.status, escape(peer), rejected.reason)


__all__ = ["MAX_BODY", "UNREADABLE", "MAX_SKEW", "Rejected", "admit", "check_shape", "log_rejection", "signature_ok"]
