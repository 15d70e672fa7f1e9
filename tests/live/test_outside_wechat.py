"""The ``/q/<key>`` page opened on a phone outside WeChat, over a real server on 127.0.0.1: with the plain-text
URL Scheme declared (MINPCODE_PLAIN_SCHEME=1) it leads into the router page with the key as a B code carries it
(https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/url-scheme.html); it never offers a Short
Link that has expired (a temporary one lasts 30 days,
https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/shortlink.html)."""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest

from bot.config import Settings
from bot.models import Requester
from bot.sandbox import SANDBOX_APPID
from bot.sandbox.server import ServerThread, free_port
from bot.server import create_app, open_service
from storage.clock import to_text

DESTINATION = "pages/coupon/get?id=1"
WHO = Requester(user_id="cms")
SCHEME_LINK = 'class="open" href="'


def settings(data: Path, port: int, plain: bool) -> Settings:
    return Settings(_env_file=None, minpcode_sandbox=True, minpcode_data_dir=data,
                    minpcode_public_url=f"http://127.0.0.1:{port}", minpcode_plain_scheme=plain)


def prepare(data: Path, port: int, *, expired: bool) -> tuple[str, str]:
    """A live code and a temporary Short Link for its destination (past its 30 days when ``expired``)."""

    async def make() -> tuple[str, str]:
        async with open_service(settings(data, port, plain=False)) as service:
            live = (await service.submit({"type": "B", "live": True, "page": DESTINATION}, WHO)).record
            short = (await service.submit({"type": "shortlink", "page": DESTINATION}, WHO)).record
            assert live.scene and short.link and short.expires_at
            if expired:
                service.storage.db.execute("UPDATE codes SET expires_at = ? WHERE id = ?",
                                           [to_text(datetime.now(UTC) - timedelta(days=1)), short.id])
            return live.scene, short.link

    return asyncio.run(make())


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Callable[..., tuple[str, str, str]]]:
    """``page(plain=…, expired=…)``: the /q/ page of a live code as a phone's browser gets it, with the key and
    the Short Link made for the same page."""
    servers: list[ServerThread] = []

    def open_page(*, plain: bool, expired: bool) -> tuple[str, str, str]:
        port = free_port()
        data = tmp_path / f"{plain}-{expired}"
        key, short_link = prepare(data, port, expired=expired)
        server = ServerThread(create_app(settings(data, port, plain)), port=port)
        server.start()
        servers.append(server)
        with httpx.Client(trust_env=False, timeout=30) as client:
            response = client.get(f"{server.url}/q/{key.removeprefix('k=')}",
                                  headers={"User-Agent": "Mozilla/5.0 (iPhone) Safari/604.1"})
        assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
        return response.text, key, short_link

    yield open_page
    for server in servers:
        server.stop()


def test_a_declared_plain_scheme_leads_into_the_router_page(page: Callable[..., tuple[str, str, str]]) -> None:
    text, key, short_link = page(plain=True, expired=False)
    assert text.count(SCHEME_LINK) == 2  # the button, in both languages
    href = html.unescape(text.split(SCHEME_LINK, 1)[1].split('"', 1)[0])
    assert href.startswith("weixin://dl/business/?")
    params = parse_qs(urlsplit(href).query)
    assert params["appid"] == [SANDBOX_APPID] and params["path"] == ["pages/minpcode/router"]
    # The router page reads it like a B code's scene: decodeURIComponent(query.scene) is the key.
    [query] = params["query"]
    assert query == f"scene={key.replace('=', '%3D')}" and unquote(query.split("=", 1)[1]) == key
    assert "打开小程序" in text and "Open the mini program" in text
    assert html.escape(short_link) in text and "opens only inside WeChat" in text  # still working: offered


def test_without_the_declaration_no_scheme_is_offered(page: Callable[..., tuple[str, str, str]]) -> None:
    text, _, short_link = page(plain=False, expired=False)
    assert "weixin://" not in text and SCHEME_LINK not in text
    assert html.escape(short_link) in text


def test_an_expired_short_link_is_never_offered(page: Callable[..., tuple[str, str, str]]) -> None:
    text, _, short_link = page(plain=True, expired=True)
    assert html.escape(short_link) not in text and "short-link" not in text
    assert SCHEME_LINK in text and "扫一扫" in text
