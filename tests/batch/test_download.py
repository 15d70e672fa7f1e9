"""A batch's zip by its signed download link, end to end: WeCom's emulator and our real server on loopback ports.

When the zip is over WeCom's file limit (lowered here through ``WeComBatches.zip_max_bytes``) or its upload
fails, the chat gets one text with ``/batches/<token>.zip``; that link, fetched over HTTP from our server, is
the zip (it opens, manifest inside) and works more than once; an expired, tampered, upload-kind or unknown
token gets a bilingual 4xx page.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.batch.engine import BatchEngine
from bot.links import download_url
from handlers.wecom.batches import WeComBatches
from tests.wecom.test_batches import ROWS, wait_texts
from tests.wecom.test_callback import USER, WeComSite, public_site


@dataclass
class Site:
    wecom: WeComSite
    batches: WeComBatches
    public: str


@pytest.fixture
def site(serve: Any, tmp_path: Path) -> Iterator[Site]:
    with public_site(serve, tmp_path) as (wecom, app):
        [front_end] = [f for f in app.state.front_ends if f.name == "wecom"]
        yield Site(wecom, front_end.conversation.batches, str(wecom.service.settings.people_url))


def run_batch(site: Site) -> str:
    """A five-row batch, started; the text that carries the download link."""
    site.wecom.sender.send_text(USER, ROWS)
    wait_texts(site.wecom, lambda t: "试运行" in t)
    site.wecom.sender.send_text(USER, "开始")
    return wait_texts(site.wecom, lambda t: ".zip" in t and "/batches/" in t, timeout=30)


def link_in(text: str) -> str:
    match = re.search(r"(http://\S+/batches/[^/\s]+\.zip)", text)
    assert match is not None, text
    return match.group(1)


def assert_zip_with_manifest(response: httpx.Response, batch_id: str, scan: Callable[[bytes], Any]) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == f'attachment; filename="minpcode-{batch_id}.zip"'
    assert response.headers["cache-control"] == "private, no-store"
    with zipfile.ZipFile(io.BytesIO(response.content)) as z:
        assert z.testzip() is None
        assert "manifest.csv" in z.namelist()
        images = [n for n in z.namelist() if not n.startswith("manifest.")]
        assert sorted(scan(z.read(n)).scene for n in images) == [f"id={i}" for i in range(1, 6)]


def assert_refused(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert "链接" in response.text and "link" in response.text and "Traceback" not in response.text


def test_a_zip_over_the_limit_comes_as_a_link_that_downloads_twice(site: Site, scan: Callable[[bytes], Any]) -> None:
    site.batches.zip_max_bytes = 1000  # smaller than five PNG codes and a manifest
    text = run_batch(site)
    assert len(text.encode()) <= 2048
    assert "超过企业微信 20 MB 的文件上限，请在 24 小时内从这里下载" in text and "download it within 24 hours" in text
    assert text.index("压缩包") < text.index("The zip")  # Chinese first in WeCom
    assert not [m for m in site.wecom.emu.sent_messages if m.msgtype == "file"]
    link = link_in(text)
    assert link.startswith(site.public + "/batches/")
    [batch] = site.batches.engine.recent(limit=1)
    with httpx.Client(timeout=20) as http:
        assert_zip_with_manifest(http.get(link), batch.id, scan)
        assert_zip_with_manifest(http.get(link), batch.id, scan)  # a phone's failed first try may be retried


def test_a_failed_upload_offers_the_link_and_bad_tokens_are_refused(site: Site,
                                                                   scan: Callable[[bytes], Any]) -> None:
    site.wecom.emu.fail_next("/cgi-bin/media/upload", -1)  # WeCom's "system busy"
    text = run_batch(site)
    assert "没能作为文件发出" in text and "could not be sent as a file" in text
    link = link_in(text)
    [batch] = site.batches.engine.recent(limit=1)
    engine: BatchEngine = site.batches.engine
    links = engine.links
    token = link.rsplit("/", 1)[1].removesuffix(".zip")
    payload, _, signature = token.partition(".")
    now, links.clock = links.clock, lambda: time.time() - 2 * 24 * 3600
    late = links.issue_download(batch.id)  # issued two days ago, by the server's own signer
    links.clock = now
    with httpx.Client(timeout=20) as http:
        assert_zip_with_manifest(http.get(link), batch.id, scan)
        tampered = f"{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
        assert_refused(http.get(download_url(site.public, tampered)), 404)
        assert_refused(http.get(download_url(site.public, late)), 410)
        assert_refused(http.get(download_url(site.public, links.issue_download("no-such-batch"))), 404)
        upload_kind = links.issue("wecom", USER)  # an upload link's token opens no zip
        assert_refused(http.get(download_url(site.public, upload_kind)), 404)


def test_without_a_public_address_the_chat_is_told_so_and_given_the_cli_pointer(site: Site) -> None:
    site.batches.zip_max_bytes = 1000
    site.batches.deliver.public_url = None  # as a Deliverer built without MINPCODE_PUBLIC_URL
    site.wecom.sender.send_text(USER, ROWS)
    wait_texts(site.wecom, lambda t: "试运行" in t)
    site.wecom.sender.send_text(USER, "开始")
    text = wait_texts(site.wecom, lambda t: "MINPCODE_PUBLIC_URL" in t, timeout=30)
    [batch] = site.batches.engine.recent(limit=1)
    assert f"minpcode batch {batch.id}" in text and "/batches/" not in text and "没有设置" in text
