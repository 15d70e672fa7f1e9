"""Who may change what: one copy of the rule every feature asks (codes, live codes, posters, batches).

    permissions = service.permissions
    permissions.is_admin(requester)                 # MINPCODE_ADMINS
    permissions.may_manage(record, requester)       # its creator or an admin (a form shows the buttons)
    permissions.check(record, requester, "rename")  # the same, audited as ``rename_refused`` and refused
    permissions.require_owner(batch.origin.key, requester, "batch_cancel", ...)   # any owned thing
    permissions.require_admin(requester, "poster_template")   # team-wide settings

A refusal is audited because who tried to change whose code is what an audit log is for.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.errors import PermissionDenied
from bot.models import CodeRecord, Requester
from storage.audit import AuditLog


class Permissions:
    def __init__(self, admins: Iterable[str], audit: AuditLog) -> None:
        self.admins = frozenset(admins)
        self._audit = audit

    def is_admin(self, requester: Requester) -> bool:
        return requester.key in self.admins

    def owns_or_admin(self, owner: str, requester: Requester) -> bool:
        """Whether ``requester`` is ``owner`` (a ``front-end:id`` key) or an admin."""
        return owner == requester.key or self.is_admin(requester)

    def may_manage(self, record: CodeRecord, requester: Requester) -> bool:
        """Whether ``requester`` may change ``record`` (rename, delete, re-point…): its creator or an admin."""
        return self.owns_or_admin(record.requested_by, requester)

    def may_administer(self, requester: Requester) -> bool:
        """Team-wide settings (poster templates, the default logo): admins, and the CLI, which runs as the
        database's owner (it can open the file anyway)."""
        return requester.chat == "cli" or self.is_admin(requester)

    def check(self, record: CodeRecord, requester: Requester, action: str) -> None:
        """Refuse (audited as ``<action>_refused``) unless ``requester`` may manage ``record``."""
        who = record.requested_by_name or record.requested_by
        self.require_owner(record.requested_by, requester, action, code_id=record.id,
                           zh=f"只有创建者（{who}）或管理员可以修改码 {record.id}。",
                           en=f"Only its creator ({who}) or an admin may change code {record.id}.")

    def require_owner(self, owner: str, requester: Requester, action: str, *, zh: str, en: str,
                      code_id: str | None = None, **detail: str) -> None:
        """Refuse with ``zh``/``en`` (audited as ``<action>_refused``) unless ``requester`` is ``owner`` or an
        admin: codes, batches and whatever a feature owns next, one rule and one audit."""
        if self.owns_or_admin(owner, requester):
            return
        self._audit.record(requester.key, f"{action}_refused", code_id, owner=owner, **detail)
        raise PermissionDenied(zh, en)

    def require_admin(self, requester: Requester, action: str, **detail: str) -> None:
        """Refuse (audited as ``<action>_refused``) unless ``requester`` may change team-wide settings."""
        if self.may_administer(requester):
            return
        self._audit.record(requester.key, f"{action}_refused", None, **detail)
        raise PermissionDenied("只有管理员（MINPCODE_ADMINS）可以管理团队海报模板和默认标志。",
                               "Only admins (MINPCODE_ADMINS) may manage team poster templates and the default logo.")

__all__ = ["Permissions"]
