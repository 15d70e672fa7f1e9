"""Slack work acked now and done later ("working on it…"), kept in the durable outbox until answered.

A text command (``/minpcode …``, a text in the bot's DM, an @mention), ``bulk`` with its rows or with a
sheet dropped in the DM (answered by the dry run with Start and Cancel) or a form submission is saved
(what to do, and who asked where: team, person, channel, thread) before the listener returns, so before
the HTTP ack; it is done and answered from the outbox, and what a crash interrupted is done at the next
start. The ``response_url`` is not saved: it is a capability good for 30 minutes, and an answer after a
restart goes by ephemeral message or DM.

An Events API delivery is saved with its ``event_id`` in the same transaction (the outbox's seen
memory): Slack delivers an event again when it saw no 2xx within 3 s, up to three times over about
five minutes (https://docs.slack.dev/apis/events-api/#retries), and the same id is then acked without
running twice, by any process on the data directory and after a restart too.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from dataclasses import asdict, replace
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from bot.errors import UsageError
from bot.fields import CodeAsk
from bot.outbox import Outbox
from handlers import grammar
from handlers.slack.parse import Origin, saved_ask

log = logging.getLogger("minpcode.slack")

Kind = Literal["run_text", "make_code", "bulk_text", "bulk_files"]
EVENT_WINDOW = 3600.0  # seconds an event id is remembered: well past Slack's last retry (about 5 minutes)


class _Bulk(Protocol):
    async def from_text(self, rows: str, origin: Origin) -> None: ...
    async def from_form(self, files: list[dict[str, Any]], rows: str, defaults: dict[str, str],
                        origin: Origin) -> None: ...


class Worker(Protocol):
    outbox: Outbox

    @property
    def batches(self) -> _Bulk: ...

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str, *, urgent: bool = False) -> Any: ...
    async def run_command(self, parsed: grammar.Command | UsageError, origin: Origin) -> None: ...
    async def make_code(self, ask: CodeAsk, origin: Origin) -> None: ...


def promise(bot: Worker, kind: Kind, origin: Origin, value: Any, what: str, *, seen: str | None = None) -> bool:
    """Save the work and who to answer, then do it after the ack; False (nothing saved, nothing done) when
    ``seen`` (an event's id) was seen already."""
    payload = {"origin": asdict(replace(origin, response_url=None)), "value": value}
    row = bot.outbox.accept("slack", kind, payload, seen=seen, ttl=EVENT_WINDOW)
    if row is None:
        return False
    bot.spawn(bot.outbox.deliver(row, lambda: _run(bot, kind, origin, value)), what)
    return True


def resume(bot: Worker) -> int:
    """Do what a previous run acked and did not answer; returns how many."""
    owed = bot.outbox.pending("slack")
    for row, kind, payload in owed:
        origin = Origin(**payload["origin"])
        value = payload["value"]
        bot.spawn(bot.outbox.deliver(row, lambda k=kind, o=origin, v=value: _run(bot, k, o, v)),  # type: ignore[misc]
                  f"answering {kind} acked before a restart")
    return len(owed)


def parsed_value(parsed: grammar.Command | UsageError) -> dict[str, Any]:
    """A text command as the listener parsed it, saved as it is so the work after the ack does not parse again."""
    if isinstance(parsed, UsageError):
        return {"usage": parsed.usage, "zh": parsed.reason.zh, "en": parsed.reason.en}
    return {"command": parsed.model_dump()}


def _parsed(value: Any) -> grammar.Command | UsageError:
    if isinstance(value, str):  # saved by a version that kept the text: parsed now, once
        try:
            return grammar.parse(value)
        except UsageError as exc:
            return exc
    if "command" in value:
        return grammar.Command.model_validate(value["command"])
    return UsageError(str(value["usage"]), zh=str(value["zh"]), en=str(value["en"]))


async def _run(bot: Worker, kind: str, origin: Origin, value: Any) -> None:
    if kind == "run_text":
        await bot.run_command(_parsed(value), origin)
    elif kind == "make_code":
        await bot.make_code(saved_ask(dict(value)), origin)
    elif kind == "bulk_text":
        await bot.batches.from_text(str(value), origin)
    elif kind == "bulk_files":
        await bot.batches.from_form([f for f in value if isinstance(f, dict)], "", {}, origin)
    else:
        log.warning("slack outbox: unknown kind %s dropped", kind)


def slack_host(url: str | None, api_url: str) -> bool:
    """Whether ``url`` may be answered: https on slack.com (or a subdomain), or SLACK_API_URL's own host."""
    if not url:
        return False
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    ours = (urlsplit(api_url).hostname or "").lower()
    if host and host == ours:
        return True
    return parts.scheme == "https" and (host == "slack.com" or host.endswith(".slack.com"))


__all__ = ["EVENT_WINDOW", "Kind", "parsed_value", "promise", "resume", "slack_host"]
