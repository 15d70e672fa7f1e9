"""The plain-link form of live codes in a real headless browser: ``/q/<key>``, its QR image, the verification file."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import zxingcpp
from PIL import Image
from pydantic import SecretStr

from bot.config import Settings
from bot.models import Requester
from bot.sandbox.server import ServerThread, free_port
from bot.server import create_app, open_service
from bot.service import Service

KEY = "cms-page-0a1b2c3d4e5f"
DESTINATION = "pages/coupon/get?id=1&from=poster"


@dataclass
class Running:
    url: str
    service: Service
    short_link: str


def settings(data: Path, port: int) -> Settings:
    return Settings(_env_file=None, minpcode_sandbox=True, minpcode_data_dir=data,
                    minpcode_public_url=f"http://127.0.0.1:{port}", minpcode_api_keys=SecretStr(f"cms:{KEY}"))


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    port = free_port()

    async def short_link_first() -> str:
        async with open_service(settings(tmp_path, port)) as service:
            made = await service.submit({"type": "shortlink", "page": DESTINATION}, Requester(user_id="cms"))
            assert made.record.link
            return made.record.link

    # Playwright's sync API keeps an event loop running in this thread: the service runs in its own.
    with ThreadPoolExecutor(1) as pool:
        link = pool.submit(asyncio.run, short_link_first()).result()
    app = create_app(settings(tmp_path, port))
    with ServerThread(app, port=port) as server:
        yield Running(server.url, app.state.service, link)


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    with httpx.Client(trust_env=False, timeout=30) as client:
        response = client.post(url + "/api/weapp/qrcode", json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.slow
def test_the_q_page_says_how_to_open_it_in_wechat_and_counts_every_scan(running: Running, browser_page: Any,
                                                                        browser: Any) -> None:
    made = post(running.url, {"path": DESTINATION, "live": True})
    short = made["scene"][2:]
    response = browser_page.goto(f"{running.url}/q/{short}")
    assert response.status == 200 and response.headers["cache-control"] == "no-store"
    assert browser_page.title() == "请用微信扫码打开 · Open in WeChat"
    headings = browser_page.locator("h1").all_inner_texts()
    assert headings == ["请用微信扫码打开", "Open this in WeChat"]
    assert "扫一扫" in browser_page.locator("#zh").inner_text()
    assert browser_page.locator("code.short-link").inner_text() == running.short_link
    assert browser_page.evaluate("document.querySelector('img').naturalWidth") > 0  # the QR image loaded

    english = browser.new_context(locale="en-US")
    try:
        page = english.new_page()
        page.goto(f"{running.url}/q/{made['scene']}")
        assert page.locator("h1").first.inner_text() == "Open this in WeChat"
    finally:
        english.close()

    view = running.service.live.view(running.service.get(made["id"]))
    assert view is not None and view.scans.total == 2  # two page loads; the image itself is no scan

    missing = browser_page.goto(f"{running.url}/q/0000000000")
    assert missing.status == 404 and browser_page.locator("h1").first.inner_text() == "没有这个码"


def test_the_q_image_is_a_square_qr_of_our_link_and_the_verification_file_is_served(running: Running) -> None:
    made = post(running.url, {"path": DESTINATION, "live": True})
    short = made["scene"][2:]
    with httpx.Client(trust_env=False, timeout=30) as client:
        png = client.get(f"{running.url}/q/{short}.png")
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(png.content))
        assert image.width == image.height
        (found,) = zxingcpp.read_barcodes(image)
        assert found.text == f"{running.url}/q/{short}" and found.format == zxingcpp.BarcodeFormat.QRCode
        assert client.get(f"{running.url}/q/0000000000.png").status_code == 404

        # WeChat checks the file in the rule's last directory: /q/<name>.txt for https://<host>/q/ (and the root
        # for a rule without one); neither may reach the /q/{key} page.
        for where in ("/Zx9Yw8Vu7T.txt", "/q/Zx9Yw8Vu7T.txt"):
            missing = client.get(f"{running.url}{where}")
            assert (missing.status_code, missing.headers["content-type"].split(";")[0]) == (404, "text/plain")
        running.service.live.save_site_file("Zx9Yw8Vu7T.txt", b"6a1f0c9e8d7b", Requester(user_id="admin"))
        for where in ("/Zx9Yw8Vu7T.txt", "/q/Zx9Yw8Vu7T.txt"):
            served = client.get(f"{running.url}{where}")
            assert (served.status_code, served.content, served.headers["content-type"].split(";")[0]) == (
                200, b"6a1f0c9e8d7b", "text/plain"), where
        assert client.get(f"{running.url}/..%2Fminpcode.db.txt").status_code == 404
        assert client.get(f"{running.url}/q/..%2Fminpcode.db.txt").status_code == 404
        assert client.get(f"{running.url}/q/{short}").status_code == 200  # the page itself is where it was


def test_the_q_page_of_a_printed_code_is_never_refused_and_unknown_keys_are_limited(running: Running) -> None:
    made = post(running.url, {"path": DESTINATION, "live": True})
    with httpx.Client(trust_env=False, timeout=30) as client:
        began = time.monotonic()
        pages = [client.get(f"{running.url}/q/{made['scene'][2:]}").status_code for _ in range(80)]
        elapsed = time.monotonic() - began
        assert pages == [200] * 80  # phones behind one address, beyond the 60 of a burst
        unknown = [client.get(f"{running.url}/q/000000000{n % 10}").status_code for n in range(80)]
    assert unknown[0] == 404 and 429 in unknown
    view = running.service.live.view(running.service.get(made["id"]))
    # the counts are kept to the per-address rate: a burst of 60, then 10 a second
    assert view is not None and 60 <= view.scans.total <= min(80, 60 + 10 * elapsed + 1)
