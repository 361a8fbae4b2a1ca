"""Headless Chromium for tests: Debian's own build, driven through Playwright.

The browser is the system's (`TWOOTER_CHROMIUM`, else `chromium` on the
PATH); Playwright's downloaded browsers are never used. The machine may have
no internet, so the flags below stop Chromium's own background traffic, and
every request that is not for the server under test (gravatar images) is
aborted at once instead of waiting on a network that is not there.
"""
from __future__ import annotations

import os
import shutil
from typing import Callable, Iterator

import pytest

from tests.servers import unavailable

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Generous for a shared 2-core machine; a healthy step takes milliseconds.
STEP_TIMEOUT_MS = 15_000
LOOPBACK_PREFIXES = ("http://127.0.0.1:", "http://localhost:")


def chromium_path() -> str | None:
    return os.environ.get("TWOOTER_CHROMIUM") or shutil.which("chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator:
    executable = chromium_path()
    if not executable or not os.access(executable, os.X_OK):
        unavailable("Chromium is not installed (apt-get install chromium, or run `bash tests/run`)")
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        unavailable(f"Playwright for Python is not installed: {error}")
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except PlaywrightError as error:
            unavailable(f"Chromium at {executable} did not start: {error}")
        try:
            yield chromium
        finally:
            chromium.close()


def _abort_off_machine_requests(route) -> None:
    route.abort()


@pytest.fixture
def new_page(browser) -> Iterator[Callable]:
    """Pages in fresh contexts (own cookies), closed after the test.

    `new_page(javascript=False)` gives a browser with JavaScript off, to check
    that every flow still works as plain forms and links.
    """
    contexts = []

    def open_page(javascript: bool = True):
        context = browser.new_context(java_script_enabled=javascript)
        context.set_default_timeout(STEP_TIMEOUT_MS)
        context.route(lambda url: not url.startswith(LOOPBACK_PREFIXES), _abort_off_machine_requests)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    """A Chromium tab with JavaScript (and so htmx) on."""
    return new_page()
