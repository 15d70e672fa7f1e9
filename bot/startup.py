"""What the settings add up to, said at start: the mode and why, half-configured parts, misspelt names.

    report = startup_report(settings)                  # data: serve, chat and ``doctor`` read it
    for line in report.lines("en"): print(line)
    stranded = history_elsewhere(settings)             # an earlier version's ./data history, left behind

Nothing here changes what minpcode does; it only says what the settings mean, so a half
configuration or a misspelt ``MINPCODE_SANBOX=0`` is never silent. The one refusal is
:func:`history_elsewhere`'s: the callers (serve, the commands that open the history, ``doctor``) act on it.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from bot.config import WECOM_APP_SETTINGS, Settings
from bot.errors import InputError
from bot.text import Text
from storage.db import DB_NAME, DatabaseUnreadable, recorded_codes

PREFIXES = ("MINPCODE_", "WECHAT_", "GIO_", "SLACK_", "WECOM_")
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


class Part(BaseModel):
    """One upstream or front-end and how far the settings configure it."""

    name: str
    state: Literal["on", "half", "off"]
    missing: list[str] = []


class Unknown(BaseModel):
    """A variable with one of our prefixes that is no setting: a misspelling, most likely."""

    name: str
    source: Literal["environment", ".env"]
    closest: str | None = None


class StartupReport(BaseModel):
    mode: Literal["sandbox", "live"]
    why: Text
    parts: list[Part]
    unknown: list[Unknown]

    @property
    def half(self) -> list[Part]:
        return [p for p in self.parts if p.state == "half"]

    def warnings(self) -> list[Text]:
        """One sentence per half-configured part and per unknown variable."""
        said = [Text(zh=f"{p.name} 只配置了一半：缺少 {'、'.join(p.missing)}（要么补全，要么全部去掉）。",
                     en=f"{p.name} is half configured: {', '.join(p.missing)} not set (set them, or remove the rest).")
                for p in self.half]
        for u in self.unknown:
            where_zh = "环境变量" if u.source == "environment" else ".env 文件"
            hint_zh = f"，是不是想写 {u.closest}？" if u.closest else "。"
            hint_en = f"; did you mean {u.closest}?" if u.closest else "."
            said.append(Text(zh=f"{where_zh}里的 {u.name} 不是 minpcode 的设置，已忽略{hint_zh}",
                             en=f"{u.name} (in the {u.source}) is not a minpcode setting and is ignored{hint_en}"))
        return said

    def lines(self, lang: str | None = "en") -> list[str]:
        """The mode line, then each warning, each in ``lang`` first and the other language after."""
        mode = Text(zh="沙盒模式" if self.mode == "sandbox" else "正式模式",
                    en="sandbox mode" if self.mode == "sandbox" else "live mode")
        head = Text(zh=f"{mode.zh}：{self.why.zh}", en=f"{mode.en}: {self.why.en}")
        return [t.render(lang, sep=" / ") for t in (head, *self.warnings())]


def known_settings() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def env_file_names(path: Path) -> list[str]:
    """The variable names a ``.env`` file sets (values are never read here: they may be secrets)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [m.group(1) for line in text.splitlines() if (m := _ENV_LINE.match(line))]


def unknown_variables(environ: Mapping[str, str], env_names: list[str]) -> list[Unknown]:
    known = sorted(known_settings())
    found: list[Unknown] = []
    seen: set[str] = set()
    for source, names in (("environment", list(environ)), (".env", env_names)):
        for name in names:
            upper = name.upper()
            if not upper.startswith(PREFIXES) or upper in known or upper in seen:
                continue
            seen.add(upper)
            close = difflib.get_close_matches(upper, known, n=1, cutoff=0.75)
            found.append(Unknown(name=name, source=source, closest=close[0] if close else None))
    return found


def _part(name: str, values: dict[str, bool], optional_any: bool = False) -> Part:
    missing = [n for n, given in values.items() if not given]
    if not missing:
        return Part(name=name, state="on")
    if len(missing) == len(values) or optional_any:
        return Part(name=name, state="off", missing=missing)
    return Part(name=name, state="half", missing=missing)


def parts(settings: Settings) -> list[Part]:
    """WeChat, GrowingIO, Slack and the WeCom app: on, off, or half configured (and what is missing)."""
    s = settings
    slack_token = s.slack_bot_token is not None and bool(s.slack_bot_token.get_secret_value().strip())
    slack_way = any(v is not None and v.get_secret_value().strip() for v in (s.slack_signing_secret, s.slack_app_token))
    slack = _part("Slack", {"SLACK_BOT_TOKEN": slack_token, "SLACK_SIGNING_SECRET or SLACK_APP_TOKEN": slack_way})
    wecom_values = {n: bool(str(_value(getattr(s, n.lower()))).strip()) for n in WECOM_APP_SETTINGS}
    return [
        _part("WeChat", {n: n not in s.wechat_missing for n in ("WECHAT_APPID", "WECHAT_SECRET")}),
        _part("GrowingIO", {n: n not in s.gio_missing for n in ("GIO_PROJECT_UID", "GIO_TOKEN", "GIO_PRODUCT_ID")}),
        slack,
        _part("WeCom", wecom_values),
    ]


def _value(value: object) -> object:
    getter = getattr(value, "get_secret_value", None)
    return getter() if callable(getter) else (value or "")


def _why(settings: Settings, found: list[Part]) -> tuple[Literal["sandbox", "live"], Text]:
    on = [p.name for p in found if p.state == "on" and p.name in ("WeChat", "GrowingIO")]
    if settings.minpcode_sandbox is True:
        return "sandbox", Text(zh="MINPCODE_SANDBOX=1 打开了沙盒", en="MINPCODE_SANDBOX=1 turns the sandbox on")
    if settings.minpcode_sandbox is False:
        if not on:
            return "live", Text(zh="MINPCODE_SANDBOX=0 关掉了沙盒，但微信和 GrowingIO 都没有配置：什么码都生成不了",
                                en="MINPCODE_SANDBOX=0 turns the sandbox off, but neither WeChat nor GrowingIO is "
                                   "configured: no code can be made")
        return "live", Text(zh=f"MINPCODE_SANDBOX=0；已配置 {'、'.join(on)}",
                            en=f"MINPCODE_SANDBOX=0; {' and '.join(on)} configured")
    if on:
        return "live", Text(zh=f"已配置 {'、'.join(on)}", en=f"{' and '.join(on)} configured")
    return "sandbox", Text(zh="微信（WECHAT_APPID、WECHAT_SECRET）和 GrowingIO（GIO_PROJECT_UID、GIO_TOKEN、"
                              "GIO_PRODUCT_ID）都没有完整配置",
                           en="neither WeChat (WECHAT_APPID, WECHAT_SECRET) nor GrowingIO (GIO_PROJECT_UID, "
                              "GIO_TOKEN, GIO_PRODUCT_ID) is fully configured")


def startup_report(settings: Settings, environ: Mapping[str, str] | None = None,
                   env_file: Path | None = Path(".env")) -> StartupReport:
    """What ``settings`` mean: the mode and why, each part's state, and unknown variables with ours."""
    found = parts(settings)
    mode, why = _why(settings, found)
    names = env_file_names(env_file) if env_file is not None else []
    return StartupReport(mode=mode, why=why, parts=found,
                         unknown=unknown_variables(os.environ if environ is None else environ, names))


OLD_DATA_DIR = Path("data")
"""Where builds before 2026-12-01 kept the history: ``./data``, in whatever folder a command ran from."""


class HistoryElsewhere(InputError):
    """An earlier version's history is in ``./data`` and the data folder chosen by default is empty: the
    history and the quota ledger would silently start again from nothing. ``codes`` is None when the old
    file cannot be read (it is still someone's history)."""

    code_name = "history_elsewhere"

    def __init__(self, old: Path, current: Path, codes: int | None) -> None:
        held_zh = f"（{codes} 个码）" if codes is not None else "（文件读不出来）"
        held_en = f" ({codes} codes)" if codes is not None else " (the file cannot be read)"
        super().__init__(
            f"旧版本的历史记录在 {old}{held_zh}，而默认的数据文件夹 {current} 是空的：这样会从空的历史开始，配额也从 0 "
            f"重新计数。请设置 MINPCODE_DATA_DIR={old} 继续使用它，或把 {old} 里的文件移到 {current}。",
            f"An earlier version's history is in {old}{held_en}, but the default data folder {current} is empty: "
            f"the history would start empty and the quota count from 0. Set MINPCODE_DATA_DIR={old} to keep "
            f"using it, or move the files in {old} to {current}.")
        self.old = old
        self.current = current
        self.codes = codes

    def line(self, lang: str | None = "en") -> str:
        """The refusal on one line, ``lang`` first."""
        return self.message.render(lang, sep=" / ")


def history_elsewhere(settings: Settings, cwd: Path | None = None) -> HistoryElsewhere | None:
    """Whether the default data folder would hide an earlier version's history in ``./data`` (``cwd``).

    Only when MINPCODE_DATA_DIR was not set (in the environment or .env: a choice made on purpose wins,
    silently), ``./data`` holds codes (or a file that cannot be read) and the chosen folder holds none.
    Both holding codes is two histories someone already uses: said as a note by the CLI, not refused."""
    if "minpcode_data_dir" in settings.model_fields_set or settings.database_url:
        return None  # chosen on purpose, or the history is in PostgreSQL
    old = ((cwd or Path.cwd()) / OLD_DATA_DIR).resolve()
    current = settings.minpcode_data_dir.expanduser()
    if not (old / DB_NAME).is_file() or current.resolve() == old:
        return None
    try:
        codes: int | None = recorded_codes(old)
    except DatabaseUnreadable:
        codes = None
    if codes == 0:
        return None
    try:
        if recorded_codes(current) > 0:
            return None
    except DatabaseUnreadable:
        return None  # a damaged file of its own: opening it says so, with the way back
    return HistoryElsewhere(old, current, codes)


__all__ = ["OLD_DATA_DIR", "PREFIXES", "HistoryElsewhere", "Part", "StartupReport", "Unknown", "env_file_names",
           "history_elsewhere", "known_settings", "parts", "startup_report", "unknown_variables"]
