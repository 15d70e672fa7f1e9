"""The batch upload link end to end: WeCom's ``批量`` answers a one-time link; a real headless chromium opens
the page served by our server, chooses a sheet and uploads it; the dry run comes back in WeCom."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot import logs
from tests.batch.test_sheets import bombs
from tests.wecom.test_callback import USER, WeComSite, public_site

SHEET = "页面,类型,场景\npages/index/index,B,id=31\npages/index/index,B,id=32\n".encode("gb18030")


@pytest.fixture
def site(serve: Any, tmp_path: Path) -> Iterator[WeComSite]:
    with public_site(serve, tmp_path) as (wecom, _):
        yield wecom


def texts_with(site: WeComSite, needle: str, timeout: float = 20.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [t for t in site.texts() if needle in t]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no text with {needle!r}; got {site.texts()}")


def the_link(site: WeComSite) -> str:
    site.sender.send_text(USER, "批量")
    [text] = texts_with(site, "/batches/upload/")
    match = re.search(r"(http://\S+/batches/upload/\S+)", text)
    assert match is not None
    return match.group(1)


@pytest.mark.slow
def test_the_link_opens_in_a_real_browser_takes_the_sheet_once_and_the_dry_run_is_in_the_chat(
        site: WeComSite, browser_page: Any, tmp_path: Path) -> None:
    link = the_link(site)
    page = browser_page
    page.goto(link)
    assert "上传表格" in page.locator("h1").inner_text()
    page.set_input_files("#file", files=[{"name": "门店.csv", "mimeType": "text/csv", "buffer": SHEET}])
    page.click("#send")
    page.wait_for_function("document.getElementById('result').textContent.includes('Received')", timeout=20_000)
    [dry] = texts_with(site, "试运行")
    assert "门店.csv" in dry and "2 行可以生成" in dry and "gb18030" in dry.lower()

    page.reload()  # one use only: the page says so before a file is picked
    assert "already used" in page.locator("#result").inner_text()
    assert page.locator("#form").is_hidden()

    page.goto(link[:-3] + "xyz")  # a forged signature
    assert "not valid" in page.locator("#result").inner_text()
    assert page.locator("#form").is_hidden()


def test_the_page_refuses_a_file_over_the_limit_and_an_unreadable_one(site: WeComSite) -> None:
    link = the_link(site)
    with httpx.Client(trust_env=False, timeout=30) as http:
        big = http.post(link, content=b"x" * (5 * 1024 * 1024 + 1), headers={"X-Filename": "big.csv"})
        assert big.status_code == 413 and "5 MB" in big.json()["message"]
        bad = http.post(link, content=b"nothing,we,know\n1,2,3\n", headers={"X-Filename": "bad.csv"})
        assert bad.status_code == 400 and "header" in bad.json()["message"]
        good = http.post(link, content=SHEET, headers={"X-Filename": "ok.csv"})  # refusals did not spend the link
        assert good.status_code == 200 and good.json()["ok"] is True
    texts_with(site, "试运行")


@pytest.mark.slow  # the sheet is read in a worker process
def test_a_sheet_the_chat_could_not_take_leaves_the_link_working(site: WeComSite) -> None:
    link = the_link(site)
    site.emu.fail_next("/cgi-bin/message/send", 60020)  # the dry run cannot reach the chat: not from this IP
    with httpx.Client(trust_env=False, timeout=30) as http:
        failed = http.post(link, content=SHEET, headers={"X-Filename": "ok.csv"})
        assert failed.status_code == 502 and "upload it again with this link" in failed.json()["message"]
        again = http.post(link, content=SHEET, headers={"X-Filename": "ok.csv"})
        assert again.status_code == 200 and again.json()["ok"] is True
        assert http.post(link, content=SHEET, headers={"X-Filename": "ok.csv"}).status_code == 409
    texts_with(site, "试运行")


@pytest.mark.slow  # the sheet is read in a worker process
def test_a_bomb_is_refused_with_400_naming_the_limit_while_healthz_keeps_answering(site: WeComSite) -> None:
    link = the_link(site)
    base = link.split("/batches/")[0]
    answers: list[httpx.Response] = []
    for label, (data, words) in bombs().items():
        poster = threading.Thread(target=lambda d=data: answers.append(httpx.post(
            link, content=d, headers={"X-Filename": "bomb.xlsx"}, trust_env=False, timeout=60)))
        poster.start()
        with httpx.Client(trust_env=False, timeout=5) as http:
            while poster.is_alive():
                started = time.monotonic()
                assert http.get(base + "/healthz").status_code == 200
                assert time.monotonic() - started < 1, label
                time.sleep(0.02)
        poster.join()
        answer = answers.pop()
        assert answer.status_code == 400 and answer.json()["ok"] is False, (label, answer.text)
        assert words in answer.json()["message"], label
    with httpx.Client(trust_env=False, timeout=30) as http:  # the refusals did not spend the link
        assert http.post(link, content=SHEET, headers={"X-Filename": "ok.csv"}).status_code == 200


def test_a_non_ascii_token_is_refused_like_any_bad_token(site: WeComSite) -> None:
    """Issue 22: ``hmac.compare_digest`` refuses a non-ASCII str, which answered 500."""
    link = the_link(site)
    base, token = link.rsplit("/upload/", 1)
    bent = token[:-1] + "%C3%A9"  # é in the signature
    with httpx.Client(trust_env=False, timeout=30) as http:
        assert http.get(f"{base}/upload/{bent}").status_code == 403
        assert http.post(f"{base}/upload/{bent}", content=SHEET, headers={"X-Filename": "ok.csv"}).status_code == 403
        assert http.get(f"{base}/upload/%C3%A9.%C3%A9").status_code == 403
        assert http.get(f"{base}/{bent}.zip").status_code == 404
        assert http.get(f"{base}/%C3%A9.%C3%A9.zip").status_code == 404


def test_the_access_line_shows_a_signed_route_with_its_token_redacted(site: WeComSite,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 22: a working upload link (30 minutes, the WeCom user id in its payload) was logged whole."""
    link = the_link(site)
    token = link.rsplit("/upload/", 1)[1]
    payload, _, signature = token.partition(".")
    root = logging.getLogger()
    level = root.level
    handler = logs.setup("INFO")  # what `minpcode serve` installs: our formatter on stderr
    try:
        capsys.readouterr()
        with httpx.Client(trust_env=False, timeout=30) as http:
            assert http.get(link).status_code == 200
            assert http.get(link.replace("/upload/", "/") + ".zip").status_code == 404
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    deadline = time.monotonic() + 5
    access: list[str] = []
    while time.monotonic() < deadline and len(access) < 2:
        access += [line for line in capsys.readouterr().err.splitlines() if "minpcode.access" in line]
        time.sleep(0.05)
    assert any('"GET /batches/upload/***" 200' in line for line in access), access
    assert any('"GET /batches/***.zip" 404' in line for line in access), access
    assert not any(payload in line or signature in line for line in access), access


def test_a_valid_page_says_thirty_minutes_and_lists_the_columns_with_a_sample_sheet(site: WeComSite) -> None:
    """Issue 24: the page gave no hint of the link's life, the columns a sheet takes, or a sample."""
    link = the_link(site)
    with httpx.Client(trust_env=False, timeout=30) as http:
        page = http.get(link)
        assert page.status_code == 200
        assert "30 分钟" in page.text and "30 minutes" in page.text
        assert re.search(r"about (29|30) min left", page.text), page.text
        assert "page（页面）" in page.text and "scene（场景）" in page.text and "expire_days" in page.text
        [sample] = re.findall(r'href="([^"]+sample\.csv)"', page.text)
        got = http.get(sample)
        assert got.status_code == 200 and "page" in got.text


@pytest.mark.slow  # the sheet is read in a worker process
def test_a_used_link_says_so_before_anyone_picks_a_file(site: WeComSite, browser_page: Any) -> None:
    """Issue 24: a spent link still showed a working-looking form; the refusal came only after the upload."""
    link = the_link(site)
    with httpx.Client(trust_env=False, timeout=30) as http:
        assert http.post(link, content=SHEET, headers={"X-Filename": "ok.csv"}).status_code == 200
        again = http.get(link)
        assert again.status_code == 410 and "already used" in again.text and "已经用过" in again.text
        assert "30 minutes" not in again.text
    browser_page.goto(link)
    assert "already used" in browser_page.locator("#result").inner_text()
    assert browser_page.locator("#form").is_hidden()
