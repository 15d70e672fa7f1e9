"""The Slack adapter's error boundary: what a failed Web API call becomes before anyone sees it.

slack_sdk and aiohttp raise their own exceptions; inside handlers/slack they are caught as
:data:`SLACK_FAILURES` and named by :func:`slack_error` (Slack's own error code such as
``not_in_channel``, or a stable name of ours), so no library class name reaches a person or the core.
:class:`SlackFailure` carries that name under our one error root.
"""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.errors import MinpcodeError

# Every way a Web API call fails: Slack refused it, the client gave up, or the network did.
SLACK_FAILURES: tuple[type[BaseException], ...] = (SlackApiError, SlackClientError, aiohttp.ClientError, OSError,
                                                   TimeoutError)


def slack_error(exc: BaseException) -> str:
    """Slack's error code for a refused call; ``timeout`` or ``unreachable`` when Slack did not answer."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or exc.response.status_code)
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "unreachable"


class SlackFailure(MinpcodeError):
    """A Slack Web API call failed; ``error_code`` is :func:`slack_error`'s name for it."""

    code_name = "slack"

    def __init__(self, code: str) -> None:
        super().__init__(f"Slack 没有完成请求（{code}）。", f"Slack did not complete the request ({code}).")
        self.code = code

    @property
    def error_code(self) -> str:
        return self.code

    @classmethod
    def of(cls, exc: BaseException) -> SlackFailure:
        return cls(slack_error(exc))


__all__ = ["SLACK_FAILURES", "SlackFailure", "slack_error"]
