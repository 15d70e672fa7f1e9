"""A real headless browser for tests of pages people open (the /q/ page, the batch upload page).

Debian's chromium driven by Playwright for Python (``pip install playwright``; ``playwright install``
is never run: the browser is the system's). In CI (``CI=true``) a missing browser is a failure, since
.ci/run installs it; elsewhere the tests that need it are skipped and say why.

    def test_x(browser_page: Page, serve) -> None:
        browser_page.goto(url)
        assert browser_page.locator("h1").first.inner_text() == "..."

tests/conftest.py imports the fixtures, so every test module can ask for them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = os.environ.get("MINPCODE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def _chromium_missing() -> str | None:
    """Why no browser can run here, or None."""
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        return f"chromium is not installed ({CHROMIUM}); apt-get install -y chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed; pip install playwright"
    return None


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless chromium for one test (Playwright's sync API).

    Per test, not per session: while Playwright's sync API is open it keeps an event loop running in
    the thread, and pytest-asyncio's tests that follow could not start theirs. A launch costs ~1 s.
    """
    missing = _chromium_missing()
    if missing is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the browser tests: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    executable = CHROMIUM if os.path.exists(CHROMIUM) else str(shutil.which("chromium"))
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, args=ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def browser_page(browser: Any) -> Iterator[Any]:
    """A fresh page (its own context: no cookies or storage from other tests), Chinese first by default."""
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


__all__ = ["browser", "browser_page"]
