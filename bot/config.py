"""Settings from the environment or ``.env`` (names as in shared/docs/contract.md)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


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
    minpcode_public_url: str = "http://127.0.0.1:3000"
    minpcode_sandbox: bool | None = None
    minpcode_admins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    minpcode_api_keys: SecretStr | None = None
    minpcode_summary_cron: str = "0 9 * * MON"
    minpcode_timezone: str = "Asia/Shanghai"
    minpcode_ac_cap: int = 100_000
    minpcode_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    minpcode_log_format: Literal["text", "json"] = "text"

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

    wecom_corp_id: str | None = None
    wecom_agent_id: str | None = None
    wecom_secret: SecretStr | None = None
    wecom_token: SecretStr | None = None
    wecom_aes_key: SecretStr | None = None
    wecom_api_url: str = "https://qyapi.weixin.qq.com"
    wecom_webhook_url: SecretStr | None = None

    _split_admins = field_validator("minpcode_admins", mode="before")(_split_csv)

    @property
    def wechat_configured(self) -> bool:
        return bool(self.wechat_appid and self.wechat_secret)

    @property
    def gio_configured(self) -> bool:
        return bool(self.gio_project_uid and self.gio_client_id and self.gio_token)

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
