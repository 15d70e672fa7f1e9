"""A WeCom member's form in progress (:class:`Draft`) and its JSON form, kept by the service between
messages and across restarts (bot/drafts.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.kinds import KINDS, Kind
from bot.models import Requester

from .cards import Choice, short_label
from .client import Target

CHAT = "wecom"


@dataclass
class Draft:
    """One member's form in progress."""

    target: Target
    requester: Requester
    task_id: str
    expires_at: float
    step: str = "card"  # card → page → scene
    kind: Kind | None = None
    campaign: Choice | None = None
    channel: Choice | None = None
    campaigns: list[Choice] = field(default_factory=list)
    channels: list[Choice] = field(default_factory=list)
    pages: dict[str, int] = field(default_factory=dict)
    page: str | None = None
    scene: str | None = None

    @property
    def user(self) -> str:
        return self.target.user

    def fields(self) -> dict[str, Any]:
        """The CodeRequest input so far (names, not ids: the same request typed as text reuses the code)."""
        kind = self.kind or KINDS["wx-B"]
        data: dict[str, Any] = {"type": kind.type, "page": self.page or ""}
        if kind.via:
            data["via"] = kind.via
        if kind.gio:
            data["campaign"] = self.campaign.name if self.campaign else None
            data["channel"] = self.channel.name if self.channel else None
        if self.scene is not None:
            data["scene"] = self.scene
        return data

    def summary(self) -> tuple[str, str]:
        kind = self.kind or KINDS["wx-B"]
        zh, en = f"已选择：{short_label(kind)}", f"Chosen: {kind.type} code" + (" (GrowingIO tracking link)" if kind.gio else "")
        if kind.gio and self.campaign and self.channel:
            zh += f" · 活动 {self.campaign.name} · 渠道 {self.channel.name}"
            en += f" · campaign {self.campaign.name} · channel {self.channel.name}"
        return zh, en


def dump(draft: Draft) -> dict[str, Any]:
    """The draft as JSON (ids, names and what was typed: no secret)."""
    kind = next((key for key, value in KINDS.items() if value == draft.kind), None)

    def choice(c: Choice | None) -> list[str] | None:
        return [c.id, c.name] if c is not None else None

    return {"target": [draft.target.user, draft.target.chat_id], "requester": draft.requester.model_dump(mode="json"),
            "task_id": draft.task_id, "step": draft.step, "kind": kind, "campaign": choice(draft.campaign),
            "channel": choice(draft.channel), "campaigns": [[c.id, c.name] for c in draft.campaigns],
            "channels": [[c.id, c.name] for c in draft.channels], "pages": draft.pages, "page": draft.page,
            "scene": draft.scene}


def load(data: dict[str, Any], expires_at: float) -> Draft:
    """The draft :func:`dump` wrote; ``expires_at`` on the caller's clock."""
    def choice(value: Any) -> Choice | None:
        return Choice(str(value[0]), str(value[1])) if value else None

    user, chat_id = data["target"]
    return Draft(target=Target(user, chat_id), requester=Requester.model_validate(data["requester"]),
                 task_id=data["task_id"], expires_at=expires_at, step=data["step"],
                 kind=KINDS.get(data["kind"]) if data.get("kind") else None, campaign=choice(data.get("campaign")),
                 channel=choice(data.get("channel")),
                 campaigns=[c for c in map(choice, data.get("campaigns", [])) if c is not None],
                 channels=[c for c in map(choice, data.get("channels", [])) if c is not None],
                 pages={str(k): int(v) for k, v in data.get("pages", {}).items()}, page=data.get("page"),
                 scene=data.get("scene"))


__all__ = ["CHAT", "Draft", "dump", "load"]
