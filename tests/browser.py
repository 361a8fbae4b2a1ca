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


# Runs in every document before its own scripts: what the browser refuses under
# the Content-Security-Policy, and what htmx refused to evaluate, is reported.
WATCH_POLICY = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.twooterReportProblem(`${event.violatedDirective} refused ${event.blockedURI || "inline code"}`
    + ` in ${event.documentURI} (${event.sourceFile || "?"}:${event.lineNumber})`);
});
document.addEventListener("htmx:evalDisallowedError", (event) => {
  window.twooterReportProblem(`htmx needed eval on ${event.target.outerHTML.slice(0, 120)}`);
});
"""


@pytest.fixture
def page_problems() -> list[str]:
    """Policy violations, refused evals and uncaught script errors seen by this test's pages.

    Every browser test fails when any were seen; a test that causes one on
    purpose reads and empties the list.
    """
    return []


@pytest.fixture
def new_page(browser, page_problems) -> Iterator[Callable]:
    """Pages in fresh contexts (own cookies), closed after the test.

    `new_page(javascript=False)` gives a browser with JavaScript off, to check
    that every flow still works as plain forms and links.
    `new_page(intercept=False)` leaves requests alone, for pages that load
    nothing from elsewhere: Playwright aborts every request for a
    `…/favicon.ico` once it intercepts any.
    """
    contexts = []

    def open_page(javascript: bool = True, intercept: bool = True):
        context = browser.new_context(java_script_enabled=javascript)
        context.set_default_timeout(STEP_TIMEOUT_MS)
        if intercept:
            context.route(lambda url: not url.startswith(LOOPBACK_PREFIXES), _abort_off_machine_requests)
        context.expose_binding("twooterReportProblem", lambda _source, text: page_problems.append(text))
        context.add_init_script(WATCH_POLICY)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: page_problems.append(f"uncaught: {error}"))
        page.on("console", lambda message: _note_policy_message(message, page_problems))
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert page_problems == [], "the pages reported problems"


def _note_policy_message(message, problems: list[str]) -> None:
    # The console also names violations the event does not reach (a refused frame).
    if message.type == "error" and "Content Security Policy" in message.text:
        problems.append(f"console: {message.text}")


@pytest.fixture
def page(new_page):
    """A Chromium tab with JavaScript (and so htmx) on."""
    return new_page()
