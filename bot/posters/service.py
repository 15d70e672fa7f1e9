"""Posters of codes, for every front-end: find the template, reuse a stored poster, render once, store.

    posters = service.posters
    made = await posters.make(code_id, {"template": "a4", "title": "春季大促"}, requester)   # PosterMade
    both = await posters.for_new(code_fields, {"template": "a4", "footer": "{name}"}, requester)  # NewWithPoster
    planned = await posters.plan_new(code_fields, {"template": "a4"}, requester)  # NewPlan: checked, nothing spent
    posters.templates()                       # built-in, then the team's
    await posters.add_template(name, layout_json, background_png, requester)   # admins (and the CLI)

A poster of a code that exists never spends A/C quota silently (:func:`bot.posters.plan_code_image`):
its stored image is reused when it prints sharp enough; otherwise a B code gets a sharper copy for
free, and an A/C code gets one only with ``sharper=True`` (the person's consent); ``sharper=False`` prints
the current image, and with neither :class:`~bot.posters.SharperCopyNeeded` says what it costs. A screen
template (``moments``) takes an A/C code's current image unless a copy is asked for. A sharper copy is
made through :meth:`Service.submit`, so it is recorded, counted in the ledger and reused like any other;
it names its original (``copy_of``), so lists and summaries show the original only.

Each poster is stored once per key (code, template as it is now, filled texts, logo, format, bleed):
asking again serves the stored bytes. A batch row asking for a poster goes through the same two steps
as ``for_new``: :meth:`Posters.plan_new` (dry run and submit), then :meth:`Posters.make`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot.codes import Codes, Submission
from bot.concurrency import KeyedLocks
from bot.errors import FieldError, MinpcodeError, NotFound
from bot.media import sniff
from bot.models import TYPE_WORDS, WIDTH_MAX, CodeRecord, CodeRequest, CodeType, Provider, Requester, Status
from bot.permissions import Permissions
from bot.posters import (
    CodePlan,
    PosterFormat,
    PosterRequest,
    PosterTemplate,
    SharperCopyNeeded,
    all_templates,
    draw_poster,
    find_template,
    load_logo,
    load_template,
    plan_code_image,
    record_values,
    sharpness,
    team_template,
)
from bot.quota import Notice
from storage import PosterRecord, Storage

# Posters drawn and logos checked at once, each in a worker process that may take up to its budget's memory
# (bot/posters/render.py, images.py): a few at a time keeps a batch's memory, or a flood of logos', bounded.
RENDERS_AT_ONCE = 2
WAIT_SECONDS = 120.0


class PosterInfo(BaseModel):
    """A stored poster, without its bytes (history and App Home list these)."""

    id: str
    code_id: str
    template: str
    format: PosterFormat
    mime: str
    size: int
    width_px: int
    height_px: int
    dpi: int
    printed_code_id: str  # the code on the poster: the asked one, or its sharper copy
    created_at: datetime
    screen: bool = False  # a screen template's (moments): pixels for a phone, no dpi to speak of

    @property
    def filename(self) -> str:
        return f"minpcode-{self.code_id}-{self.template}.{self.format}"

    def describe(self, lang: str = "zh") -> str:
        dpi = "" if self.screen else f", {self.dpi} dpi"
        size = f"{self.width_px}×{self.height_px} px{dpi}, {self.size / 1024 / 1024:.1f} MB"
        return f"海报 {self.template}（{self.format.upper()}，{size}）" if lang == "zh" else \
            f"poster {self.template} ({self.format.upper()}, {size})"


class PosterMade(BaseModel):
    """A poster and how it came about."""

    info: PosterInfo
    data: bytes
    record: CodeRecord  # the code the poster is of
    reused: bool = False  # served from the store, nothing rendered
    sharper_copy: CodeRecord | None = None  # the sharper copy printed instead of the stored image
    notices: list[Notice] = []

    def text(self, lang: str = "zh") -> str:
        head = self.info.describe(lang)
        if self.sharper_copy is not None:
            head += (f"；印的是清晰版 {self.sharper_copy.id}（{self.sharper_copy.width} 像素）" if lang == "zh"
                     else f"; printed from the sharper copy {self.sharper_copy.id} ({self.sharper_copy.width} px)")
        return head


class NewPlan(BaseModel):
    """A checked ``new … poster=…``: the poster to make, and the code to submit for it."""

    poster: PosterRequest
    target: CodeRequest


class NewWithPoster(BaseModel):
    """``new … poster=…``: the code as :meth:`Service.submit` answered, and its poster or why not."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    submission: Submission
    poster: PosterMade | None = None
    poster_error: MinpcodeError | None = None


def info(record: PosterRecord) -> PosterInfo:
    return PosterInfo(id=record.id, code_id=record.code_id, template=record.template, format=record.format,
                      mime=record.mime, size=record.size, width_px=record.width_px, height_px=record.height_px,
                      dpi=record.dpi, printed_code_id=str(record.request.get("printed_code_id") or record.code_id),
                      created_at=record.created_at, screen=record.request.get("kind") == "screen")


class Posters:
    """``service.posters``: posters of the codes that ``codes`` makes and reads."""

    def __init__(self, codes: Codes, storage: Storage, permissions: Permissions) -> None:
        self.codes = codes
        self.permissions = permissions
        self.store = storage.posters
        self._locks: KeyedLocks[str] = KeyedLocks()
        self._renders = asyncio.Semaphore(RENDERS_AT_ONCE)
        self._team: dict[str, tuple[datetime, PosterTemplate]] = {}

    # -- templates ----------------------------------------------------------------------------------
    def team_templates(self) -> dict[str, PosterTemplate]:
        """The team's templates, validated; rebuilt only when one changes."""
        out: dict[str, PosterTemplate] = {}
        for row in self.store.list_templates():
            cached = self._team.get(row.name)
            if cached is None or cached[0] != row.updated_at:
                cached = (row.updated_at, team_template(row.name, row.layout, self.store.template_background(row),
                                                        stored=True))
                self._team[row.name] = cached
            out[row.name] = cached[1]
        return out

    def templates(self) -> list[PosterTemplate]:
        """Built-in templates, then the team's by name (``t.size_text()`` says each one's size)."""
        return all_templates(self.team_templates())

    def template(self, name: str) -> PosterTemplate:
        return find_template(name, self.team_templates())

    async def add_template(self, name: str, layout: bytes | str, background: bytes | None,
                           requester: Requester) -> PosterTemplate:
        """Add or replace a team template; InvalidRequest names every problem of the layout file."""
        self.permissions.require_admin(requester, "poster_template_add", template=name)
        template = await load_template(name, layout, background)
        text = layout.decode("utf-8-sig") if isinstance(layout, bytes) else layout
        mime = (sniff(background) or "image/png") if background is not None else "image/png"
        self.store.save_template(template.name, text, background, mime, created_by=requester.key)
        return template

    def remove_template(self, name: str, requester: Requester) -> None:
        self.permissions.require_admin(requester, "poster_template_remove", template=name)
        if not self.store.delete_template(name.strip().lower()):
            raise NotFound(f"没有名为 {name} 的团队模板。", f"There is no team template named {name}.", field="template")
        self._team.pop(name.strip().lower(), None)

    # -- logos --------------------------------------------------------------------------------------
    async def keep_logo(self, data: bytes) -> str:
        """Check a logo (PNG, JPEG, or SVG drawn to PNG) in a worker and keep it; its SHA-256 is what a poster
        request names. OverBudget when checking it overruns :data:`~bot.posters.LOGO_BUDGET` (a bomb)."""
        async with self._renders:
            data = await load_logo(data)
        return self.store.put_logo(data, sniff(data) or "image/png")

    async def set_default_logo(self, data: bytes | None, requester: Requester) -> str | None:
        """The team's default logo (None to have none); its hash."""
        self.permissions.require_admin(requester, "default_logo")
        digest = await self.keep_logo(data) if data is not None else None
        self.store.set_default_logo(digest, updated_by=requester.key)
        return digest

    def default_logo(self) -> str | None:
        return self.store.default_logo()

    # -- reading ------------------------------------------------------------------------------------
    def for_code(self, code_id: str) -> list[PosterInfo]:
        return [info(r) for r in self.store.for_code(code_id)]

    def counts(self, code_ids: list[str]) -> dict[str, int]:
        return self.store.counts(code_ids)

    def get(self, poster_id: str) -> tuple[PosterInfo, bytes]:
        """A stored poster and its bytes (ids from outside are bounded before the read)."""
        poster_id = poster_id.strip()
        record = self.store.get(poster_id) if 0 < len(poster_id) <= 64 else None
        if record is None:
            raise NotFound(f"没有编号为 {poster_id[:64]} 的海报。", f"There is no poster with id {poster_id[:64]}.")
        return info(record), self.store.data(record)

    # -- making -------------------------------------------------------------------------------------
    def request(self, data: PosterRequest | Mapping[str, Any]) -> PosterRequest:
        """The poster request with its logo: the one it names, else the team's default."""
        request = data if isinstance(data, PosterRequest) else PosterRequest.parse(data)
        digest = request.logo_sha256 or self.default_logo()
        return request.model_copy(update={"logo_sha256": digest}) if digest != request.logo_sha256 else request

    async def _with_logo(self, data: PosterRequest | Mapping[str, Any], logo: bytes | None) -> PosterRequest:
        """:meth:`request`, with the logo a person sent (checked and kept) when there is one."""
        if logo is None:
            return self.request(data)
        request = data if isinstance(data, PosterRequest) else PosterRequest.parse(data)  # a bad request first
        return request.model_copy(update={"logo_sha256": await self.keep_logo(logo)})

    async def make(self, code_id: str, data: PosterRequest | Mapping[str, Any], requester: Requester, *,
                   logo: bytes | None = None, sharper: bool | None = None) -> PosterMade:
        """A poster of an existing code: from the store when made before, else rendered and stored.
        ``sharper``: the person's answer about a sharper A/C copy (True, False: the current image, None)."""
        request = await self._with_logo(data, logo)
        record = self.codes.get(code_id)
        _check_printable(record)
        template = self.template(request.template)
        values = record_values(record)
        key = request.key(record.id, template.fingerprint(), values)  # FieldError for a bad placeholder
        async with self._locks.hold(key):
            stored = self._stored(key, sharper)
            if stored is not None:
                return PosterMade(info=info(stored), data=self.store.data(stored), record=record, reused=True,
                                  notices=_dpi_notice(template))
            code_image, _ = self.codes.image(record.id)
            plan, copy, notices, soft = await self._code_plan(record, template, code_image, sharper)
            if plan is not None:
                copy, notices = await self._sharper_copy(record, plan, requester)
            if copy is not None:
                code_image, _ = self.codes.image(copy.id)
            made = await self._render(record, copy, code_image, template, request, _soft_key(key) if soft else key,
                                      requester)
            return made.model_copy(update={"notices": notices + _dpi_notice(template)})

    def _stored(self, key: str, sharper: bool | None) -> PosterRecord | None:
        """A poster rendered before: the one of the full key; or, unless a sharper copy is asked for, one printed
        from a current image that was too small (kept under its own key, so ``sharp=yes`` later is not served it)."""
        found = self.store.find(key)
        if found is None and sharper is not True:
            found = self.store.find(_soft_key(key))
        return found

    async def check(self, code_id: str, data: PosterRequest | Mapping[str, Any], *,
                    sharper: bool | None = None) -> None:
        """What :meth:`make` would refuse, found without spending or rendering anything: a code with no
        image, a placeholder it cannot fill, a sharper A/C copy without consent (SharperCopyNeeded)."""
        request = self.request(data)
        record = self.codes.get(code_id)
        _check_printable(record)
        template = self.template(request.template)
        key = request.key(record.id, template.fingerprint(), record_values(record))
        if self._stored(key, sharper) is None:
            await self._code_plan(record, template, self.codes.image(record.id)[0], sharper)

    async def plan_new(self, fields: Mapping[str, Any], data: PosterRequest | Mapping[str, Any],
                       requester: Requester, *, logo: bytes | None = None, long_scene: bool = False) -> NewPlan:
        """Every rule of ``new … poster=…`` checked, nothing spent: the poster request, and the code to
        submit (at the width the template needs, or the identical one that exists). A batch's dry run
        checks each row with this, and its run submits ``target`` at batch priority."""
        request = await self._with_logo(data, logo)
        template = self.template(request.template)
        code_fields = dict(fields)
        prepared = await self.codes.prepare(code_fields, requester=requester, long_scene=long_scene)
        if prepared.type.is_link:
            raise _no_image(prepared.type)
        request.fields.filled(_prepared_values(prepared))  # placeholders checked before anything is spent
        plan = plan_code_image(prepared.type, template, None)
        sized = dict(code_fields)
        if code_fields.get("width") in (None, ""):
            sized["width"] = plan.width
        if plan.transparent and code_fields.get("transparent") in (None, ""):
            sized["transparent"] = True
        target = await self.codes.prepare(sized, requester=requester, long_scene=long_scene)
        if await self.codes.existing(target) is None and await self.codes.existing(prepared) is not None:
            target = prepared  # the identical code exists: its poster decides about a sharper copy
        return NewPlan(poster=request, target=target)

    async def for_new(self, fields: Mapping[str, Any], data: PosterRequest | Mapping[str, Any],
                      requester: Requester, *, logo: bytes | None = None, sharper: bool | None = None,
                      timeout: float = WAIT_SECONDS, long_scene: bool = False) -> NewWithPoster:
        """``new … poster=…``: the code made at the width the template needs (or the identical one
        reused), then its poster. Every rule of the code and the poster request is checked before any
        upstream call (:meth:`plan_new`); a poster that cannot be made after the code was (a text that
        does not fit) comes back as ``poster_error`` beside the code."""
        planned = await self.plan_new(fields, data, requester, logo=logo, long_scene=long_scene)
        submission = await self.codes.submit(planned.target, requester, timeout=timeout, long_scene=long_scene,
                                             name_asked=fields.get("name"))
        record: CodeRecord = submission.record
        if record.status is not Status.DONE:
            return NewWithPoster(submission=submission)
        try:
            poster = await self.make(record.id, planned.poster, requester, sharper=sharper)
        except MinpcodeError as exc:
            return NewWithPoster(submission=submission, poster_error=exc)
        return NewWithPoster(submission=submission, poster=poster)

    # -- helpers ------------------------------------------------------------------------------------
    async def _code_plan(self, record: CodeRecord, template: PosterTemplate, code_image: bytes,
                         sharper: bool | None) -> tuple[CodePlan | None, CodeRecord | None, list[Notice], bool]:
        """How to get the code's image for this template: as stored (None, None), from a sharper copy made
        before (None, copy), or from a new sharper copy (plan, None); SharperCopyNeeded without an answer.
        Then what the current image reaches when it is printed though too small, and whether it is
        (the poster is then stored under :func:`_soft_key`)."""
        # WeChat answers a few pixels short of the width asked for: a code asked for at the width
        # this template needs is as sharp as WeChat makes it, and is used as it is.
        if record.width >= plan_code_image(record.type, template, None).width:
            return None, None, [], False
        try:
            plan = plan_code_image(record.type, template, code_image, sharper=sharper)
        except SharperCopyNeeded:
            copy = await self._existing_copy(record, template)  # a sharper copy made before is free
            if copy is None:
                raise
            return None, copy, [], False
        if plan.chosen:
            copy = await self._existing_copy(record, template)  # free, and sharper than the current image
            if copy is not None:
                return None, copy, [], False
            return None, None, _soft_notice(template, plan), True
        return (None, None, [], False) if plan.reuse else (plan, None, [], False)

    def _copy_request(self, record: CodeRecord, plan: CodePlan) -> dict[str, Any]:
        data = record.code_request().model_dump()
        data["width"] = plan.width
        data["transparent"] = bool(data.get("transparent")) or plan.transparent
        if record.provider is Provider.GIO:
            data["name"] = None  # GrowingIO names are unique: the copy gets a free one
        if data.get("live"):
            # A live code's copy is the same B code (router page, the same key) at a larger width, so it
            # scans to the live code and follows its destination; it is an image, not a second live code,
            # and the key is the live code's: registering it again is what failed (issue 22).
            data.update(live=False, destination=None, expires=None)
        return data

    async def _existing_copy(self, record: CodeRecord, template: PosterTemplate) -> CodeRecord | None:
        plan = plan_code_image(record.type, template, None)
        if plan.width <= record.width:
            return None
        prepared = await self.codes.prepare(self._copy_request(record, plan))
        found = await self.codes.existing(prepared)
        return found if found is not None and found.status is Status.DONE and found.image_sha256 else None

    async def _sharper_copy(self, record: CodeRecord, plan: CodePlan,
                            requester: Requester) -> tuple[CodeRecord, list[Notice]]:
        submission = await self.codes.submit(self._copy_request(record, plan), requester, timeout=WAIT_SECONDS,
                                             copy_of=record.id)
        copy = submission.record
        if copy.status is not Status.DONE or not copy.image_sha256:
            why = copy.error_message
            raise MinpcodeError(
                "清晰版没能生成" + (f"：{why.zh}" if why else "，请稍后再试。"),
                "The sharper copy could not be made" + (f": {why.en}" if why else "; try again later."))
        return copy, list(submission.notices)

    async def _render(self, record: CodeRecord, copy: CodeRecord | None, code_image: bytes,
                      template: PosterTemplate, request: PosterRequest, key: str, requester: Requester) -> PosterMade:
        logo = self.store.logo(request.logo_sha256) if request.logo_sha256 else None
        printed = copy or record
        async with self._renders:
            data = await draw_poster(code_image, printed.type, template, request.fields,
                                     record_values=record_values(record), logo=logo, fmt=request.format,
                                     bleed=request.bleed)
        width, height = template.pixel_size(request.bleed)
        stored = self.store.save(
            record.id, key, template=template.name, fmt=request.format, data=data, mime=request.mime,
            width_px=width, height_px=height, dpi=template.dpi,
            request=request.model_dump(mode="json") | {"printed_code_id": printed.id, "kind": template.kind},
            created_by=requester.key)
        return PosterMade(info=info(stored), data=data, record=record, sharper_copy=copy)


def _dpi_notice(template: PosterTemplate) -> list[Notice]:
    """A code printed larger than WeChat's largest image (1280 px ≈ 10.8 cm at 300 dpi) says what it reaches."""
    if template.kind != "print" or template.code_pixels_needed() <= WIDTH_MAX:
        return []
    best = sharpness(template).best_dpi
    cm = round(template.code_inches * 2.54, 1)
    return [Notice(zh=f"这个模板的码印出来 {cm:g} 厘米宽，微信最大的图（{WIDTH_MAX} 像素）在这个尺寸只有 {best:g} dpi"
                      f"（不足 {template.dpi} dpi），近看会略软。",
                   en=f"This template prints the code {cm:g} cm wide; WeChat's largest image ({WIDTH_MAX} px) reaches "
                      f"only {best:g} dpi at that size (below {template.dpi} dpi), so it is slightly soft up close.")]


def _no_image(kind: CodeType) -> FieldError:
    zh, en = TYPE_WORDS[kind]
    return FieldError("poster", f"{zh}没有图片，不能做海报。", f"{en[0].upper() + en[1:]} has no image, so it cannot have a poster.")


def _soft_key(key: str) -> str:
    """The key of a poster printed from a current image too small for its template (sharp=no, or a screen's)."""
    return f"{key}:current"


def _soft_notice(template: PosterTemplate, plan: CodePlan) -> list[Notice]:
    """The current image printed by choice: what it reaches (print only; a phone image has no dpi)."""
    if template.kind != "print":
        return []
    need = plan.sharpness
    return [Notice(zh=f"按要求用现有图片（{need.image_pixels} 像素）印，只有 {need.image_dpi:g} dpi（模板要 {template.dpi} dpi），"
                      "近看会发虚。",
                   en=f"Printed from the current image ({need.image_pixels} px) as asked: {need.image_dpi:g} dpi (the "
                      f"template wants {template.dpi} dpi), so it is soft up close.")]


def _check_printable(record: CodeRecord) -> None:
    if record.type.is_link:
        raise _no_image(record.type)
    if record.status is Status.DELETED:
        raise NotFound(f"码 {record.id} 已删除。", f"Code {record.id} is deleted.")
    if record.status is not Status.DONE or not record.image_sha256:
        raise NotFound(f"码 {record.id} 还没有图片（{record.status.value}），稍后再做海报。",
                       f"Code {record.id} has no image yet ({record.status.value}); make its poster later.")


def _prepared_values(prepared: CodeRequest) -> dict[str, str | None]:
    return {"name": prepared.name, "campaign": prepared.campaign, "channel": prepared.channel,
            "page": prepared.page, "scene": prepared.scene}


__all__ = ["NewPlan", "NewWithPoster", "PosterInfo", "PosterMade", "Posters", "info"]
