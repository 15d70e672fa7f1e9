"""What the core needs from the outside, as small protocols the adapters implement.

    FrontEnd   something ``minpcode serve`` mounts: routes on the one ASGI app, started and stopped
               in its lifespan (Slack, WeCom, the HTTP API, the summary scheduler); a route on every
               scan's path is a :class:`HotRoute`
    Announcer  a place a summary is posted to (a Slack channel, a WeCom group robot); the adapter
               renders the summary in its own format and within its own limits
    Preflight  one configured part checked live by ``minpcode doctor`` (bot/doctor.py): rows of
               :class:`Check`, read-only calls only (no quota spent, no message posted)

The core composes neither: the process (bot/server.py) builds them from the settings and hands
them in. An announcer posts in named *steps* (``slack.message``, ``wecom.image`` ...); each step
that succeeds is reported through ``on_step`` at once and steps in ``done`` are skipped, so a retry
never posts a part twice (bot/announce.py keeps the books).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel
from starlette.routing import BaseRoute, Route

from bot.errors import MinpcodeError
from bot.summary import Summary
from bot.text import Lang, Text

OnStep = Callable[[str], None]


class HotRoute(Route):
    """A route the app tries before its middleware stack and router (bot/server.py ``App``): for an
    endpoint on every scan's path that answers its own errors. Request ids and access lines still apply;
    Starlette's error pages and exception handlers, a fifth of a scan's time, do not."""


@runtime_checkable
class FrontEnd(Protocol):
    """One front-end of ``minpcode serve``."""

    name: str

    def routes(self) -> list[BaseRoute]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Announcement(BaseModel):
    """A summary to post, with what every place shares: the language and the chart (drawn once)."""

    summary: Summary
    lang: Lang = "zh"
    png: bytes | None = None        # the chart; None when there is nothing to draw
    filename: str = "minpcode-summary.png"
    title: str = "minpcode summary"


class PostOutcome(BaseModel):
    """What posting to one place did."""

    destination: str                # the announcer's name: "slack", "wecom"
    where: str                      # a person-readable place, never a secret
    ok: bool
    steps: list[str] = []           # steps done by this call
    error: str | None = None
    retryable: bool = True          # False when a retry cannot help (bad token, unknown channel or key)

    def describe(self, lang: str = "zh") -> str:
        if lang == "zh":
            return f"已发到 {self.where}。" if self.ok else f"发到 {self.where} 失败：{self.error}"
        return f"Posted to {self.where}." if self.ok else f"Could not post to {self.where}: {self.error}"


class PostError(MinpcodeError):
    """One step of a post failed; ``retryable`` is False when a retry cannot fix it.

    Adapters raise it from their SDK's errors at their own boundary; ``detail`` is the short,
    secret-free reason shown in outcomes and logs.
    """

    code_name = "post_failed"

    def __init__(self, detail: str, *, retryable: bool = True) -> None:
        super().__init__(f"发送失败：{detail}", f"Posting failed: {detail}")
        self.detail = detail
        self.retryable = retryable

    def __str__(self) -> str:
        return self.detail


@runtime_checkable
class Announcer(Protocol):
    """A place summaries are posted to."""

    name: str
    where: str

    async def announce(self, announcement: Announcement, *, done: set[str], on_step: OnStep) -> None:
        """Post every step not in ``done``, calling ``on_step(step)`` after each; raise PostError."""
        ...

    async def check(self) -> str | None:
        """Look up where summaries go, once, at start: what is wrong (for the log), or None."""
        ...


CheckStatus = Literal["ok", "failed", "skipped", "warning"]  # a warning does not fail doctor


class Check(BaseModel):
    """One row of ``minpcode doctor``: what was checked, what was found, and what to change.

    ``detail`` and ``fix`` never hold a secret; ``setting`` names the variable to change when it failed.
    """

    part: str                       # "wechat", "slack" ...
    name: str                       # "token", "scopes", "summary channel" ...
    status: CheckStatus
    detail: Text
    fix: Text | None = None
    setting: str | None = None

    @classmethod
    def of(cls, part: str, name: str, status: CheckStatus, zh: str, en: str, *,
           fix: tuple[str, str] | None = None, setting: str | None = None) -> Check:
        """A row from plain strings (``fix``: what to change, Chinese and English)."""
        return cls(part=part, name=name, status=status, detail=Text(zh=zh, en=en),
                   fix=Text(zh=fix[0], en=fix[1]) if fix else None, setting=setting)


@runtime_checkable
class Preflight(Protocol):
    """A part ``minpcode doctor`` checks; a part that is not configured answers one ``skipped`` row."""

    name: str

    async def checks(self) -> list[Check]: ...


__all__ = ["Announcement", "Announcer", "Check", "CheckStatus", "FrontEnd", "OnStep", "PostError", "PostOutcome",
           "Preflight"]
