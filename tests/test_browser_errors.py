"""Every failed htmx request tells the person in the flash area, in place, in headless Chromium:
a refusal by the app, a real server error, an error page from whatever stands in front,
a server that has gone away, and one that does not answer in time."""
from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from flask import Response, request
from playwright.sync_api import expect

from tests.servers import LiveServer, build_app
from tests.test_browser import LOADED, register, sign_in, stays_on_page
from twooter.extensions import db

pytestmark = pytest.mark.browser
HOLD_LIMIT_SECONDS = 60  # a held request goes on by itself after this, whatever the test did
CLIENT_TIMEOUT_MS = 2_000  # the page's htmx timeout during the timeout test (the site's own is 30 s)


class Faults:
    """What the server does to htmx requests, switched by the test."""

    def __init__(self):
        self.bare_status: int | None = None
        self._holding = threading.Event()
        self._released = threading.Event()

    def before_request(self) -> Response | None:
        if request.headers.get("HX-Request") != "true":
            return None
        if self.bare_status is not None:
            # As a proxy or load balancer answers: its own page, none of the app's headers.
            return Response(f"<html><body><h1>{self.bare_status}</h1></body></html>", self.bare_status,
                            mimetype="text/html")
        if self._holding.is_set():
            self._released.wait(HOLD_LIMIT_SECONDS)
        return None

    @contextmanager
    def holding(self):
        """htmx requests wait inside the server until the block ends."""
        self._released.clear()
        self._holding.set()
        try:
            yield
        finally:
            self._holding.clear()
            self._released.set()


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def app(backend, tmp_path, request, faults):
    postgres = request.getfixturevalue("postgres") if backend == "postgresql" else None
    app = build_app(backend, tmp_path / "instance", postgres)
    app.before_request(faults.before_request)
    return app


@contextmanager
def table_gone(app, table: str):
    """The table is renamed away while the block runs: every query of it fails in the database."""
    with app.app_context():
        db.session.execute(sa.text(f"ALTER TABLE {table} RENAME TO {table}_away"))
        db.session.commit()
    try:
        yield
    finally:
        with app.app_context():
            db.session.execute(sa.text(f"ALTER TABLE {table}_away RENAME TO {table}"))
            db.session.commit()


def flash_error(page):
    return page.locator("#flashes .error")


def on_bobs_page(page, server):
    register(server, "alice", "bob")
    sign_in(page, server, "alice")
    page.goto(f"{server.url}/bob", wait_until=LOADED)
    expect(page.locator("#follow-status")).to_contain_text("You are not yet following this user.")


def test_a_refusal_by_the_app_shows_its_reason(app, server, page):
    on_bobs_page(page, server)
    with app.app_context():
        db.session.execute(sa.text("DELETE FROM users WHERE username = 'bob'"))
        db.session.commit()
    with stays_on_page(page):
        with page.expect_response(f"{server.url}/bob/follow") as response:
            page.click("button.follow")
        assert response.value.status == 404
        expect(flash_error(page)).to_have_text("Error: There is no user called 'bob'.")
    expect(page.locator("#follow-status")).to_contain_text("You are not yet following this user.")


def test_a_server_error_shows_in_place_and_keeps_the_text(app, server, page):
    register(server, "alice")
    sign_in(page, server, "alice")
    with table_gone(app, "messages"), stays_on_page(page):
        page.fill("input[name=text]", "lost in the database")
        with page.expect_response(f"{server.url}/add_message") as response:
            page.click("input[value=Share]")
        assert response.value.status == 500
        expect(flash_error(page)).to_have_text("Error: Something went wrong on our side.")
        expect(page.locator("input[name=text]")).to_have_value("lost in the database")
    expect(page.locator("#messages li.twoot")).to_have_count(0)


@pytest.mark.parametrize("status, phrase", [(502, "502 BAD GATEWAY"), (429, "429 TOO MANY REQUESTS")])
def test_an_error_page_from_in_front_of_the_app_is_told_not_swapped(app, server, page, faults, status, phrase):
    on_bobs_page(page, server)
    faults.bare_status = status
    with stays_on_page(page):
        page.click("button.follow")
        expect(flash_error(page)).to_have_text(f"Error: The server answered {phrase}. Please try again.")
    # The proxy's page went nowhere near the follow control.
    expect(page.locator("#follow-status")).to_contain_text("You are not yet following this user.")
    expect(page.locator("h1")).to_have_count(1)


def test_a_server_that_has_gone_is_told(app, page):
    with LiveServer(app) as gone:
        register(gone, "alice")
        sign_in(page, gone, "alice")
    # The page stays open; nothing listens on its port any more.
    with stays_on_page(page):
        page.fill("input[name=text]", "into the void")
        page.click("input[value=Share]")
        expect(flash_error(page)).to_have_text(
            "Error: The server could not be reached. Check your connection and try again.")
        expect(page.locator("input[name=text]")).to_have_value("into the void")


def test_a_server_that_does_not_answer_in_time_is_told(server, page, faults):
    register(server, "alice")
    sign_in(page, server, "alice")
    page.evaluate(f"() => {{ htmx.config.timeout = {CLIENT_TIMEOUT_MS}; }}")
    with faults.holding(), stays_on_page(page):
        page.fill("input[name=text]", "waiting")
        page.click("input[value=Share]")
        expect(flash_error(page)).to_have_text("Error: The server did not answer in time. Please try again.")
        expect(page.locator("input[name=text]")).to_have_value("waiting")
