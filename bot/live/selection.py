"""Changes to many codes at once: a selection (a tag, a campaign, a batch, or ids) resolved to codes, shown
first and changed only on confirmation.

    preview = service.live.selections.preview(Selection(tag="春节"), "repoint", "pages/spring/end", requester)
    preview.count, preview.examples, preview.refused      # what would change, and what may not
    done = service.live.selections.confirm(requester, preview.token)

The preview keeps the ids it showed in the database (the drafts table, one pending change per person, with
its expiry), so a confirmation in another process, or after a restart, applies exactly what was shown: the
selection is resolved again and only the ids both in the preview and still allowed now are changed (a code
deleted, untagged or handed to someone else in between is left, and said). Each code is changed through the
same rule as one code (bot/live/rules.py, storage/tags.py): its destination history and the audit record it.
Permission is the one rule of bot/permissions.py, per code: its creator or an admin; the others are listed.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from bot.destinations import destination_errors
from bot.errors import FieldError, InputError, InvalidRequest, NotFound, PermissionDenied
from bot.history import get_record
from bot.live.rules import LiveCodes, NotLive
from bot.models import CodeRecord, Requester, Status, page_path, split_tags, tag_errors
from bot.permissions import Permissions
from bot.text import Text
from bot.webhooks.events import LIVE_PAUSED, LIVE_REPOINTED, LIVE_RESUMED
from storage import Storage
from storage.transaction import immediate
from storage.webhooks import Events

Action = Literal["repoint", "pause", "resume", "tag", "untag"]
ACTIONS: tuple[Action, ...] = ("repoint", "pause", "resume", "tag", "untag")
LIVE_ACTIONS = frozenset({"repoint", "pause", "resume"})
CONFIRM_SECONDS = 15 * 60   # how long a preview waits for its confirmation (our choice: a coffee's length)
EXAMPLES = 5                # codes a preview names
SELECTION_MAX = 10_000      # codes one change may touch; more is refused (narrow the selection)
DRAFT_CHAT = "selection"    # the drafts table's ``chat`` for pending selections (storage/drafts.py)


class NothingToConfirm(InputError):
    code_name = "nothing_to_confirm"


class Selection(BaseModel):
    """Which codes: any of a tag, a campaign (its exact name), a batch id, and ids; together, their union."""

    ids: list[str] = []
    tag: str | None = None
    campaign: str | None = None
    batch: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.ids or self.tag or self.campaign or self.batch)

    def describe(self) -> Text:
        zh, en = [], []
        if self.tag:
            zh.append(f"标签「{self.tag}」")
            en.append(f"tag '{self.tag}'")
        if self.campaign:
            zh.append(f"活动「{self.campaign}」")
            en.append(f"campaign '{self.campaign}'")
        if self.batch:
            zh.append(f"批次 {self.batch}")
            en.append(f"batch {self.batch}")
        if self.ids:
            zh.append(f"{len(self.ids)} 个编号")
            en.append(f"{len(self.ids)} id{'s' if len(self.ids) != 1 else ''}")
        return Text(zh="、".join(zh), en=", ".join(en))


class Example(BaseModel):
    code_id: str
    name: str | None
    now: str | None = None     # a live code's destination now ('' while blank); None for other codes


class Refused(BaseModel):
    code_id: str
    zh: str
    en: str


class SelectionPreview(BaseModel):
    """What a change would do (a dry run): nothing has changed yet."""

    token: str
    action: Action
    value: str | None           # the new destination (repoint) or the tags (tag, untag, comma-separated)
    selection: Selection
    count: int                  # codes that would change
    examples: list[Example]     # the first few of them
    refused: list[Refused]      # selected, but not changed: whose they are, or not a live code
    expires_at: datetime


class SelectionDone(BaseModel):
    action: Action
    value: str | None
    changed: list[str]          # ids changed, in the preview's order
    refused: list[Refused]      # refused at the preview
    left: list[str]             # in the preview, no longer selected or allowed at the confirmation: not changed


class Selections:
    def __init__(self, storage: Storage, permissions: Permissions, rules: LiveCodes,
                 events: Callable[[str, CodeRecord], Events | None] | None = None) -> None:
        self.storage = storage
        self.permissions = permissions
        self.rules = rules
        # each code's webhook event, written in its change's transaction as for one code (bot/live/service.py)
        self._events: Callable[[str, CodeRecord], Events | None] = events or (lambda _type, _record: None)

    # -- the two steps -------------------------------------------------------------------------------
    def preview(self, selection: Selection, action: Action, value: str | None, requester: Requester) -> SelectionPreview:
        """Resolve ``selection``, split it into what ``requester`` may change and what not (each refusal
        audited as ``change_refused``), and keep the allowed ids for :meth:`confirm`."""
        value = self.checked(action, value)
        records, refused = self._resolve(selection)
        live = set(self.storage.live.for_codes([r.id for r in records])) if action in LIVE_ACTIONS else set()
        allowed = []
        for record in records:
            why = self._refusal(record, action, requester, live, audit=True)
            if why is None:
                allowed.append(record)
            else:
                refused.append(why)
        if not allowed:
            raise NothingToConfirm(
                f"{selection.describe().zh}里没有可以修改的码。" + "".join(f"\n• {r.code_id}: {r.zh}" for r in refused[:20]),
                f"Nothing to change in {selection.describe().en}." + "".join(f"\n• {r.code_id}: {r.en}" for r in refused[:20]))
        token = secrets.token_urlsafe(9)
        ends = time.time() + CONFIRM_SECONDS
        rows = self.storage.live.for_codes([r.id for r in allowed[:EXAMPLES]])
        self.storage.drafts.put(DRAFT_CHAT, requester.key, {
            "token": token, "action": action, "value": value, "selection": selection.model_dump(mode="json"),
            "ids": [r.id for r in allowed], "refused": [r.model_dump() for r in refused]}, ends, time.time())
        return SelectionPreview(
            token=token, action=action, value=value, selection=selection, count=len(allowed),
            examples=[Example(code_id=r.id, name=r.name, now=rows[r.id].page if r.id in rows else None)
                      for r in allowed[:EXAMPLES]],
            refused=refused, expires_at=datetime.fromtimestamp(ends, UTC))

    def confirm(self, requester: Requester, token: str | None = None) -> SelectionDone:
        """Apply ``requester``'s pending preview (``token``: that one, when given): the ids it showed that are
        still selected and allowed now. The pending change is taken first, so a second confirmation finds none."""
        with immediate(self.storage.db):
            found = self.storage.drafts.get(DRAFT_CHAT, requester.key, time.time())
            if found is not None and (token is None or found[0].get("token") == token):
                self.storage.drafts.drop(DRAFT_CHAT, requester.key)
        if found is None or (token is not None and found[0].get("token") != token):
            raise NothingToConfirm("没有待确认的批量修改（已确认、已过期或编号不对）。请重新发送修改命令，先看预览。",
                                   "No change is waiting for confirmation (done, expired, or another token). "
                                   "Send the change again and look at its preview first.")
        data = found[0]
        action: Action = data["action"]
        value: str | None = data["value"]
        current, _ = self._resolve(Selection.model_validate(data["selection"]))
        live = set(self.storage.live.for_codes([r.id for r in current])) if action in LIVE_ACTIONS else set()
        now = {r.id: r for r in current if self._refusal(r, action, requester, live, audit=False) is None}
        changed, left = [], []
        for code_id in data["ids"]:
            record = now.get(code_id)
            if record is None:
                left.append(code_id)
                continue
            self._apply(record, action, value, requester)
            changed.append(code_id)
        return SelectionDone(action=action, value=value, changed=changed, left=left,
                             refused=[Refused.model_validate(r) for r in data.get("refused", [])])

    def apply(self, selection: Selection, action: Action, value: str | None, requester: Requester) -> SelectionDone:
        """Preview and confirm at once (the CLI's ``--yes``: the person has asked for it outright)."""
        preview = self.preview(selection, action, value, requester)
        return self.confirm(requester, preview.token)

    # -- one code ------------------------------------------------------------------------------------
    def _apply(self, record: CodeRecord, action: Action, value: str | None, requester: Requester) -> None:
        if action == "repoint":
            assert value is not None
            self.rules.repoint(record, value, requester, self._events(LIVE_REPOINTED, record))
        elif action in ("pause", "resume"):
            self.rules.set_paused(record, action == "pause", requester,
                                  self._events(LIVE_PAUSED if action == "pause" else LIVE_RESUMED, record))
        else:
            tag_codes(self.storage, record, split_tags(value), requester, add=action == "tag")

    def _refusal(self, record: CodeRecord, action: Action, requester: Requester, live: set[str], *,
                 audit: bool) -> Refused | None:
        """Why ``record`` is not changed (``live``: the live codes among the selection), or None."""
        if action in LIVE_ACTIONS and record.id not in live:
            return Refused(code_id=record.id, zh="不是活码", en="not a live code")
        if audit:
            try:
                self.permissions.check(record, requester, "change")
            except PermissionDenied as exc:
                return Refused(code_id=record.id, zh=exc.zh, en=exc.en)
        elif not self.permissions.may_manage(record, requester):
            return Refused(code_id=record.id, zh="不是你的码", en="not yours")
        return None

    # -- reading the selection -----------------------------------------------------------------------
    def checked(self, action: Action, value: str | None) -> str | None:
        """``value`` as the action keeps it (a destination, comma-separated tags), or every problem of it."""
        if action == "repoint":
            destination = page_path(value or "")
            errors = destination_errors(destination)
            if errors:
                raise InvalidRequest(errors)
            return destination
        if action in ("tag", "untag"):
            tags = split_tags(value)
            if not tags:
                raise InvalidRequest([FieldError("tags", "请写出标签，例如 门店,春节。", "Name the tags, e.g. store,spring.")])
            errors = tag_errors(tags)
            if errors:
                raise InvalidRequest(errors)
            return ",".join(tags)
        return None

    def _resolve(self, selection: Selection) -> tuple[list[CodeRecord], list[Refused]]:
        """The selected codes (deleted ones left out), in a stable order, and the ids that name no code."""
        if selection.empty:
            raise InputError("请选择要修改的码：编号，或 tag=、campaign=、batch=。",
                             "Choose the codes to change: ids, or tag=, campaign=, batch=.")
        tags = self.storage.tags
        ids: list[str] = []
        if selection.tag:
            wanted = split_tags(selection.tag)
            for tag in wanted:
                ids += tags.codes(tag, SELECTION_MAX + 1)
        if selection.campaign:
            ids += tags.campaign_codes(selection.campaign.strip(), SELECTION_MAX + 1)
        if selection.batch:
            ids += tags.batch_codes(selection.batch.strip(), SELECTION_MAX + 1)
        ids += [i.strip() for i in selection.ids if i.strip()]
        ids = list(dict.fromkeys(ids))
        if len(ids) > SELECTION_MAX:
            raise InputError(f"一次最多修改 {SELECTION_MAX:,} 个码，请缩小范围。",
                             f"One change may touch at most {SELECTION_MAX:,} codes; narrow the selection.")
        records, refused = [], []
        for code_id in ids:
            try:
                record = get_record(self.storage, code_id)
            except NotFound as exc:
                refused.append(Refused(code_id=code_id, zh=exc.zh, en=exc.en))
                continue
            if record.status is not Status.DELETED:
                records.append(record)
        return records, refused


def tag_codes(storage: Storage, record: CodeRecord, tags: list[str], requester: Requester, *, add: bool) -> list[str]:
    """Add (or take off) ``tags`` on one code, audited as ``tagged``/``untagged``; its tags after. The caller
    has checked the permission."""
    if add:
        errors = tag_errors(list(dict.fromkeys([*storage.tags.of(record.id), *tags])))
        if errors:
            raise InvalidRequest(errors)
        changed = storage.tags.add(record.id, tags, requester.key)
    else:
        changed = storage.tags.remove(record.id, tags)
    if changed:
        storage.audit.record(requester.key, "tagged" if add else "untagged", record.id, tags=",".join(changed))
    return storage.tags.of(record.id)


__all__ = ["ACTIONS", "CONFIRM_SECONDS", "EXAMPLES", "Action", "Example", "NotLive", "NothingToConfirm", "Refused",
           "Selection", "SelectionDone", "SelectionPreview", "Selections", "tag_codes"]
