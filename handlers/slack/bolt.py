"""The Bolt ``AsyncApp`` our listeners hang on: our authorize, retries acked, no OAuth mode.

Bolt runs with ``process_before_response=True``: the HTTP answer goes out as soon as a listener
returns, with no listener pool, no extra task per request and none of the 10 ms polling Bolt does
otherwise while it waits for ``ack()``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from handlers.slack.deliver import fix_proxy

log = logging.getLogger("minpcode.slack")

Authorize = Callable[[str | None, str | None, str | None], Awaitable[AuthorizeResult | None]]

# Bolt reads these from the process environment by itself: the two OAuth ones silently switch it to
# OAuth mode (a slack_bolt fact: see AsyncApp.__init__ in
# https://docs.slack.dev/tools/bolt-python/reference/app/async_app.html), the token one only earns a
# warning next to our own client. Our settings come from bot.config; these names are hidden from Bolt
# while it is built, not read as configuration.
_BOLT_READS = ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")


@contextlib.contextmanager
def _hidden_from_bolt() -> Iterator[set[str]]:
    hidden = {k: os.environ.pop(k) for k in _BOLT_READS if k in os.environ}
    try:
        yield set(hidden)
    finally:
        os.environ.update(hidden)


def quiet_bolt() -> None:
    """Bolt logs a failed verification with the whole body at INFO (100 MB of log for a 100 MB body);
    our gate logs its own one-line reasons, so Bolt and the SDK speak only from WARNING up."""
    for name in ("slack_bolt", "slack_sdk"):
        logging.getLogger(name).setLevel(logging.WARNING)


def build_bolt_app(authorize: Authorize, signing_secret: str | None, api_url: str) -> AsyncApp:
    async def authorize_listener(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> Any:
        # a plain function: Bolt passes arguments by the names it finds (a bound method shows "self")
        return await authorize(enterprise_id, team_id, user_id)

    quiet_bolt()
    with _hidden_from_bolt() as hidden:
        if {"SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"} <= hidden:
            log.warning("Slack: SLACK_CLIENT_ID/SLACK_CLIENT_SECRET are ignored (minpcode is a single-workspace app)")
        app = AsyncApp(
            client=fix_proxy(AsyncWebClient(base_url=api_url), api_url),
            signing_secret=signing_secret or "",
            request_verification_enabled=bool(signing_secret),
            authorize=authorize_listener,
            before_authorize=skip_retries,
            process_before_response=True,  # listeners only ack and spawn: answer as they return
            raise_error_for_unhandled_request=False,
        )
    app.error(bad_payload)
    return app


async def bad_payload(error: Exception, body: dict[str, Any]) -> BoltResponse:
    """A listener that could not read a signed payload (a shape the gate let through): 400, never 500."""
    log.warning("slack payload could not be read (%s); answered 400", type(error).__name__)
    return BoltResponse(status=400, body="")


# The events whose listeners remember the event id (the outbox's seen memory, handlers/slack/promises.py):
# a retry of one of them is let through, so a first delivery that never reached us is still answered.
DEDUPED_EVENTS = frozenset({"message", "app_mention"})


async def skip_retries(req: AsyncBoltRequest, resp: BoltResponse,
                       next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
    """Runs after the signature check: a retry is acknowledged and nothing runs twice.

    Slack retries an event it saw no 2xx for within 3 s (https://docs.slack.dev/apis/events-api/): when
    the first delivery did reach us it was acked already, when it did not only the retry carries it. The
    events in :data:`DEDUPED_EVENTS` therefore go on to their listeners, which drop an id seen before."""
    retry = (req.headers.get("x-slack-retry-num") or ["0"])[0]
    body = req.body if isinstance(req.body, dict) else {}
    event = body.get("event") if body.get("type") == "event_callback" and body.get("event_id") else None
    if isinstance(event, dict) and event.get("type") in DEDUPED_EVENTS:
        return await next()
    if retry.strip() not in ("", "0"):  # Socket Mode says 0 on a first delivery
        reason = (req.headers.get("x-slack-retry-reason") or [""])[0]
        log.info("Slack retry %s (%s) acknowledged without running again", retry, reason)
        return BoltResponse(status=200, body="")
    return await next()


__all__ = ["DEDUPED_EVENTS", "bad_payload", "build_bolt_app", "quiet_bolt", "skip_retries"]
