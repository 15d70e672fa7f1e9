"""The public links people open (a code's image, a poster, a batch's upload page and zip, the sample sheet,
a live code's plain link ``/q/<key>``, WeChat's plain-text URL Scheme).

One module builds each link and names the route that serves it, so what a chat, the CLI or the HTTP API
hands out and what ``minpcode serve`` answers cannot drift apart: every path is derived from its route.
It is a leaf of the core, not of ``handlers/``: the process mounts the routes (bot/server.py), the front-ends
build the links, and the core may not import ``handlers/`` (docs/architecture.md, the first wall).

``base`` is the address people reach (``Settings.people_url``, or the API's own public URL); a trailing
``/`` is ignored. The signed tokens themselves are bot/batch/links.py's.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote, urlsplit

from bot.text import Text

# Starlette route patterns, mounted by bot/server.py and handlers/upload_page.py.
CODE_IMAGE_ROUTE = "/codes/{code_id:str}.png"
POSTER_ROUTE = "/posters/{poster_id:str}.{format:str}"
SAMPLE_SHEET_ROUTE = "/batches/sample.csv"
UPLOAD_ROUTE = "/batches/upload/{token:str}"
DOWNLOAD_ROUTE = "/batches/{token:str}.zip"
# Mounted by handlers/linkpage.py: the QR's route before the page's, whose {key} would take ".png" too.
LIVE_QR_ROUTE = "/q/{key:str}.png"
LIVE_PAGE_ROUTE = "/q/{key:str}"
# WeChat's domain verification file for the plain-link rule, mounted by handlers/linkpage.py at the rule's last
# directory (before the page's route, whose {key} would take "<name>.txt") and at the site's root.
LIVE_SITE_FILE_ROUTE = "/q/{name:str}.txt"
SITE_FILE_ROUTE = "/{name:str}.txt"

_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def _path(route: str, **params: str) -> str:
    """``route`` with each ``{name}`` / ``{name:convertor}`` replaced by ``params[name]``."""
    return _PARAM.sub(lambda m: params[m.group(1)], route)


def _url(base: str, path: str) -> str:
    return base.rstrip("/") + path


def code_image_path(code_id: str) -> str:
    return _path(CODE_IMAGE_ROUTE, code_id=code_id)


def code_image_url(base: str, code_id: str) -> str:
    """A code's image (served as PNG whatever it was stored as)."""
    return _url(base, code_image_path(code_id))


def poster_path(poster_id: str, fmt: str) -> str:
    # The id is random: the link is the capability.
    return _path(POSTER_ROUTE, poster_id=poster_id, format=fmt)


def poster_url(base: str, poster_id: str, fmt: str) -> str:
    """A stored poster, ``fmt`` being its format (png, pdf)."""
    return _url(base, poster_path(poster_id, fmt))


def sample_sheet_url(base: str) -> str:
    """The sample sheet the batch forms link."""
    return _url(base, SAMPLE_SHEET_ROUTE)


def upload_url(base: str, token: str) -> str:
    """A one-time page to upload a sheet (the token from ``UploadLinks.issue``)."""
    return _url(base, _path(UPLOAD_ROUTE, token=token))


def download_url(base: str, token: str) -> str:
    """A finished batch's zip (the token from ``UploadLinks.issue_download``)."""
    return _url(base, _path(DOWNLOAD_ROUTE, token=token))


def _live_key(key: str) -> str:
    # A live code's key is stored as ``k=`` + 10 characters (bot/scenes.py); its link carries the 10.
    return key.removeprefix("k=")


def live_page_path(key: str) -> str:
    return _path(LIVE_PAGE_ROUTE, key=_live_key(key))


def live_page_url(base: str, key: str) -> str:
    """A live code's plain link (扫普通链接二维码打开小程序): what its plain QR encodes."""
    return _url(base, live_page_path(key))


def live_rule(base: str) -> str:
    """The prefix rule the mini program's admin enters (扫普通链接二维码打开小程序): every plain link is under it.

    It ends with ``/`` so WeChat matches the links below it (子路径匹配), and its scheme and host are the
    links' own: WeChat matches the scheme too, so an http link never opens under an https rule
    (https://developers.weixin.qq.com/miniprogram/introduction/qrcode.html, 二维码跳转规则)."""
    return _url(base, LIVE_PAGE_ROUTE.partition("{")[0])


def site_file_urls(base: str, name: str) -> list[str]:
    """Where the verification file ``name`` is served: first where WeChat checks it for :func:`live_rule`,
    then the site's root (for a rule without a directory).

    WeChat's rule: the file goes in the last directory the rule's URL names, or at the host's top level
    when it names none (放置于URL中声明的最后一级子目录下，若无子目录，则放置于host所属服务器的顶层目录下;
    https://developers.weixin.qq.com/miniprogram/introduction/qrcode.html, 校验文件). For ``https://<host>/q/``
    that is ``/q/<name>``."""
    stem = name.removesuffix(".txt")
    return [_url(base, _path(LIVE_SITE_FILE_ROUTE, name=stem)), _url(base, _path(SITE_FILE_ROUTE, name=stem))]


# What WeChat asks before a plain link opens the mini program, said wherever live codes' plain links are set up
# (minpcode verify-file, docs/live-codes.md). From https://developers.weixin.qq.com/miniprogram/introduction/qrcode.html
# (开放范围, 二维码跳转规则, 配置流程) and, for the router page's call, the 服务器域名 rules of
# https://developers.weixin.qq.com/miniprogram/dev/framework/ability/network.html.
def plain_link_requirements(base: str, router_page: str) -> list[Text]:
    rule = live_rule(base)
    return [
        Text(zh=f"在小程序后台「开发管理 → 开发设置 → 扫普通链接二维码打开小程序」添加规则 {rule}，小程序功能页面填 {router_page}。",
             en=f"In the mini program's admin (开发管理 → 开发设置 → 扫普通链接二维码打开小程序) add the rule {rule} with "
                f"the page {router_page}."),
        Text(zh=f"{router_page} 必须在已发布的线上版本里：先发布带路由页的版本。",
             en=f"{router_page} must exist in the released version: release a version with the router page first."),
        Text(zh="设置时填「测试链接」（最多 5 个，如一个活码的 /q/ 链接），用管理员、开发者或体验者的微信扫它们试；"
                "规则「发布」后，所有人扫码才会打开小程序。",
             en="While setting it up, add test links (up to 5, such as a live code's /q/ link) and scan them with an "
                "admin's, developer's or tester's WeChat; only once the rule is published does everyone's scan open "
                "the mini program."),
        Text(zh="码里链接的协议和域名须与规则相同：http 的链接不匹配 https 的规则；规则的域名须 ICP 备案。",
             en="The links in the codes must have the rule's scheme and host: an http link does not match an https "
                "rule; the rule's domain must be ICP-registered."),
        Text(zh="个人主体的小程序不能用（只对企业、媒体、政府及其他组织开放）。",
             en="Not available to mini programs of a personal subject (only to companies, media, government and "
                "other organisations)."),
        Text(zh="路由页用 wx.request 请求 minpcode：这个域名要加到「服务器域名 → request合法域名」，须是 https 且已 ICP 备案。",
             en="The router page calls minpcode with wx.request: add this host under 服务器域名 → request合法域名; it "
                "must be https and ICP-registered."),
    ]


def plain_link_problems(base: str) -> list[Text]:
    """What in ``base`` (MINPCODE_PUBLIC_URL) keeps live codes from working in WeChat: a request合法域名 is https
    only and never an IP address, and it (as the plain-link rule's domain) must be ICP-registered."""
    parts = urlsplit(base.strip())
    problems = []
    if parts.scheme != "https":
        problems.append(Text(
            zh=f"MINPCODE_PUBLIC_URL 是 {parts.scheme or '?'}:// 地址：路由页的 wx.request 只能请求 https 的 request合法域名，"
               "码里的链接也要和 https 规则同协议。改成 https 地址（见 deploy.md 的反向代理）。",
            en=f"MINPCODE_PUBLIC_URL is an {parts.scheme or '?'}:// address: the router page's wx.request reaches only https "
               "request合法域名, and the links in the codes must share the https rule's scheme. Use an https address "
               "(the reverse proxy in deploy.md)."))
    try:
        ipaddress.ip_address(parts.hostname or "")
    except ValueError:
        if parts.hostname != "localhost":
            return problems
    problems.append(Text(
        zh=f"MINPCODE_PUBLIC_URL 的主机是 {parts.hostname}：微信只接受已 ICP 备案的域名，不接受 IP 地址或本机地址。",
        en=f"MINPCODE_PUBLIC_URL's host is {parts.hostname}: WeChat takes only an ICP-registered domain, never an IP "
           "address or localhost."))
    return problems


def live_qr_path(key: str) -> str:
    """The square QR of a live code's plain link (the page's image, on this server)."""
    return _path(LIVE_QR_ROUTE, key=_live_key(key))


# WeChat's plain-text URL Scheme (明文 URL Scheme, since 2023-12-19): built by us, no API call, no expiry, once the
# admin declares the page under 小程序管理后台 → 设置 → 隐私与安全 → 明文 scheme 拉起此小程序
# (https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/url-scheme.html).
PLAIN_SCHEME_BASE = "weixin://dl/business/"
PLAIN_SCHEME_SETTING_ZH = "小程序管理后台 → 设置 → 隐私与安全 → 明文 scheme 拉起此小程序"
PLAIN_SCHEME_SETTING_EN = ("the mini program's admin console → 设置 (Settings) → 隐私与安全 (Privacy and security) → "
                           "明文 scheme 拉起此小程序 (open by plain-text scheme)")


def plain_scheme(appid: str, path: str, query: str = "", env_version: str = "release") -> str:
    """``weixin://dl/business/?appid=…&path=…&query=…&env_version=…``: the page ``path`` (no query, no leading
    ``/``) with ``query`` URL-encoded as WeChat asks ("需要url_encode"); ``env_version`` only when it is not the
    release, which is what a link without it opens (our reading: the parameter is optional)."""
    parts = [f"appid={quote(appid, safe='')}", f"path={quote(path, safe='/')}"]
    if query:
        parts.append(f"query={quote(query, safe='')}")
    if env_version != "release":
        parts.append(f"env_version={quote(env_version, safe='')}")
    return PLAIN_SCHEME_BASE + "?" + "&".join(parts)


__all__ = ["CODE_IMAGE_ROUTE", "DOWNLOAD_ROUTE", "LIVE_PAGE_ROUTE", "LIVE_QR_ROUTE", "LIVE_SITE_FILE_ROUTE",
           "PLAIN_SCHEME_BASE", "PLAIN_SCHEME_SETTING_EN", "PLAIN_SCHEME_SETTING_ZH", "POSTER_ROUTE",
           "SAMPLE_SHEET_ROUTE", "SITE_FILE_ROUTE", "UPLOAD_ROUTE", "code_image_path", "code_image_url",
           "download_url", "live_page_path", "live_page_url", "live_qr_path", "live_rule", "plain_link_problems",
           "plain_link_requirements", "plain_scheme", "poster_path", "poster_url", "sample_sheet_url",
           "site_file_urls", "upload_url"]
