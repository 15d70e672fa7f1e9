"""GrowingIO's Open API for mini-program tracking links (监测链接) and their A/C codes.

Every request passes one shared rate limiter (GrowingIO allows 10 requests/second for this API
family). Creating a link is not idempotent, so it is never blindly retried: after a timeout the
client looks the link up by its (project-unique) name before anyone tries again.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from bot.errors import NotFound, RateLimited, UpstreamBusy, UpstreamError, UpstreamRejected
from bot.messages import gio_bad_answer, gio_error
from bot.models import CodeRequest, Provider, UpstreamResult
from bot.upstream.ratelimit import RateLimiter
from bot.upstream.wire import image_type, send

log = logging.getLogger("minpcode.upstream.gio")

# GrowingIO's documented limit ("每秒最多10次"). No margin is needed: RateLimiter counts a call from when
# its answer came back, after GrowingIO saw it, so no second of GrowingIO's ever holds more than this.
GIO_RATE_PER_SECOND = 10
LIST_TTL = 60.0
MAX_RETRY_AFTER = 5.0
# Pauses before each look-up of a link whose create failed (timeout, 5xx): a slow GrowingIO may
# finish creating it after we stopped waiting, and an empty first look must not mean "not created".
LOOKUP_DELAYS = (0.0, 1.0, 3.0)
Created = Literal["campaigns", "channels"]  # the lists a create changes


class _GioModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Product(_GioModel):
    id: str
    name: str = ""
    spn: str | None = None
    platform: str | None = None
    activated: bool = True


class Campaign(_GioModel):
    id: str
    name: str
    productId: str | None = None


class Channel(_GioModel):
    id: str
    name: str


class MinpLinkCreate(_GioModel):
    name: str
    productId: str
    redirectUrl: str
    campaignId: str
    channelId: str
    buildQrCode: bool = True
    codeType: str = "A"
    utmMedium: str | None = None
    utmContent: str | None = None
    utmTerm: str | None = None
    comments: str | None = None


class MinpLink(_GioModel):
    id: str
    linkId: str | None = None
    name: str
    trackingUrl: str | None = None
    redirectUrl: str | None = None
    campaignId: str | None = None
    campaignName: str | None = None
    channelId: str | None = None
    channelName: str | None = None
    qrCode: str | None = None
    status: str | None = None


_M = TypeVar("_M", bound=_GioModel)
_WHAT = {"Product": ("应用的 id", "the product's id"), "Campaign": ("推广活动的 id 和名称", "the campaign's id and name"),
         "Channel": ("推广渠道的 id 和名称", "the channel's id and name"),
         "MinpLink": ("监测链接的 id 和名称", "the tracking link's id and name")}


def _parse(model: type[_M], data: Any) -> _M:
    """One object of a 2xx answer; one without the fields we need is GrowingIO's error, said plainly."""
    try:
        return model.model_validate(data)
    except ValidationError:
        zh, en = _WHAT[model.__name__]
        raise gio_bad_answer(zh, en, str(data)) from None


class GrowingIOClient:
    """``client_id`` (the project public key) is sent as ``X-Client-Id`` only when given: the current
    Open API document needs only ``Authorization``; the older one also asked for the header."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, project_uid: str, client_id: str | None,
                 token: SecretStr, *, limiter: RateLimiter | None = None) -> None:
        self._http = http
        self._base = f"{base_url.rstrip('/')}/api/v1/projects/{project_uid}/meta/"
        self._client_id = client_id
        self._token = token
        self.limiter = limiter or RateLimiter(GIO_RATE_PER_SECOND, reserve=1)
        self._lists: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        # Told after we create a campaign or channel, so caches above this client (the forms' lists,
        # bot/lookups.py) drop theirs where the creation happens, whichever front-end asked for it.
        self._on_created: list[Callable[[Created], None]] = []

    def on_created(self, listener: Callable[[Created], None]) -> None:
        """Call ``listener`` with "campaigns" or "channels" after each attempt to create one."""
        self._on_created.append(listener)

    def _created(self, what: Created) -> None:
        self._lists.pop(what, None)
        for listener in self._on_created:
            listener(what)

    # -- the Open API, one method per endpoint ------------------------------------------------
    async def products(self) -> list[Product]:
        return [_parse(Product, p) for p in await self._list("products")]

    async def campaigns(self, *, fresh: bool = False) -> list[Campaign]:
        return [_parse(Campaign, c) for c in await self._list("campaigns", fresh=fresh)]

    async def channels(self, *, fresh: bool = False) -> list[Channel]:
        return [_parse(Channel, c) for c in await self._list("channels", fresh=fresh)]

    async def minplinks(self) -> list[MinpLink]:
        return [_parse(MinpLink, m) for m in await self._list("minplinks", fresh=True)]

    async def create_campaign(self, name: str, product_id: str | None = None) -> Campaign:
        body: dict[str, Any] = {"name": name}
        if product_id:
            body["productId"] = product_id
        try:
            return _parse(Campaign, await self._call("POST", "campaigns", json=body))
        except UpstreamError:
            # Someone (or an earlier attempt of ours) may have made it meanwhile: the same name is the same campaign.
            found = await self._adopt_named(self.campaigns, name)
            if found is None:
                raise
            return found
        finally:
            self._created("campaigns")

    async def create_channel(self, name: str) -> Channel:
        try:
            return _parse(Channel, await self._call("POST", "channels", json={"name": name}))
        except UpstreamError:
            found = await self._adopt_named(self.channels, name)
            if found is None:
                raise
            return found
        finally:
            self._created("channels")

    @staticmethod
    async def _adopt_named(listing: Any, name: str) -> Any:
        try:
            return next((item for item in await listing(fresh=True) if item.name == name), None)
        except UpstreamError:
            return None

    async def create_minplink(self, link: MinpLinkCreate) -> tuple[MinpLink, bytes | None]:
        """Create the link and download its code at once: the ``qrCode`` URL expires in minutes."""
        try:
            created = _parse(MinpLink, await self._call("POST", "minplinks", json=link.model_dump(exclude_none=True)))
        except UpstreamError as exc:
            # Whatever GrowingIO said (it documents no error bodies), an earlier attempt — before a crash,
            # a timeout, or a create that landed late — may have made this very link: look it up by its
            # project-unique name and adopt it only when it is the same link, never someone else's namesake.
            existing = await self._find_after_failure(link.name, patient=isinstance(exc, UpstreamBusy))
            if existing is None or not _same_link(existing, link):
                raise
            log.info("gio link %s already exists with these parameters; using it", existing.id)
            created = existing
        image = await self.download(created.qrCode) if link.buildQrCode and created.qrCode else None
        return created, image

    async def find_minplink(self, name: str) -> MinpLink | None:
        return next((m for m in await self.minplinks() if m.name == name), None)

    async def _find_after_failure(self, name: str, *, patient: bool = True) -> MinpLink | None:
        """A create that timed out may still be under way at GrowingIO: look more than once (``patient``);
        after a refusal one look is enough (nothing is under way)."""
        for pause in LOOKUP_DELAYS if patient else (0.0,):
            await asyncio.sleep(pause)
            try:
                found = await self.find_minplink(name)
            except UpstreamError:
                continue
            if found is not None:
                return found
        return None

    async def download(self, url: str) -> bytes:
        # Not through the limiter: the 10/s limit is the Open API's (/meta/,
        # https://help.growingio.com/v3/developer-manual/api-reference/query-productid/definition/minp-api), and
        # qrCode is a signed bucket download outside it (our assumption); limiting it halved links per second.
        response = await send(self._http, "gio", "GET", url)
        if response.status_code != 200 or image_type(response.content) is None:
            raise UpstreamBusy("gio", response.status_code, "GrowingIO 的二维码图片下载失败（链接可能已过期）。",
                               "Could not download GrowingIO's code image (its link may have expired).")
        return response.content

    # -- what the core asks for -----------------------------------------------------------------
    async def resolve_campaign(self, value: str, *, create: bool, product_id: str | None) -> Campaign:
        found = _match(await self.campaigns(), value) or _match(await self.campaigns(fresh=True), value)
        if found:
            return found
        if create:
            return await self.create_campaign(value, product_id)
        raise _not_found("推广活动", "campaign", value, [c.name for c in await self.campaigns()])

    async def resolve_channel(self, value: str, *, create: bool) -> Channel:
        found = _match(await self.channels(), value) or _match(await self.channels(fresh=True), value)
        if found:
            return found
        if create:
            return await self.create_channel(value)
        raise _not_found("推广渠道", "channel", value, [c.name for c in await self.channels()])

    async def make(self, request: CodeRequest, product_id: str, *, resume: bool = False) -> UpstreamResult:
        """Create the tracking link with its code. ``resume``: an earlier attempt may have created it."""
        campaign = await self.resolve_campaign(request.campaign or "", create=request.create_missing,
                                               product_id=product_id)
        channel = await self.resolve_channel(request.channel or "", create=request.create_missing)
        name = request.name or request.suggested_name()
        existing = await self.find_minplink(name) if resume else None
        if existing is not None:
            log.info("gio link %s already exists from an earlier attempt; not creating another", existing.id)
            link, image = existing, (await self.download(existing.qrCode) if existing.qrCode else None)
        else:
            link, image = await self.create_minplink(MinpLinkCreate(
                name=name, productId=product_id, redirectUrl=request.page,
                campaignId=campaign.id, channelId=channel.id, buildQrCode=True, codeType=request.type.value,
                utmMedium=request.medium, utmContent=request.content, utmTerm=request.term,
                comments=request.comments,
            ))
        if image is None:
            raise UpstreamRejected("gio", "no-image", "GrowingIO 创建了监测链接，但没有返回二维码。",
                                   "GrowingIO created the tracking link but returned no code image.")
        return UpstreamResult(
            provider=Provider.GIO, image=image, mime=image_type(image), tracking_url=link.trackingUrl,
            link_id=link.linkId or link.id, campaign_id=campaign.id, campaign_name=campaign.name,
            channel_id=channel.id, channel_name=channel.name,
        )

    # -- the wire ---------------------------------------------------------------------------------
    async def _list(self, path: str, *, fresh: bool = False) -> list[dict[str, Any]]:
        cached = self._lists.get(path)
        if cached and not fresh and time.monotonic() - cached[0] < LIST_TTL:
            return cached[1]
        data = await self._call("GET", path)
        if data is None:
            items: list[dict[str, Any]] = []
        elif isinstance(data, list):
            items = data
        else:
            raise gio_bad_answer("列表", "a list", str(data))
        self._lists[path] = (time.monotonic(), items)
        return items

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": self._token.get_secret_value()}
        if self._client_id:
            headers["X-Client-Id"] = self._client_id
        for attempt in (1, 2):
            async with self.limiter:
                response = await send(self._http, "gio", method, self._base + path, headers=headers, **kwargs)
            if 200 <= response.status_code < 300:  # any 2xx is success (201 Created, 204 No Content...)
                if not response.content.strip():
                    return None
                try:
                    return response.json()
                except ValueError:
                    raise gio_bad_answer("可读的 JSON", "readable JSON", response.text) from None
            error = gio_error(response.status_code, _loose_json(response.content),
                              _retry_after(response.headers.get("Retry-After")), text=response.text)
            log.warning("gio %s %s answered %s: %s", method, path, response.status_code, error.raw)
            # A 429 means the request was not processed, so one wait-and-retry cannot duplicate anything.
            if isinstance(error, RateLimited) and attempt == 1 and (error.retry_after or 1) <= MAX_RETRY_AFTER:
                await asyncio.sleep(error.retry_after or 1)
                continue
            raise error
        raise AssertionError("unreachable")


def _loose_json(content: bytes) -> Any:
    """The JSON in a body of any kind (an object, a bare string...), or None."""
    try:
        return json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def _same_link(found: MinpLink, wanted: MinpLinkCreate) -> bool:
    return (found.redirectUrl, found.campaignId, found.channelId) == (
        wanted.redirectUrl, wanted.campaignId, wanted.channelId)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


_Named = TypeVar("_Named", Campaign, Channel)


def _match(items: list[_Named], value: str) -> _Named | None:
    """By id first, then by exact name, then by case-insensitive name."""
    for item in items:
        if item.id == value:
            return item
    for item in items:
        if item.name == value:
            return item
    lowered = value.casefold()
    return next((item for item in items if item.name.casefold() == lowered), None)


def _not_found(label_zh: str, label_en: str, value: str, names: list[str]) -> NotFound:
    close = difflib.get_close_matches(value, names, n=3, cutoff=0.3)
    hint_zh = f"相近的有：{'、'.join(close)}。" if close else ""
    hint_en = f" Closest: {', '.join(close)}." if close else ""
    return NotFound(
        f"GrowingIO 里没有叫「{value}」的{label_zh}。{hint_zh}如需新建，请加上 create=yes（命令行 --create）。",
        f"GrowingIO has no {label_en} named '{value}'.{hint_en} To create it, add create=yes (CLI: --create).",
        field=label_en,
    )


__all__ = ["Campaign", "Channel", "Created", "GrowingIOClient", "MinpLink", "MinpLinkCreate", "Product"]
