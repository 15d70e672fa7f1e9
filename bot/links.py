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

import re
from urllib.parse import quote

# Starlette route patterns, mounted by bot/server.py and handlers/upload_page.py.
CODE_IMAGE_ROUTE = "/codes/{code_id:str}.png"
POSTER_ROUTE = "/posters/{poster_id:str}.{format:str}"
SAMPLE_SHEET_ROUTE = "/batches/sample.csv"
UPLOAD_ROUTE = "/batches/upload/{token:str}"
DOWNLOAD_ROUTE = "/batches/{token:str}.zip"
# Mounted by handlers/linkpage.py: the QR's route before the page's, whose {key} would take ".png" too.
LIVE_QR_ROUTE = "/q/{key:str}.png"
LIVE_PAGE_ROUTE = "/q/{key:str}"

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


__all__ = ["CODE_IMAGE_ROUTE", "DOWNLOAD_ROUTE", "LIVE_PAGE_ROUTE", "LIVE_QR_ROUTE", "POSTER_ROUTE",
           "PLAIN_SCHEME_BASE", "PLAIN_SCHEME_SETTING_EN", "PLAIN_SCHEME_SETTING_ZH",
           "SAMPLE_SHEET_ROUTE", "UPLOAD_ROUTE", "code_image_path", "code_image_url", "download_url", "live_page_path",
           "live_page_url", "live_qr_path", "plain_scheme", "poster_path", "poster_url", "sample_sheet_url", "upload_url"]
