"""The Content-Security-Policy and framing defences in headless Chromium.

Every browser test already fails on a reported violation (tests/browser.py);
here: the watch itself sees one, every page works under the policy, another
origin cannot frame a page, and a visit logs no ERROR for the site's icon.
"""
from __future__ import annotations

import time

import pytest
from flask import Flask
from playwright.sync_api import expect

from tests.logfiles import read_records
from tests.servers import LiveServer
from tests.test_browser import LOADED, register, sign_in
from tests.test_logs_browser import no_new_document
from tests.test_logs_viewer import HOUR_URL, make_admin, record, write_records
from tests.twooter_client import TwooterClient
from twooter.logs import settings

pytestmark = pytest.mark.browser
WAIT_SECONDS = 15  # generous: a healthy browser reports within milliseconds


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {WAIT_SECONDS} s"
        time.sleep(0.05)


def test_the_watch_reports_inline_script_and_eval(server, page, page_problems):
    page.goto(f"{server.url}/public", wait_until=LOADED)
    page.evaluate("""() => {
        const script = document.createElement("script");
        script.textContent = "window.inlineRan = true";
        document.body.append(script);
        const button = document.createElement("button");
        button.id = "evil";
        button.setAttribute("hx-on:click", "window.handlerRan = true");
        document.body.append(button);
        htmx.process(button);
    }""")
    page.click("#evil")
    wait_for(lambda: len(page_problems) >= 2, "report of the inline script and the handler")
    assert page.evaluate("() => [window.inlineRan, window.handlerRan]") == [None, None]
    assert any("script-src" in problem for problem in page_problems), page_problems
    assert any("htmx needed eval" in problem for problem in page_problems), page_problems
    page_problems.clear()  # caused on purpose


def test_every_page_runs_htmx_under_the_policy(app, server, page):
    register(server, "alice", "bob")
    make_admin(app, TwooterClient(server.url), "operator")
    write_records(settings.of(app).folder, "web1", [record(1, "an info"), record(2, "an error", "ERROR")])
    anonymous = ["/public", "/bob", "/login", "/register", "/nobody-at-all", "/public?before=abc"]
    for path in anonymous:
        response = page.goto(f"{server.url}{path}", wait_until="load")
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
        assert page.evaluate("() => [htmx.config.allowEval, htmx.config.includeIndicatorStyles]") == [False, False]
    sign_in(page, server, "alice")
    page.fill("input[name=text]", "under the policy")
    page.click("input[value=Share]")
    expect(page.locator("#messages li.twoot")).to_have_count(1)
    expect(page.locator("input[name=text]")).to_have_value("")  # reset by static/js/twooter.js
    page.context.clear_cookies()
    page.goto(f"{server.url}/login", wait_until=LOADED)
    page.fill("#username", "operator")
    page.fill("#password", "operator-pass")
    with page.expect_navigation(wait_until=LOADED):
        page.click("input[type=submit]")
    page.goto(server.url + HOUR_URL, wait_until="load")
    expect(page.locator("#log-rows tr.log-row")).to_have_count(2)
    expect(page.locator(".log-chart svg")).to_have_count(1)  # loaded by htmx on "load"
    same_document = no_new_document(page)
    page.click("#toggle-info")
    expect(page.locator("#log-rows tr.log-row")).to_have_count(1)
    assert same_document()


def framer_app(target: str) -> Flask:
    """A page of another origin that frames `target`, and a page of its own for comparison."""
    framer = Flask("framer")

    @framer.get("/")
    def framing_page():
        return (f'<h1 id="framer">another site</h1><iframe id="victim" src="{target}"></iframe>'
                '<iframe id="own" src="/own"></iframe>')

    @framer.get("/own")
    def own_page():
        return '<p id="own-content">framed fine</p>'

    return framer


@pytest.mark.parametrize("path", ["/bob", "/login", "/public"])
def test_another_origin_cannot_frame_a_page(app, server, page, page_problems, path):
    register(server, "alice", "bob")
    sign_in(page, server, "alice")  # the cookie the frame would carry: same site, other port
    with LiveServer(framer_app(f"{server.url}{path}")) as framer:
        page.goto(f"http://localhost:{framer.port}/", wait_until="load")
        expect(page.frame_locator("#own").locator("#own-content")).to_have_text("framed fine")
        wait_for(lambda: any("frame-ancestors" in problem for problem in page_problems), "refused frame")
        victim = page.locator("#victim").element_handle().content_frame()
        assert victim.locator("#follow-status, #username, #flashes").count() == 0  # nothing of Twooter
        assert not victim.url.startswith(server.url)
    assert all("frame-ancestors" in problem for problem in page_problems), page_problems
    page_problems.clear()  # the refusal is what this test causes


def test_a_visit_logs_no_error_for_the_icon(app, server, new_page):
    register(server, "alice")
    page = new_page(intercept=False)  # these pages have no twoots, so no avatars from elsewhere
    for path in ("/public", "/alice", "/login"):
        page.goto(f"{server.url}{path}", wait_until="load")
        # What browsers do with a page: load the icon it declares, and (many) /favicon.ico unasked.
        sizes = page.evaluate("""() => Promise.all(
            [document.querySelector("link[rel~=icon]")?.href, "/favicon.ico"].map((source) =>
                new Promise((resolve) => {
                    const icon = new Image();
                    icon.onload = () => resolve([icon.naturalWidth, icon.naturalHeight]);
                    icon.onerror = () => resolve(null);
                    icon.src = source;
                })))""")
        assert sizes == [[32, 32], [32, 32]], path
    found = read_records(settings.of(app).folder)
    visits = [r for r in found if r.logger == "twooter.requests" and r.request.get("method") == "GET"]
    assert {r.request["path"] for r in visits} >= {"/public", "/alice", "/login"}
    assert [r.message for r in found if r.level == "ERROR"] == []
