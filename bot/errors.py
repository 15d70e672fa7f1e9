"""Every error minpcode raises, under one root.

    MinpcodeError                    bilingual text: ``zh``, ``en``
    ├── InputError                   the person can fix it (exit code 2)
    │   ├── FieldError               one field, named in ``field``
    │   ├── InvalidRequest           several FieldErrors at once (a form shows each beside its field)
    │   ├── UsageError               a text command that does not parse; carries the usage line
    │   ├── NotFound                 no such code / campaign / channel
    │   ├── PermissionDenied         only the creator or an admin may do this
    │   ├── NotConfigured            what was asked needs an upstream the settings do not configure
    │   └── OverBudget               work on a person's input overran its time or memory (bot/workers.py)
    ├── QuotaExhausted               our own ledger refuses a new A/C code
    ├── Unexpected                   a bug of ours answered a request (HTTP 500); names the request id
    ├── StorageUnavailable           the database cannot keep writes (file deleted under us, disk full); HTTP 503
    └── UpstreamError                WeChat or GrowingIO refused or failed (exit code 1)
        ├── TokenInvalid             40001 / 40014 / 42001: refresh once, retry once
        ├── ConfigError              wrong appid, secret, IP whitelist, token, client id
        ├── RateLimited              45009 / 45011 / 429; ``retry_after`` seconds when known
        ├── UpstreamQuotaExhausted   45029 (A+C lifetime cap), 85400 (permanent short links)
        ├── UpstreamBusy             -1, 5xx, timeouts, connection errors: retryable
        └── UpstreamRejected         the request itself was refused (page, scene, name, id ...)

Every error carries its bilingual ``message`` (a :class:`~bot.text.Text`) and a stable
``error_code``: the upstream's own code for upstream errors, else a fixed name of ours (never a
Python class name), which is what the history stores beside the message (``error_code``,
``error_zh``, ``error_en``).

This is the only root: every error class in ``bot/`` and ``storage/`` derives from it, and a front-end
maps its SDK's errors at its own boundary (tests/docs/test_architecture.py holds both). The emulators'
``WeChatError`` and ``GioError`` (bot/sandbox/) are outside on purpose: they stand for WeChat's and
GrowingIO's own answers, become HTTP responses at the emulator's edge, and reach our code only as
answers on the wire, which bot/upstream/ turns into this tree.
"""

from __future__ import annotations

from typing import Any

from bot.text import Text


class MinpcodeError(Exception):
    """Root of every minpcode error: a Chinese and an English sentence a person can act on."""

    code_name = "error"
    """The stable name stored as ``error_code`` (subclasses name themselves)."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(f"{zh}\n{en}")
        self.zh = zh
        self.en = en

    @property
    def message(self) -> Text:
        return Text(zh=self.zh, en=self.en)

    @property
    def error_code(self) -> str:
        return self.code_name

    def text(self, lang: str | None = "zh") -> str:
        """Both languages, the requested one first."""
        return self.message.render(lang)

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception pickling calls cls(*self.args), which our constructors do not take; a worker process
        # (bot/workers.py) hands its errors back pickled, so they are rebuilt from their attributes.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[MinpcodeError], args: tuple[Any, ...], state: dict[str, Any]) -> MinpcodeError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class InputError(MinpcodeError):
    """Bad input: nothing was sent upstream."""

    code_name = "invalid_input"


class FieldError(InputError):
    """One field breaks one rule."""

    code_name = "invalid_field"

    def __init__(self, field: str, zh: str, en: str) -> None:
        super().__init__(zh, en)
        self.field = field

    def __repr__(self) -> str:
        return f"FieldError(field={self.field!r}, en={self.en!r})"


class InvalidRequest(InputError):
    """Several field errors found together, so a form can show all of them at once."""

    code_name = "invalid_request"

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        zh = "；".join(f"{e.field}: {e.zh}" for e in errors)
        en = "; ".join(f"{e.field}: {e.en}" for e in errors)
        super().__init__(zh, en)

    def by_field(self) -> dict[str, FieldError]:
        return {e.field: e for e in self.errors}


class UsageError(InputError):
    """A text command that does not parse; ``usage`` is that command's usage line."""

    code_name = "usage"

    def __init__(self, usage: str, zh: str = "命令格式不对。", en: str = "That command is not well formed.") -> None:
        super().__init__(f"{zh} 用法：{usage}", f"{en} Usage: {usage}")
        self.usage = usage
        self.reason = Text(zh=zh, en=en)  # without the usage line, for answers that show it once


class NotFound(InputError):
    """No such code, campaign, channel or product; ``field`` names the form field when there is one."""

    code_name = "not_found"

    def __init__(self, zh: str, en: str, field: str | None = None) -> None:
        super().__init__(zh, en)
        self.field = field


class PermissionDenied(InputError):
    """The requester may not change this code."""

    code_name = "permission_denied"


class NotConfigured(InputError):
    """What was asked needs WeChat or GrowingIO and the settings lack them; ``missing`` names the settings.

    Refused before anything is recorded: a configuration gap is answered, never stored as a failed code.
    """

    code_name = "not_configured"

    def __init__(self, zh: str, en: str, missing: list[str], field: str = "via") -> None:
        super().__init__(zh, en)
        self.missing = missing
        self.field = field


class OverBudget(InputError):
    """Work on what a person sent (a sheet to read) overran its time or memory budget and was stopped."""

    code_name = "over_budget"


class QuotaExhausted(MinpcodeError):
    """Our ledger says the A+C lifetime cap of this mini program is reached."""

    code_name = "quota_exhausted"


class Unexpected(MinpcodeError):
    """A request met an error nobody anticipated (a bug of ours): what the person is told instead of a
    traceback, with the request id that finds the traceback in the log."""

    code_name = "internal"

    def __init__(self, request_id: str) -> None:
        super().__init__(f"服务器内部出错，已记录在日志中（请求编号 {request_id}）。请稍后再试，或把这个编号告诉管理员。",
                         f"Something went wrong on our side; it is in the log (request id {request_id}). "
                         f"Try again shortly, or give this id to an administrator.")
        self.request_id = request_id


class StorageUnavailable(MinpcodeError):
    """The database cannot keep what we would write: its file was deleted or replaced under the running
    process (writes are refused, since nothing would survive a restart, until an operator restores it), or
    its disk is full (until there is room again: storage/writes.py). ``cause`` names what happened in one
    word (``deleted``, ``replaced``, ``full``), for /readyz."""

    code_name = "storage_unavailable"

    def __init__(self, zh: str, en: str, cause: str) -> None:
        super().__init__(zh, en)
        self.cause = cause


class UpstreamError(MinpcodeError):
    """WeChat or GrowingIO refused or failed. ``provider`` is ``wechat`` or ``gio``."""

    retryable = False

    def __init__(self, provider: str, code: int | str | None, zh: str, en: str, raw: str = "") -> None:
        super().__init__(zh, en)
        self.provider = provider
        self.code = code
        self.raw = raw

    @property
    def error_code(self) -> str:
        """The upstream's own code (WeChat's errcode, GrowingIO's status or code) when it gave one."""
        return str(self.code) if self.code not in (None, "") else self.code_name

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self.provider!r}, code={self.code!r})"


class TokenInvalid(UpstreamError):
    """The access token was superseded, malformed or expired."""

    code_name = "token_invalid"


class ConfigError(UpstreamError):
    """Credentials or whitelist are wrong: an operator must fix the settings."""

    code_name = "upstream_config"


class RateLimited(UpstreamError):
    """Too many calls; never retried blindly.

    ``retry_after``: seconds to wait, when known. ``not_before``: the Unix time before which the same
    kind of work is refused again (A codes' 10,000-a-day limit: the next midnight in Beijing), so a
    job runner or batch engine can defer the rest of the day's work instead of hammering.
    """

    code_name = "rate_limited"

    def __init__(self, provider: str, code: int | str | None, zh: str, en: str, raw: str = "",
                 retry_after: float | None = None, not_before: float | None = None) -> None:
        super().__init__(provider, code, zh, en, raw)
        self.retry_after = retry_after
        self.not_before = not_before


class UpstreamQuotaExhausted(UpstreamError):
    """A lifetime cap upstream is reached (A+C codes, permanent short links)."""

    code_name = "upstream_quota_exhausted"


class UpstreamBusy(UpstreamError):
    """A passing failure: busy, 5xx, timeout, connection refused. Safe to retry with backoff."""

    code_name = "upstream_busy"

    retryable = True


class UpstreamRejected(UpstreamError):
    """The upstream refused this request as given (bad page, scene, name, unknown id...)."""

    code_name = "upstream_rejected"
