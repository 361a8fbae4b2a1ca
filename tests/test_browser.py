"""The pages in headless Chromium: htmx updates in place, and the same flows work with JavaScript off."""
from __future__ import annotations

import secrets
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from tests.servers import build_app
from tests.twooter_client import TwooterClient
from tests import seed
from twooter.data import accounts

pytestmark = pytest.mark.browser

PAGE_SIZE = 5
PASSWORD = "browser-pass"
LOADED = "domcontentloaded"  # gravatar images never load here; don't wait for them


@pytest.fixture
def app(backend, tmp_path, request):
    """Pages of five twoots, so that a dozen twoots make three pages."""
    postgres = request.getfixturevalue("postgres") if backend == "postgresql" else None
    return build_app(backend, tmp_path / "instance", postgres, TIMELINE_PAGE_SIZE=PAGE_SIZE)


def register(server, *names: str) -> None:
    visitor = TwooterClient(server.url)
    for name in names:
        assert visitor.register(name, PASSWORD).status_code == 200


def sign_in(page, server, name: str) -> None:
    page.goto(f"{server.url}/login", wait_until=LOADED)
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    with page.expect_navigation(url=f"{server.url}/", wait_until=LOADED):
        page.click("input[type=submit]")
    expect(page.locator("#flashes")).to_contain_text("You were logged in")


def twoot_texts(page) -> list[str]:
    return page.locator("#messages li.twoot p").all_inner_texts()


@contextmanager
def stays_on_page(page):
    """Fail if anything inside the block loaded a new document.

    A value put on `window` only survives while the same document lives, and
    the main frame reports every navigation it makes.
    """
    marker = secrets.token_hex(8)
    page.evaluate("marker => { window.stayMarker = marker; }", marker)
    navigations = []

    def on_navigated(frame) -> None:
        if frame == page.main_frame:
            navigations.append(frame.url)

    page.on("framenavigated", on_navigated)
    try:
        yield
    finally:
        page.remove_listener("framenavigated", on_navigated)
    assert navigations == []
    assert page.evaluate("() => window.stayMarker") == marker


@pytest.fixture
def dozen_twoots(app, server):
    """alice and bob alternate twelve twoots, two to each second, and alice follows bob.

    Pairs share a timestamp so that paging must break ties by id. Returns the
    texts newest first, which is the order every timeline must show.
    """
    register(server, "alice", "bob")
    start = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    texts = []
    with app.app_context():
        alice, bob = accounts.user_by_name("alice"), accounts.user_by_name("bob")
        for n in range(12):
            text = f"twoot {n:02d} by {'alice' if n % 2 == 0 else 'bob'}"
            seed.twoot(alice if n % 2 == 0 else bob, text, start + timedelta(seconds=n // 2))
            texts.append(text)
        seed.follow(alice, bob)
    return texts[::-1]


def shown(texts: list[str], page_texts: list[str]) -> list[str]:
    """Which of `texts` the rows show, in the rows' order."""
    return [text for row in page_texts for text in texts if text in row]


# --- with JavaScript: htmx changes the page in place ------------------------

def test_posting_shows_the_twoot_on_top_without_a_page_load(server, page):
    register(server, "alice")
    sign_in(page, server, "alice")
    page.fill("input[name=text]", "an earlier twoot")
    page.click("input[value=Share]")
    expect(page.locator("#messages li.twoot")).to_have_count(1)
    expect(page.locator("#no-twoots")).to_have_count(0)

    with stays_on_page(page):
        page.fill("input[name=text]", "<b>not bold</b> & second")
        page.click("input[value=Share]")
        expect(page.locator("#messages li.twoot")).to_have_count(2)
        expect(page.locator("input[name=text]")).to_have_value("")
        expect(page.locator("#flashes")).to_have_text("Your message was recorded")
    first = page.locator("#messages li.twoot").first
    expect(first).to_contain_text("<b>not bold</b> & second")
    expect(first.locator("b")).to_have_count(0)
    expect(first.locator("a")).to_have_text("alice")

    page.reload(wait_until=LOADED)
    assert shown(["<b>not bold</b> & second", "an earlier twoot"], twoot_texts(page)) == [
        "<b>not bold</b> & second",
        "an earlier twoot",
    ]


def test_empty_twoot_changes_nothing_in_place(server, page):
    register(server, "alice")
    sign_in(page, server, "alice")
    with stays_on_page(page):
        with page.expect_response(f"{server.url}/add_message") as response:
            page.click("input[value=Share]")
        assert response.value.status == 204
        expect(page.locator("#no-twoots")).to_be_visible()
        expect(page.locator("#messages li.twoot")).to_have_count(0)


def test_refused_post_shows_the_reason_in_place(server, page):
    register(server, "alice")
    sign_in(page, server, "alice")
    page.context.clear_cookies()  # the session ends while the page stays open
    with stays_on_page(page):
        page.fill("input[name=text]", "too late")
        page.click("input[value=Share]")
        expect(page.locator("#flashes .error")).to_contain_text("You have to be logged in to do that.")
    expect(page.locator("#messages li.twoot")).to_have_count(0)
    expect(page.locator("input[name=text]")).to_have_value("too late")


def test_follow_and_unfollow_swap_the_status_in_place(server, page):
    register(server, "alice", "bob")
    sign_in(page, server, "alice")
    page.goto(f"{server.url}/bob", wait_until=LOADED)
    status = page.locator("#follow-status")
    expect(status).to_contain_text("You are not yet following this user.")

    with stays_on_page(page):
        page.click("button.follow")
        expect(status).to_contain_text("You are currently following this user.")
        expect(page.locator("#flashes")).to_have_text('You are now following "bob"')
        expect(page.locator("#follow-status")).to_have_count(1)

        page.click("button.unfollow")
        expect(status).to_contain_text("You are not yet following this user.")
        expect(page.locator("#flashes")).to_have_text('You are no longer following "bob"')
        expect(page.locator("#follow-status")).to_have_count(1)

        page.click("button.follow")
        expect(status).to_contain_text("You are currently following this user.")

    page.reload(wait_until=LOADED)
    expect(status).to_contain_text("You are currently following this user.")


def walk_with_more(page, url: str) -> list[str]:
    """Open a timeline and press "More twoots" until it is gone, in place."""
    page.goto(url, wait_until=LOADED)
    rows = page.locator("#messages li.twoot")
    with stays_on_page(page):
        while page.locator("#more").count():
            before = rows.count()
            assert before % PAGE_SIZE == 0
            page.click("#more a")
            # The old control and the next rows change places in one swap.
            expect(rows).not_to_have_count(before)
    return twoot_texts(page)


def test_more_appends_the_next_page_in_place(server, page, dozen_twoots):
    newest_first = dozen_twoots
    public = walk_with_more(page, f"{server.url}/public")
    assert len(public) == len(newest_first)
    assert shown(newest_first, public) == newest_first

    bobs = walk_with_more(page, f"{server.url}/bob")
    assert shown(newest_first, bobs) == [text for text in newest_first if "by bob" in text]

    sign_in(page, server, "alice")
    mine = walk_with_more(page, f"{server.url}/")
    assert shown(newest_first, mine) == newest_first


# --- without JavaScript: the same flows as plain forms and links ------------

def test_posting_without_javascript_loads_my_timeline(server, new_page):
    page = new_page(javascript=False)
    register(server, "alice")
    sign_in(page, server, "alice")
    for text in ("an earlier twoot", "<i>plain</i> form post"):
        page.fill("input[name=text]", text)
        with page.expect_navigation(url=f"{server.url}/", wait_until=LOADED):
            page.click("input[value=Share]")
        expect(page.locator("#flashes")).to_have_text("Your message was recorded")
    expect(page.locator("input[name=text]")).to_have_value("")
    assert shown(["<i>plain</i> form post", "an earlier twoot"], twoot_texts(page)) == [
        "<i>plain</i> form post",
        "an earlier twoot",
    ]


def test_follow_and_unfollow_without_javascript_reload_the_profile(server, new_page):
    page = new_page(javascript=False)
    register(server, "alice", "bob")
    sign_in(page, server, "alice")
    page.goto(f"{server.url}/bob", wait_until=LOADED)
    status = page.locator("#follow-status")

    with page.expect_navigation(url=f"{server.url}/bob", wait_until=LOADED):
        page.click("button.follow")
    expect(status).to_contain_text("You are currently following this user.")
    expect(page.locator("#flashes")).to_have_text('You are now following "bob"')

    with page.expect_navigation(url=f"{server.url}/bob", wait_until=LOADED):
        page.click("button.unfollow")
    expect(status).to_contain_text("You are not yet following this user.")
    expect(page.locator("#flashes")).to_have_text('You are no longer following "bob"')


def test_more_without_javascript_opens_the_next_page(server, new_page, dozen_twoots):
    page = new_page(javascript=False)
    newest_first = dozen_twoots
    sign_in(page, server, "alice")
    for path in ("/public", "/bob", "/"):
        expected = [text for text in newest_first if path != "/bob" or "by bob" in text]
        page.goto(f"{server.url}{path}", wait_until=LOADED)
        seen = shown(newest_first, twoot_texts(page))
        while page.locator("#more").count():
            with page.expect_navigation(wait_until=LOADED):
                page.click("#more a")
            assert page.url.startswith(f"{server.url}{quote(path)}?before=")
            on_this_page = shown(newest_first, twoot_texts(page))
            assert 0 < len(on_this_page) <= PAGE_SIZE
            seen += on_this_page
        assert seen == expected, path
