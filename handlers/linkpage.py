"""The second form of a live code: a plain QR of ``<MINPCODE_PUBLIC_URL>/q/<key>`` (扫普通链接二维码打开小程序).

    GET /q/{key}.png   the square QR of the link (no WeChat call, no quota)
    GET /q/{key}       what a scanner other than WeChat opens: a small page that leads into the mini program with
                       WeChat's plain-text URL Scheme when the operator declared it (MINPCODE_PLAIN_SCHEME), says how
                       to open the code in WeChat, and offers a Short Link made for the same page while it still
                       works (it opens only inside WeChat); counted as a scan
    GET /q/{name}.txt  the verification file WeChat asks the domain to serve (``minpcode verify-file FILE``),
    GET /{name}.txt    at the rule's last directory and at the root

WeChat itself never loads the page once the admin's prefix rule is set: it opens the mini program's router
page with the URL in ``q``, and the router asks the resolver like a B code would (docs/live-codes.md).

A key that exists is always answered, as the resolver answers it (handlers/api/resolver.py); only keys that
do not exist cost the client address a token.
"""

from __future__ import annotations

import asyncio
import html
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from bot import links
from bot.concurrency import PerClientLimit
from bot.live import link_qr, normal_key
from bot.service import Service
from handlers.http import client_of, request_lang

PAGE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'"}

_STYLE = ("body{font-family:system-ui,-apple-system,'PingFang SC','Noto Sans CJK SC',sans-serif;max-width:32rem;"
          "margin:2rem auto;padding:0 1rem;line-height:1.6;color:#222}h1{font-size:1.4rem}"
          "code{display:block;padding:.6rem;background:#f3f3f3;border-radius:6px;word-break:break-all}"
          "img{width:12rem;height:12rem;display:block;margin:1rem auto}.en{color:#555}"
          "a.open{display:block;margin:1rem 0;padding:.8rem;border-radius:6px;background:#07c160;color:#fff;"
          "text-align:center;text-decoration:none;font-weight:600}")


def _page(title: str, body: str, lang: str) -> str:
    return (f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>")


def open_in_wechat(key: str, short_link: str | None, lang: str, scheme: str | None = None) -> str:
    """The page for a known key: a button into the mini program (``scheme``, the plain-text URL Scheme of the
    router page, when declared), how to open it in WeChat, both languages (the asker's first)."""
    zh = "<section lang=\"zh-CN\" id=\"zh\"><h1>请用微信扫码打开</h1>"
    en = "<section lang=\"en\" id=\"en\" class=\"en\"><h1>Open this in WeChat</h1>"
    if scheme:
        # A tap opens WeChat from the phone's browser ("通过 URL Scheme 跳转到微信时，可能会触发系统弹框询问"):
        # a link rather than a script, which the page's CSP does not run anyway.
        target = html.escape(scheme)
        zh += f"<a class=\"open\" href=\"{target}\">打开小程序</a><p>点上面的按钮会打开微信并进入小程序（手机上需要已安装微信）。</p>"
        en += (f"<a class=\"open\" href=\"{target}\">Open the mini program</a><p>The button opens WeChat at the mini "
               "program (WeChat must be installed on the phone).</p>")
    zh += "<p>这是一个微信小程序的码，只能在微信里打开：打开微信 → 右上角「+」→「扫一扫」，再扫一次这个码。</p>"
    en += ("<p>This code opens a WeChat mini program, which only WeChat can open: open WeChat, tap + (top right) → "
           "Scan, and scan this code again.</p>")
    if short_link:
        link = html.escape(short_link)
        # A Short Link opens only inside WeChat ("适用于微信内拉起小程序",
        # https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/shortlink.html).
        zh += f"<p>或者复制下面的小程序链接，在微信里发给自己后点开（它只能在微信里打开）：</p><code class=\"short-link\">{link}</code>"
        en += (f"<p>Or copy this mini-program link, send it to yourself in WeChat and tap it there (it opens only "
               f"inside WeChat):</p><code>{link}</code>")
    zh += "</section>"
    en += "</section>"
    image = f'<img alt="QR" src="{html.escape(links.live_qr_path(key))}">'
    title = "请用微信扫码打开 · Open in WeChat"
    return _page(title, image + (zh + en if lang == "zh" else en + zh), lang)


def unknown(lang: str) -> str:
    zh = "<section lang=\"zh-CN\"><h1>没有这个码</h1><p>这个链接不对应任何码，请检查后重试。</p></section>"
    en = "<section lang=\"en\" class=\"en\"><h1>No such code</h1><p>This link names no code; check it and try again.</p></section>"
    return _page("没有这个码 · No such code", zh + en if lang == "zh" else en + zh, lang)


class LinkPages:
    """The front-end of ``/q/`` and the verification file (``bot.ports.FrontEnd``)."""

    name = "links"

    def __init__(self, service: Service) -> None:
        self.service = service
        self.public_url = service.settings.minpcode_public_url
        self.limit = PerClientLimit(service.settings.minpcode_resolver_rate)

    def routes(self) -> list[BaseRoute]:
        return [
            Route(links.LIVE_QR_ROUTE, self.qr, methods=["GET"]),
            # before the page's: WeChat checks /q/<name>.txt for the rule https://<host>/q/ (links.site_file_urls)
            Route(links.LIVE_SITE_FILE_ROUTE, self.site_file, methods=["GET"]),
            Route(links.LIVE_PAGE_ROUTE, self.page, methods=["GET"]),
            Route(links.SITE_FILE_ROUTE, self.site_file, methods=["GET"]),
        ]

    async def start(self) -> None:
        """Nothing runs in the background."""

    async def stop(self) -> None:
        """Nothing to stop."""

    def link(self, key: str) -> str:
        return links.live_page_url(self.public_url, key)

    async def qr(self, request: Request) -> Response:
        key = normal_key(request.path_params["key"])
        if key is None or not self.service.live.is_live(key):
            return Response("not found", status_code=404, media_type="text/plain")
        png = await asyncio.to_thread(link_qr, self.link(key))
        return Response(png, media_type="image/png", headers={"Cache-Control": "public, max-age=86400"})

    async def page(self, request: Request) -> Response:
        lang = request_lang(request)
        client = client_of(request)
        found = self.service.live.resolve(request.path_params["key"], source="web", client=client,
                                          referer=request.headers.get("referer"))
        if found is None or not found.live:
            if not self.limit.allow(client):  # keys that do not exist: the per-address limit
                return HTMLResponse(unknown(lang), status_code=429, headers={**PAGE_HEADERS, "Retry-After": "60"})
            return HTMLResponse(unknown(lang), status_code=404, headers=PAGE_HEADERS)
        destination = (found.page or "") + (f"?{found.query}" if found.query else "")
        short_link = self.service.live.short_link_for(destination)
        # Into the router page with the key as a B code carries it (scene=k%3D…), so the router page needs no
        # change; the scan is counted again when the router asks the resolver.
        scheme = self.service.plain_scheme(self.service.live.rules.router_page,
                                           "scene=" + quote(found.key, safe=""))
        return HTMLResponse(open_in_wechat(found.key, short_link, lang, scheme), headers=PAGE_HEADERS)

    async def site_file(self, request: Request) -> Response:
        body = self.service.live.site_file(request.path_params["name"] + ".txt")
        if body is None:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(body, media_type="text/plain", headers={"Cache-Control": "no-cache"})


def link_front_end(service: Service) -> LinkPages:
    return LinkPages(service)


__all__ = ["LinkPages", "link_front_end", "open_in_wechat"]
