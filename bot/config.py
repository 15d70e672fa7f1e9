"""Settings from the environment or ``.env`` (every one in docs/configuration.md).

``Settings`` is the only reader of the environment. Values are checked when the settings are made
(the ``_check`` validator), but a bad value does not stop everything: each command asks for the
settings it uses with :meth:`Settings.check` (``serve`` asks for all of them), which raises
:class:`BadSettings` with one line per bad setting, naming it and saying what to put there.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from platformdirs import user_data_dir
from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import MinpcodeError
from bot.models import FRONT_ENDS

WECOM_APP_SETTINGS = ("WECOM_CORP_ID", "WECOM_AGENT_ID", "WECOM_SECRET", "WECOM_TOKEN", "WECOM_AES_KEY")
_URLS = ("MINPCODE_PUBLIC_URL", "SLACK_API_URL", "WECHAT_API_URL", "GIO_API_URL", "WECOM_API_URL")


class BadSettings(MinpcodeError, ValueError):
    """Settings a command needs are wrong; ``lines`` names each one and says what to put there."""

    code_name = "bad_settings"

    def __init__(self, lines: list[str]) -> None:
        joined = "; ".join(lines)
        super().__init__(f"设置有误：{joined}", joined)
        self.lines = lines

    def __str__(self) -> str:
        return "; ".join(self.lines)


def default_data_dir() -> Path:
    """One history per installation: the user's data folder (``~/.local/share/minpcode`` on Linux),
    never the working directory, so a command run from another folder cannot start a second ledger."""
    return Path(user_data_dir("minpcode", appauthor=False))


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every knob an operator can turn. Secrets are ``SecretStr`` so no repr or log shows them."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    minpcode_data_dir: Path = Field(default_factory=default_data_dir)
    # PostgreSQL as the shared store of several hosts (storage/engine.py); unset: SQLite in the data folder.
    # Secret: the URL may carry the password.
    minpcode_database_url: SecretStr | None = None
    # The operator's go-ahead to migrate a PostgreSQL database that holds data (after a pg_dump; storage/db.py).
    minpcode_migrate: bool = False
    minpcode_public_url: str = "http://127.0.0.1:3000"
    minpcode_sandbox: bool | None = None
    minpcode_admins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    minpcode_api_keys: SecretStr | None = None
    minpcode_summary_cron: str = "0 9 * * MON"
    minpcode_timezone: str = "Asia/Shanghai"
    minpcode_ac_cap: int = 100_000
    minpcode_cjk_font: Path | None = None
    minpcode_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    minpcode_log_format: Literal["text", "json"] = "text"
    # Live codes (bot/live/rules.py): the mini program's router page every live code opens, where paused or
    # expired codes lead, the key that hashes visitor values, and the resolver's per-IP limit.
    minpcode_router_page: str = "pages/minpcode/router"
    minpcode_fallback_page: str = "pages/index/index"
    minpcode_scan_hash_key: SecretStr | None = None
    # Per address, a minute (bursts of a tenth of it): lookups of keys that do not exist (beyond it: 429), and
    # counted scans of one live code (beyond it a scan is answered and not counted; bot/live/rules.py).
    minpcode_resolver_rate: int = Field(600, ge=1)
    # Proxies whose X-Forwarded-For names the client (uvicorn's forwarded_allow_ips): addresses or CIDR ranges.
    # The default is uvicorn's own; the container sets the private ranges its bridge gateway is in.
    minpcode_trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    minpcode_metrics_token: SecretStr | None = None   # GET /metrics with this bearer token (else loopback only)
    minpcode_stop_grace: float = Field(10.0, ge=0)    # seconds serve gives requests and codes in flight at SIGTERM
    # The admin declared WeChat's plain-text URL Scheme (明文 scheme 拉起此小程序, bot/links.py): `type=scheme
    # plain=yes` is made without a call, and the /q/ page leads into the router page with one.
    minpcode_plain_scheme: bool = False
    # Webhooks (bot/webhooks): endpoints on private, loopback or link-local addresses only when allowed (a receiver
    # inside the operator's own network), and the seconds between a failed delivery and its next attempt.
    minpcode_webhooks_allow_private: bool = False
    minpcode_webhooks_retry: Annotated[list[Annotated[float, Field(gt=0, le=86400)]], NoDecode] = Field(
        default_factory=lambda: [10.0, 60.0, 300.0, 1800.0, 7200.0, 21600.0, 43200.0, 86400.0], min_length=1)

    # The terminal's language (the CLI answers in it), as the locale variables say; first one set wins.
    minpcode_lang: str = ""
    lc_all: str = ""
    lc_messages: str = ""
    lang: str = ""
    user: str = ""                  # the login name the CLI records as the requester

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_summary_channel: str | None = None

    wechat_appid: str | None = None
    wechat_secret: SecretStr | None = None
    wechat_api_url: str = "https://api.weixin.qq.com"

    gio_project_uid: str | None = None
    gio_client_id: str | None = None
    gio_token: SecretStr | None = None
    gio_product_id: str | None = None
    gio_api_url: str = "https://www.growingio.com"
    # Open-API calls a second (GrowingIO allows 10): lower it when other systems share the project's token.
    gio_rate_per_second: int = Field(10, ge=1, le=10)

    wecom_corp_id: str | None = None
    wecom_agent_id: str | None = None
    wecom_secret: SecretStr | None = None
    wecom_token: SecretStr | None = None
    wecom_aes_key: SecretStr | None = None
    wecom_api_url: str = "https://qyapi.weixin.qq.com"
    wecom_webhook_url: SecretStr | None = None
    # WeCom's AI bot (智能机器人) over its long connection (handlers/wecom_aibot): both or neither
    wecom_bot_id: str | None = None
    wecom_bot_secret: SecretStr | None = None
    wecom_bot_ws_url: str = "wss://openws.work.weixin.qq.com"
    wecom_bot_summary_chat: str | None = None  # a group's chatid: scheduled summaries through the AI bot

    _split_admins = field_validator("minpcode_admins", mode="before")(_split_csv)
    _split_proxies = field_validator("minpcode_trusted_proxies", mode="before")(_split_csv)
    _split_retry = field_validator("minpcode_webhooks_retry", mode="before")(_split_csv)
    _problems: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        self._problems = {name: line for name, check in _CHECKS.items() if (line := check(self)) is not None}
        return self

    def problems(self, *names: str) -> list[str]:
        """One line per bad setting among ``names`` (all of them when none are named)."""
        wanted = names or tuple(_CHECKS)
        return [self._problems[name] for name in wanted if name in self._problems]

    def check(self, *names: str) -> Settings:
        """These settings (all when none are named) are usable, or BadSettings says which are not."""
        lines = self.problems(*names)
        if lines:
            raise BadSettings(lines)
        return self

    def secret_values(self) -> list[str]:
        """Every configured secret value, for redaction (bot/redact.py): none may reach a log or a screen."""
        fields = (self.wechat_secret, self.gio_token, self.slack_bot_token, self.slack_signing_secret,
                  self.slack_app_token, self.wecom_secret, self.wecom_token, self.wecom_aes_key,
                  self.minpcode_api_keys, self.wecom_webhook_url, self.minpcode_metrics_token,
                  self.minpcode_scan_hash_key, self.minpcode_database_url, self.wecom_bot_secret)
        found = [_secret(value) for value in fields]
        found.append(urlsplit(_secret(self.minpcode_database_url)).password or "")
        found += [entry.partition(":")[2].strip() for entry in _secret(self.minpcode_api_keys).split(",")]
        return [value for value in found if value]

    @property
    def database_url(self) -> str | None:
        """The PostgreSQL URL, or None for SQLite in the data folder."""
        value = _secret(self.minpcode_database_url).strip()
        return value or None

    @cached_property
    def zone(self) -> ZoneInfo:
        """``MINPCODE_TIMEZONE`` as the one time zone every part uses (summaries, the scheduler, live codes'
        expiry, times shown to people). A bad name raises :class:`BadSettings` naming it rather than falling
        back to some other zone: a wrong zone would put every period and expiry silently off by hours."""
        self.check("MINPCODE_TIMEZONE")
        return ZoneInfo(self.minpcode_timezone.strip())

    @property
    def terminal_lang(self) -> Literal["zh", "en"]:
        for value in (self.minpcode_lang, self.lc_all, self.lc_messages, self.lang):
            if value:
                return "zh" if value.lower().startswith("zh") else "en"
        return "en"

    @property
    def people_url(self) -> str | None:
        """``MINPCODE_PUBLIC_URL`` when it was given: the address for links handed to people (upload and
        download links, a code's image link in WeCom, the sample sheet in Slack). None when it was not:
        the default, or where serve listens (:meth:`listening_at`), is right for this machine's own
        callers and never for a phone, so a link there would look right and lead nowhere."""
        return self.minpcode_public_url.rstrip("/") if "minpcode_public_url" in self.model_fields_set else None

    def listening_at(self, url: str) -> Settings:
        """This, with ``url`` (where serve listens) as the public URL when none was given; it is still
        not given, so :attr:`people_url` stays None."""
        if "minpcode_public_url" in self.model_fields_set:
            return self
        copy = self.model_copy(update={"minpcode_public_url": url})
        copy.model_fields_set.discard("minpcode_public_url")
        return copy

    @property
    def wechat_configured(self) -> bool:
        return bool(self.wechat_appid and self.wechat_secret)

    @property
    def gio_configured(self) -> bool:
        """Project, token and product: the current Open API document needs no X-Client-Id (GIO_CLIENT_ID
        is sent when set, for accounts on the older one)."""
        return bool(self.gio_project_uid and self.gio_token and self.gio_product_id)

    @property
    def wechat_missing(self) -> list[str]:
        """The WeChat settings not set (empty when WeChat is configured)."""
        return [n for n, v in (("WECHAT_APPID", self.wechat_appid), ("WECHAT_SECRET", _secret(self.wechat_secret)))
                if not (v or "").strip()]

    @property
    def gio_missing(self) -> list[str]:
        """The GrowingIO settings not set (empty when GrowingIO is configured)."""
        return [n for n, v in (("GIO_PROJECT_UID", self.gio_project_uid), ("GIO_TOKEN", _secret(self.gio_token)),
                               ("GIO_PRODUCT_ID", self.gio_product_id)) if not (v or "").strip()]

    @cached_property
    def sandbox(self) -> bool:
        """Explicit ``MINPCODE_SANDBOX`` wins; otherwise sandbox when no upstream credentials exist."""
        if self.minpcode_sandbox is not None:
            return self.minpcode_sandbox
        return not (self.wechat_configured or self.gio_configured)

    @property
    def use_gio(self) -> bool:
        """Whether A and C codes go through GrowingIO by default (always true in the sandbox)."""
        return self.sandbox or self.gio_configured


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value().strip() if value is not None else ""


def _timezone(s: Settings) -> str | None:
    try:
        ZoneInfo(s.minpcode_timezone.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return (f"MINPCODE_TIMEZONE={s.minpcode_timezone!r} is not a time zone: put an IANA name there, "
                "such as Asia/Shanghai or UTC")
    return None


def _cron(s: Settings) -> str | None:
    if croniter.is_valid(s.minpcode_summary_cron.strip()):
        return None
    return (f"MINPCODE_SUMMARY_CRON={s.minpcode_summary_cron!r} is not a cron expression: put five fields there "
            "(minute hour day month weekday), such as '0 9 * * MON'")


def _url(name: str) -> Callable[[Settings], str | None]:
    def check(s: Settings) -> str | None:
        value = str(getattr(s, name.lower()))
        parts = urlsplit(value.strip())
        if parts.scheme in ("http", "https") and parts.hostname:
            return None
        return f"{name}={value!r} is not a URL: put an http:// or https:// address there"
    return check


def _database_url(s: Settings) -> str | None:
    value = _secret(s.minpcode_database_url).strip()
    if not value or value.startswith(("postgresql://", "postgres://")):
        return None
    return ("MINPCODE_DATABASE_URL is not a PostgreSQL URL: put postgresql://user:password@host:5432/database there, "
            "or leave it unset for SQLite in the data folder")


def _webhook(s: Settings) -> str | None:
    value = _secret(s.wecom_webhook_url)
    parts = urlsplit(value)
    if not value or (parts.scheme in ("http", "https") and parts.hostname):
        return None
    # the key is in the URL: never shown
    return ("WECOM_WEBHOOK_URL is not a URL: put the group robot's webhook address there "
            "(https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…)")


def _api_keys(s: Settings) -> str | None:
    for position, entry in enumerate(_secret(s.minpcode_api_keys).split(","), start=1):
        if not entry.strip():
            continue
        name, sep, key = (part.strip() for part in entry.partition(":"))
        if not sep or not name or not key or any(ch.isspace() for ch in name):
            # where, never what: the entry may be a bare key
            return (f"MINPCODE_API_KEYS entry {position} is not name:key: put comma-separated name:key pairs "
                    "there, such as crm:long-random-key")
    return None


def _admins(s: Settings) -> str | None:
    for entry in s.minpcode_admins:
        front, sep, user = entry.partition(":")
        if not sep or front not in FRONT_ENDS or not user.strip():
            # the same id on two front-ends is two people: an admin is named with the front-end
            who = user.strip() or entry
            return (f"MINPCODE_ADMINS entry {entry!r} does not say which front-end: put front-end:id there, "
                    f"such as {', '.join(f'{front}:{who}' for front in FRONT_ENDS)}")
    return None


def _token(name: str, prefix: str, kind: str) -> Callable[[Settings], str | None]:
    def check(s: Settings) -> str | None:
        value = _secret(getattr(s, name.lower()))
        if not value or value.startswith(prefix):
            return None
        return f"{name} is not {kind}: put the token that starts with {prefix} there"
    return check


def _wecom_app(s: Settings) -> str | None:
    values = {"WECOM_CORP_ID": (s.wecom_corp_id or "").strip(), "WECOM_AGENT_ID": (s.wecom_agent_id or "").strip(),
              "WECOM_SECRET": _secret(s.wecom_secret), "WECOM_TOKEN": _secret(s.wecom_token),
              "WECOM_AES_KEY": _secret(s.wecom_aes_key)}
    missing = [name for name, value in values.items() if not value]
    if len(missing) == len(values):
        return None
    if missing:
        return (f"{', '.join(missing)} not set: the WeCom app needs all of {', '.join(WECOM_APP_SETTINGS)} "
                "(or none, to leave it off)")
    if not values["WECOM_AGENT_ID"].isdigit():
        return "WECOM_AGENT_ID must be the app's numeric AgentId: put that number (such as 1000002) there"
    if len(values["WECOM_AES_KEY"]) != 43:
        return "WECOM_AES_KEY must be the 43-character EncodingAESKey of the callback settings: put that there"
    return None


def _wecom_bot(s: Settings) -> str | None:
    bot_id, secret = (s.wecom_bot_id or "").strip(), _secret(s.wecom_bot_secret)
    if bool(bot_id) != bool(secret):
        missing = "WECOM_BOT_SECRET" if bot_id else "WECOM_BOT_ID"
        return (f"{missing} not set: the WeCom AI bot needs both WECOM_BOT_ID and WECOM_BOT_SECRET (管理后台 → "
                "智能机器人 → API 模式 → 长连接), or neither, to leave it off")
    parts = urlsplit(s.wecom_bot_ws_url.strip())
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        return (f"WECOM_BOT_WS_URL={s.wecom_bot_ws_url!r} is not a websocket address: put "
                "wss://openws.work.weixin.qq.com there (or leave it unset)")
    return None


def _trusted_proxies(s: Settings) -> str | None:
    # uvicorn takes an entry it cannot read as a literal name that no client address ever equals: a typo
    # would silently trust nobody (every phone behind the proxy in one bucket), so it is refused here.
    given = ",".join(s.minpcode_trusted_proxies)
    advice = ("put the reverse proxy's addresses or CIDR ranges there, comma-separated, such as "
              "127.0.0.1,172.16.0.0/12")
    for entry in s.minpcode_trusted_proxies:
        if entry == "*":
            return f"MINPCODE_TRUSTED_PROXIES={given!r} would let every client name its own address: {advice}"
        try:
            if "/" in entry:
                ipaddress.ip_network(entry)  # strict, as uvicorn reads it: 10.0.0.1/8 is no range
            else:
                ipaddress.ip_address(entry)
        except ValueError:
            hint = " (a range starts at its network address, such as 10.0.0.0/8)" if "/" in entry else ""
            return f"MINPCODE_TRUSTED_PROXIES={given!r}: {entry!r} is not an address or a CIDR range{hint}: {advice}"
    return None


def _page_setting(name: str) -> Callable[[Settings], str | None]:
    def check(s: Settings) -> str | None:
        value = str(getattr(s, name.lower())).strip()
        if value and not value.startswith("/") and "?" not in value and not any(ch.isspace() for ch in value):
            return None
        return f"{name}={value!r} is not a page path: put one such as pages/minpcode/router there (no leading /, no ?query)"
    return check


_CHECKS: dict[str, Callable[[Settings], str | None]] = {
    "MINPCODE_TIMEZONE": _timezone,
    "MINPCODE_DATABASE_URL": _database_url,
    "MINPCODE_SUMMARY_CRON": _cron,
    **{name: _url(name) for name in _URLS},
    "WECOM_WEBHOOK_URL": _webhook,
    "MINPCODE_API_KEYS": _api_keys,
    "MINPCODE_ADMINS": _admins,
    "MINPCODE_TRUSTED_PROXIES": _trusted_proxies,
    "SLACK_BOT_TOKEN": _token("SLACK_BOT_TOKEN", "xoxb-", "a bot token"),
    "SLACK_APP_TOKEN": _token("SLACK_APP_TOKEN", "xapp-", "an app-level token"),
    "WECOM_APP": _wecom_app,
    "WECOM_BOT": _wecom_bot,
    "MINPCODE_ROUTER_PAGE": _page_setting("MINPCODE_ROUTER_PAGE"),
    "MINPCODE_FALLBACK_PAGE": _page_setting("MINPCODE_FALLBACK_PAGE"),
}
