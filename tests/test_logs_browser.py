"""The log viewer in headless Chromium: filters change the table in place and the URL,
scrolling loads older records, and tail mode shows a record written while the page is open."""
from __future__ import annotations

import re
import secrets
from datetime import datetime, timezone

import pytest
from playwright.sync_api import expect

from tests.logfiles import in_the_current_hour
from tests.test_logs_viewer import HOUR_URL, make_admin, record, write_records
from tests.twooter_client import TwooterClient
from twooter.logs import browse, settings

pytestmark = pytest.mark.browser
LOADED = "domcontentloaded"


@pytest.fixture
def backend() -> str:
    # The viewer reads files; which database holds the admin flag is covered elsewhere.
    return "sqlite"


@pytest.fixture
def folder(app):
    return settings.of(app).folder


def log_in_as_admin(app, server, page, name: str):
    make_admin(app, TwooterClient(server.url), name)
    page.goto(f"{server.url}/login", wait_until=LOADED)
    page.fill("#username", name)
    page.fill("#password", "operator-pass")
    with page.expect_navigation(wait_until=LOADED):
        page.click("input[type=submit]")
    return page


@pytest.fixture
def operator_page(app, server, page):
    return log_in_as_admin(app, server, page, "operator")


def no_new_document(page):
    marker = secrets.token_hex(8)
    page.evaluate("marker => { window.stayMarker = marker; }", marker)
    return lambda: page.evaluate("() => window.stayMarker") == marker


def test_toggling_info_hides_and_shows_rows_in_place_and_in_the_url(server, operator_page, folder):
    page = operator_page
    write_records(folder, "web1", [record(1, "an info"), record(2, "an error", "ERROR"), record(3, "more info")])
    page.goto(server.url + HOUR_URL, wait_until=LOADED)
    rows = page.locator("#log-rows tr.log-row")
    expect(rows).to_have_count(3)
    same_document = no_new_document(page)
    page.click("#toggle-info")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("an error")
    expect(page).to_have_url(re.compile(re.escape(HOUR_URL) + r"\?info=false$"))
    page.click("#toggle-info")
    expect(rows).to_have_count(3)
    expect(page).to_have_url(server.url + HOUR_URL)
    assert same_document()
    # The bookmarked URL renders the same view as a whole page.
    page.goto(server.url + HOUR_URL + "?info=false", wait_until=LOADED)
    expect(rows).to_have_count(1)


def test_the_search_box_filters_the_table(server, operator_page, folder):
    page = operator_page
    write_records(folder, "web1", [record(1, "payment | timeout"), record(2, "all fine"), record(3, "another TIMEOUT")])
    page.goto(server.url + HOUR_URL, wait_until=LOADED)
    rows = page.locator("#log-rows tr.log-row")
    expect(rows).to_have_count(3)
    same_document = no_new_document(page)
    page.fill("#log-search", "timeout")
    expect(rows).to_have_count(2)
    expect(page).to_have_url(re.compile(r"\?q=timeout$"))
    expect(page.locator("#log-search")).to_be_focused()
    page.fill("#log-search", "")
    expect(rows).to_have_count(3)
    assert same_document()


def test_scrolling_loads_the_next_page(server, operator_page, folder):
    page = operator_page
    total = browse.PAGE_SIZE * 2 + 17
    write_records(folder, "web1", [record(n * 3, f"record number {n}") for n in range(total)])
    page.goto(server.url + HOUR_URL, wait_until=LOADED)
    rows = page.locator("#log-rows tr.log-row")
    expect(rows).to_have_count(browse.PAGE_SIZE)
    same_document = no_new_document(page)
    page.locator("#log-more").scroll_into_view_if_needed()
    expect(rows).to_have_count(browse.PAGE_SIZE * 2)
    page.locator("#log-more").scroll_into_view_if_needed()
    expect(rows).to_have_count(total)
    expect(page.locator("#log-more")).to_have_count(0)
    expect(rows.last).to_contain_text("record number 0")
    assert same_document()


def test_tail_mode_shows_a_record_written_while_the_page_is_open(server, operator_page, folder):
    in_the_current_hour(lambda hour: _tail_mode_shows_a_record_written_while_open(server, operator_page, folder, hour))


def _tail_mode_shows_a_record_written_while_open(server, page, folder, hour):
    write_records(folder, "web1", [record(0, "written before", hour=hour)])
    # The server's own request records land in this hour too: look at ours only.
    page.goto(f"{server.url}/logs/{hour:%H@%d-%m-%Y}?q=written", wait_until=LOADED)
    rows = page.locator("#log-rows tr.log-row")
    expect(rows.first).to_contain_text("written before")
    same_document = no_new_document(page)
    seconds = min((datetime.now(timezone.utc) - hour).total_seconds(), 3599.999)
    write_records(folder, "web2", [record(seconds, "written while open", "WARN", instance="web2", hour=hour)])
    expect(rows.first).to_contain_text("written while open")
    expect(rows.first.locator(".log-instance")).to_have_text("web2")
    assert same_document()


def test_clicking_a_request_id_and_a_minute_narrow_the_table(server, operator_page, folder):
    page = operator_page
    write_records(folder, "web1", [record(5, "first of r1", rid="req11111"), record(6, "other", rid="req22222"),
                                   record(70, "second of r1", rid="req11111")])
    page.goto(server.url + HOUR_URL, wait_until=LOADED)
    rows = page.locator("#log-rows tr.log-row")
    expect(rows).to_have_count(3)
    page.locator("a.log-rid", has_text="req11111").first.click()
    expect(rows).to_have_count(2)
    expect(page).to_have_url(re.compile(r"\?rid=req11111$"))
    expect(page.locator("#log-rid")).to_have_value("req11111")
    page.goto(server.url + HOUR_URL, wait_until=LOADED)
    page.locator(".log-chart svg a.log-minute").nth(1).click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("second of r1")
    expect(page).to_have_url(re.compile(r"\?minute=1$"))


def test_without_javascript_toggles_and_older_records_are_plain_links(app, server, new_page, folder):
    page = log_in_as_admin(app, server, new_page(javascript=False), "plain")
    total = browse.PAGE_SIZE + 5
    write_records(folder, "web1", [record(n * 3, f"plain {n}", "ERROR" if n % 2 else "INFO") for n in range(total)])
    page.goto(server.url + HOUR_URL, wait_until=LOADED)
    rows = page.locator("#log-rows tr.log-row")
    expect(rows).to_have_count(browse.PAGE_SIZE)
    with page.expect_navigation(wait_until=LOADED):
        page.click("#log-more a")
    expect(rows).to_have_count(5)
    expect(rows.last).to_contain_text("plain 0")
    page.goto(server.url + HOUR_URL, wait_until=LOADED)
    with page.expect_navigation(wait_until=LOADED):
        page.click("#toggle-info")
    expect(page).to_have_url(server.url + HOUR_URL + "?info=false")
    expect(rows).to_have_count(total // 2)
    page.fill("#log-search", "plain 17")
    with page.expect_navigation(wait_until=LOADED):
        page.click("#log-filters button[type=submit]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("plain 17")
    assert "info=false" in page.url  # the hidden level rides along with the search
