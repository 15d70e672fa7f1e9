"""The A+C lifetime cap of each mini program, as our own ledger counts it, and the heads-ups near it.

WeChat allows 100,000 A and C codes per mini program, ever ("与 wxacode.get 总共生成的码数量限制为
100,000", https://developers.weixin.qq.com/miniprogram/dev/api-backend/open-api/qr-code/wxacode.createqrcode.html);
the ledger counts every one we made so a new A/C code is refused *before* the upstream call once
the cap is reached, and people are warned as they approach it.

Beside it, what we made of two more of WeChat's limits, shown in ``quota`` (WeChat's own answer, 44993 or
85400, refuses past them; other systems may share the mini program): URL Links and URL Schemes made today
(Beijing's day), 500,000 a day for both together, and permanent Short Links, 100,000 ever (bot/models.py
names the pages).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import BaseModel

from bot.errors import QuotaExhausted
from bot.messages import next_beijing_midnight
from bot.models import LINKS_PER_DAY, SHORTLINK_PERMANENT_CAP, CodeRequest
from bot.text import Text
from storage import Storage
from storage.clock import to_text

QUOTA_WARN_LEVELS = (0.95, 0.80)


class Notice(Text):
    """A bilingual heads-up that goes with an answer (quota nearly used, sandbox, ...)."""

    def text(self, lang: str | None = "zh") -> str:
        return self.render(lang)


class QuotaStatus(BaseModel):
    app: str
    used: int
    cap: int
    links_today: int = 0  # URL Links and URL Schemes (not plain-text ones) made today, Beijing time
    links_per_day: int = LINKS_PER_DAY
    permanent_short_links: int = 0
    permanent_short_link_cap: int = SHORTLINK_PERMANENT_CAP

    def link_lines(self) -> Text:
        """The two link counts of this mini program, one line each."""
        return Text(
            zh=f"URL Link + URL Scheme 今天（北京时间）已生成 {self.links_today:,} / {self.links_per_day:,}（微信每天的上限，两者共用；"
               f"明文 scheme 不算）\n永久短链已生成 {self.permanent_short_links:,} / {self.permanent_short_link_cap:,}（终身上限）",
            en=f"URL Links + URL Schemes made today (Beijing time): {self.links_today:,} of {self.links_per_day:,} "
               f"(WeChat's daily limit, shared; plain-text schemes do not count)\nPermanent Short Links made: "
               f"{self.permanent_short_links:,} of {self.permanent_short_link_cap:,} (lifetime cap)",
        )

    @property
    def left(self) -> int:
        return max(0, self.cap - self.used)

    @property
    def ratio(self) -> float:
        return self.used / self.cap if self.cap else 1.0

    def notice(self) -> Notice | None:
        for level in QUOTA_WARN_LEVELS:
            if self.ratio >= level:
                return Notice(
                    zh=f"注意：小程序 {self.app} 的 A/C 码已用 {self.used}/{self.cap}（{self.ratio:.0%}），"
                       f"还剩 {self.left} 个。能用 B 码的地方请用 B 码（不限数量）。",
                    en=f"Heads-up: mini program {self.app} has used {self.used} of {self.cap} A/C codes "
                       f"({self.ratio:.0%}); {self.left} left. Prefer B codes (unlimited) where you can.",
                )
        return None


class Quota:
    """The cap per mini program over the storage's ledger."""

    def __init__(self, storage: Storage, cap: Callable[[], int]) -> None:
        self.storage = storage
        self._cap = cap  # read at each use: the settings may change while the process runs

    @property
    def cap(self) -> int:
        return self._cap()

    def statuses(self, default_app: str | None = None, *, now: float | None = None) -> list[QuotaStatus]:
        """A+C codes counted per mini program (``default_app`` listed even when unused), with the links made."""
        counts = self.storage.ledger.apps()
        now = time.time() if now is None else now
        today = datetime.fromtimestamp(next_beijing_midnight(now) - 86400, UTC)
        links, permanent = self.storage.history.links_made(to_text(today))
        apps = set(counts) | set(links) | set(permanent) | ({default_app} if default_app else set())
        return [QuotaStatus(app=app, used=counts.get(app, 0), cap=self.cap, links_today=links.get(app, 0),
                            permanent_short_links=permanent.get(app, 0)) for app in sorted(apps)]

    def check(self, request: CodeRequest) -> list[Notice]:
        """Refuse a new A/C code past the cap (a request already counted may be made again); warn near it."""
        if not request.type.counts_against_cap or not request.app:
            return []
        ledger = self.storage.ledger
        status = QuotaStatus(app=request.app, used=ledger.used(request.app), cap=self.cap)
        if status.used >= status.cap and not ledger.counted(request.app, request.reuse_key()):
            raise QuotaExhausted(
                f"小程序 {request.app} 的 A/C 码已用完 {status.cap} 个的终身额度，不能再生成新的 A/C 码。请改用 B 码"
                "（type=B，参数放进 scene，数量不限）。",
                f"Mini program {request.app} has used all {status.cap} A/C codes of its lifetime quota; no new "
                "A/C code can be made. Use a B code instead (type=B, parameters in the scene; unlimited).",
            )
        notice = QuotaStatus(app=request.app, used=status.used + 1, cap=status.cap).notice()
        return [notice] if notice else []


__all__ = ["QUOTA_WARN_LEVELS", "Notice", "Quota", "QuotaStatus"]
