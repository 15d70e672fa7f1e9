"""The shared client: one object that makes any code through GrowingIO or WeChat.

    upstream = Upstream.from_settings(settings)      # the real servers the settings configure
    result = await upstream.make(request)            # request.via already decided
    await upstream.aclose()
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from pydantic import SecretStr

from bot.config import Settings
from bot.errors import FieldError, NotFound
from bot.models import CodeRequest, Provider, UpstreamResult
from bot.upstream.growingio import GrowingIOClient, Product
from bot.upstream.ratelimit import RateLimiter
from bot.upstream.wechat import WeChatClient

TIMEOUT = httpx.Timeout(15.0, connect=5.0)


@dataclass
class Upstream:
    wechat: WeChatClient | None
    gio: GrowingIOClient | None
    gio_product_id: str | None = None
    sandbox: bool = False
    emulators: tuple[object, ...] = ()
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Settings) -> Upstream:
        """The clients the settings configure. Never the sandbox: the process wires the emulators under
        the clients (``bot.server.upstream_for``), so this package does not import them."""
        if settings.sandbox:
            raise ValueError("the sandbox's upstream is wired by the process: use bot.server.upstream_for(settings)")
        clients: list[httpx.AsyncClient] = []
        wechat = gio = None
        if settings.wechat_configured:
            http = httpx.AsyncClient(timeout=TIMEOUT)
            clients.append(http)
            wechat = WeChatClient(http, settings.wechat_api_url, settings.wechat_appid or "",
                                  settings.wechat_secret or SecretStr(""))
        if settings.gio_configured:
            http = httpx.AsyncClient(timeout=TIMEOUT)
            clients.append(http)
            gio = GrowingIOClient(http, settings.gio_api_url, settings.gio_project_uid or "",
                                  settings.gio_client_id or None, settings.gio_token or SecretStr(""),
                                  limiter=RateLimiter(settings.gio_rate_per_second, reserve=1))
        return cls(wechat=wechat, gio=gio, gio_product_id=settings.gio_product_id, _clients=clients)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()

    async def make(self, request: CodeRequest, *, resume: bool = False) -> UpstreamResult:
        """Make the code; ``resume`` says an earlier attempt may have got as far as GrowingIO."""
        if request.provider is Provider.GIO:
            if self.gio is None:
                raise FieldError("via", "没有配置 GrowingIO，请改用 via=wechat。",
                                 "GrowingIO is not configured; use via=wechat.")
            return await self.gio.make(request, await self.product_id(request.app), resume=resume)
        if self.wechat is None:
            raise FieldError("via", "没有配置微信小程序（WECHAT_APPID/WECHAT_SECRET），请改用 GrowingIO。",
                             "No mini program is configured (WECHAT_APPID/WECHAT_SECRET); use GrowingIO.")
        if request.app and request.app not in (self.wechat.appid, self.gio_product_id):
            raise FieldError("app", f"只配置了小程序 {self.wechat.appid}。",
                             f"Only mini program {self.wechat.appid} is configured.")
        return await self.wechat.make(request)

    async def mini_programs(self) -> list[Product]:
        """The WeChat mini programs a code can be for (GrowingIO's ``minp`` products, or the one app)."""
        if self.gio is not None:
            return [p for p in await self.gio.products() if p.platform == "minp" and p.activated]
        if self.wechat is not None:
            return [Product(id=self.wechat.appid, name=self.wechat.appid, spn=self.wechat.appid, platform="minp")]
        return []

    async def product_id(self, app: str | None) -> str:
        """GrowingIO's product id for ``app`` (a product id or a WeChat AppID), or the default one."""
        wanted = app or self.gio_product_id
        products = await self.mini_programs()
        if wanted:
            for product in products:
                if wanted in (product.id, product.spn):
                    return product.id
            raise NotFound(f"GrowingIO 项目里没有小程序 {wanted}。", f"The GrowingIO project has no mini program {wanted}.",
                           field="app")
        if self.wechat is not None:
            for product in products:
                if product.spn == self.wechat.appid:
                    return product.id
        if len(products) == 1:
            return products[0].id
        raise FieldError("app", "请选择小程序（或设置 GIO_PRODUCT_ID）。", "Choose the mini program (or set GIO_PRODUCT_ID).")


__all__ = ["TIMEOUT", "Upstream"]
