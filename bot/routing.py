"""Which upstream makes a request, refusing before anything is recorded what the settings cannot make.

A campaign or channel asks for a GrowingIO tracking link: when GrowingIO is not configured the
request is refused (:class:`~bot.errors.NotConfigured`, naming the missing settings) rather than
silently made as a plain WeChat code; ``via=wechat`` says a plain code is wanted. A code whose
upstream is missing is answered, never stored as a failed code.
"""

from __future__ import annotations

from bot import links
from bot.config import Settings
from bot.errors import NotConfigured, NotFound
from bot.models import CodeRequest, Provider
from bot.quota import Notice
from bot.upstream import Upstream


def default_via(upstream: Upstream, settings: Settings, request: CodeRequest) -> Provider:
    """GrowingIO when tracking links can be made; a campaign or channel asks for one, so never WeChat then."""
    tracking = upstream.gio is not None and settings.use_gio
    # GrowingIO takes no env_version: a code for the trial/develop version comes from WeChat directly.
    if tracking and request.env_version == "release":
        return Provider.GIO
    if (request.campaign or request.channel) and upstream.gio is None:
        require_upstream(upstream, settings, Provider.GIO, request)
    return Provider.WECHAT


def require_upstream(upstream: Upstream, settings: Settings, provider: Provider, request: CodeRequest) -> None:
    """Refuse a code whose upstream the settings do not configure, saying which settings are missing."""
    if provider is Provider.GIO and upstream.gio is None:
        missing = settings.gio_missing
        zh, en = _not_configured("没有配置 GrowingIO", "GrowingIO is not configured", missing)
        zh += "。填了推广活动或渠道就是要监测链接，所以什么都没有生成。"
        en += ". A campaign or channel asks for a tracking link, so nothing was made."
        if upstream.wechat is not None:
            zh += "只要不带监测的普通小程序码，请加 via=wechat（活动和渠道只作为标签记下）。"
            en += " For a plain code without tracking add via=wechat (campaign and channel are kept as labels only)."
        raise NotConfigured(zh, en, missing, field="campaign" if request.campaign else "via")
    if provider is Provider.WECHAT and upstream.wechat is None:
        missing = settings.wechat_missing
        zh, en = _not_configured("没有配置微信小程序", "WeChat is not configured", missing)
        if request.type.counts_against_cap and upstream.gio is not None:
            zh += "。去掉 via=wechat 即可经 GrowingIO 生成监测链接（需要推广活动和渠道）。"
            en += ". Leave out via=wechat to make it as a GrowingIO tracking link (campaign and channel needed)."
        else:
            zh += "。B 码、短链、URL Link、URL Scheme 和普通 A/C 码只能由微信生成（GrowingIO 不生成它们），请设置上面的配置。"
            en += (". B codes, Short Links, URL Links, URL Schemes and plain A/C codes come only from WeChat "
                   "(GrowingIO cannot make them): set the settings above.")
        raise NotConfigured(zh, en, missing)


def require_plain_scheme(settings: Settings, request: CodeRequest) -> None:
    """Refuse a plain-text URL Scheme until the operator says it is declared: WeChat opens one only for pages
    the admin listed beforehand, and nothing would tell us otherwise (no call is made)."""
    if not request.plain or settings.minpcode_plain_scheme:
        return
    page = request.path_and_query[0] or "pages/…"
    raise NotConfigured(
        f"明文 URL Scheme 还没有启用。请小程序管理员先在「{links.PLAIN_SCHEME_SETTING_ZH}」里声明要打开的页面（这里是 "
        f"{page}），然后设置 MINPCODE_PLAIN_SCHEME=1。不想声明？去掉 plain=yes，生成 30 天内有效的加密 URL Scheme。",
        f"The plain-text URL Scheme is not enabled. The mini program's admin first declares the pages it may open "
        f"(here {page}) under {links.PLAIN_SCHEME_SETTING_EN}; then set MINPCODE_PLAIN_SCHEME=1. Rather not? Leave "
        f"out plain=yes for an encrypted URL Scheme that lasts up to 30 days.",
        ["MINPCODE_PLAIN_SCHEME"], field="plain")


async def will_create(upstream: Upstream, request: CodeRequest) -> list[Notice]:
    """What ``create=yes`` is about to create in GrowingIO, to say once the code is made (a cached read)."""
    gio = upstream.gio
    if gio is None or not request.create_missing or request.provider is not Provider.GIO:
        return []
    said: list[Notice] = []
    for value, zh, en, is_campaign in ((request.campaign, "推广活动", "campaign", True),
                                        (request.channel, "推广渠道", "channel", False)):
        try:
            if is_campaign:
                await gio.resolve_campaign(value or "", create=False, product_id=None)
            else:
                await gio.resolve_channel(value or "", create=False)
        except NotFound:
            said.append(Notice(zh=f"已在 GrowingIO 新建{zh}「{value}」。", en=f"Created the GrowingIO {en} '{value}'."))
    return said


def _not_configured(zh: str, en: str, missing: list[str]) -> tuple[str, str]:
    """The "<part> is not configured" sentence, naming the settings that are missing."""
    if missing:
        zh += f"：缺少 {'、'.join(missing)}"
        en += f": {', '.join(missing)} not set"
    return zh, en


__all__ = ["default_via", "require_plain_scheme", "require_upstream", "will_create"]

