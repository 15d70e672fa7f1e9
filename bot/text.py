"""Bilingual text and the small string helpers every part renders with (a leaf: imports nothing of ours).

``Text(zh, en)`` is how the core says anything to a person. A front-end renders it once, here:
the asker's language first when it is known, both languages (Chinese first) when it is not.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

Lang = Literal["zh", "en"]
ELLIPSIS = "…"


class Text(BaseModel):
    """One sentence in Chinese and English."""

    model_config = ConfigDict(frozen=True)
    zh: str
    en: str

    def render(self, lang: str | None = None, *, both: bool = True, sep: str = "\n") -> str:
        """The asker's language first (``lang``), then the other when ``both``; Chinese first if unknown."""
        first, second = (self.en, self.zh) if lang == "en" else (self.zh, self.en)
        if not both or first == second:
            return first
        return f"{first}{sep}{second}"

    def pick(self, lang: str | None) -> str:
        """Only the asker's language (Chinese when unknown)."""
        return self.en if lang == "en" else self.zh

    def __add__(self, other: Text) -> Text:
        return Text(zh=self.zh + other.zh, en=self.en + other.en)


def bilingual(zh: str, en: str, lang: str | None = None, *, sep: str = "\n") -> str:
    """``Text(zh, en).render(lang)`` for callers holding two strings."""
    return Text(zh=zh, en=en).render(lang, sep=sep)


def clip(text: str, limit: int, *, ellipsis: str = ELLIPSIS) -> str:
    """``text`` cut to at most ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    if limit <= len(ellipsis):
        return text[:limit]
    return text[: limit - len(ellipsis)] + ellipsis


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def clip_utf8(text: str, max_bytes: int, *, ellipsis: str = "") -> str:
    """``text`` cut at a character boundary so its UTF-8 form (with ``ellipsis``) fits ``max_bytes``."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    room = max(0, max_bytes - utf8_len(ellipsis))
    return data[:room].decode("utf-8", errors="ignore") + (ellipsis if room < len(data) else "")


UTC_ZONE = ZoneInfo("UTC")


def local_time(moment: datetime, zone: ZoneInfo = UTC_ZONE, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``moment`` in ``zone`` (``Settings.zone``, MINPCODE_TIMEZONE), followed by the zone's name; naive is UTC."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return f"{aware.astimezone(zone).strftime(fmt)} {zone.key}"


# The words a person may use for yes and no, in any front-end (text grammar, CSV cells, prompts).
YES_WORDS = frozenset({"yes", "y", "true", "1", "on", "是", "好", "对"})
NO_WORDS = frozenset({"no", "n", "false", "0", "off", "否", "不"})


def yes_no(value: str) -> bool | None:
    """True for a yes word, False for a no word, None for anything else."""
    word = value.strip().lower()
    if word in YES_WORDS:
        return True
    if word in NO_WORDS:
        return False
    return None


__all__ = ["ELLIPSIS", "NO_WORDS", "UTC_ZONE", "YES_WORDS", "Lang", "Text", "bilingual", "clip", "clip_utf8", "local_time",
           "utf8_len", "yes_no"]
