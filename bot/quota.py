"""The A+C lifetime cap of each mini program, as our own ledger counts it, and the heads-ups near it.

WeChat allows 100,000 A and C codes per mini program, ever ("与 wxacode.get 总共生成的码数量限制为
100,000", https://developers.weixin.qq.com/miniprogram/dev/api-backend/open-api/qr-code/wxacode.createqrcode.html);
the ledger counts every one we made so a new A/C code is refused *before* the upstream call once
the cap is reached, and people are warned as they approach it.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from bot.errors import QuotaExhausted
from bot.models import CodeRequest
from bot.text import Text
from storage import Storage

QUOTA_WARN_LEVELS = (0.95, 0.80)


class Notice(Text):
    """A bilingual heads-up that goes with an answer (quota nearly used, sandbox, ...)."""

    def text(self, lang: str | None = "zh") -> str:
        return self.render(lang)


class QuotaStatus(BaseModel):
    app: str
    used: int
    cap: int

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

    def statuses(self, default_app: str | None = None) -> list[QuotaStatus]:
        """A+C codes counted per mini program (``default_app`` listed even when unused)."""
        counts = self.storage.ledger.apps()
        if default_app and default_app not in counts:
            counts[default_app] = 0
        return [QuotaStatus(app=app, used=used, cap=self.cap) for app, used in sorted(counts.items())]

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
