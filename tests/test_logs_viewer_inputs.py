"""Every value the /logs viewer takes from its path and query string is range-checked first:
404 for an hour that is none, 400 with the reason for a query value it cannot use, never 500."""
from __future__ import annotations

import html
from urllib.parse import quote

import pytest

from tests.test_logs_viewer import HOUR, HOUR_URL, admin, folder, make_admin, record, write_records  # noqa: F401

ENDPOINTS = ("", "/raw", "/chart", "/new")

BAD_HOURS = [
    "99@15-06-2030", "24@15-06-2030", "-1@15-06-2030", "14@32-06-2030", "14@15-13-2030", "14@00-06-2030",
    "14@15-06-99999999999999999999", "14@15-06-0000", "14@15-06-0001", "23@31-12-9999", "00@01-01-1969",
    "14@15-06-abcd", "abc", "%00", "14@15-06-2030%00", "%C2%B9%C2%B2@15-06-2030", "%D9%A1%D9%A4@15-06-2030",
    "1" * 5000, "14@15-06-2030.5",
]

NUMBERS_THAT_ARE_NOT = ["-1", "99999999999999999999", "9" * 5000, "abc", "%00", "1%00", "%C2%B2",
                        "%D9%A3", "1.5", "0x10", "+1", " 1 2"]

BAD_QUERIES = (
    [("minute", value) for value in ["60", *NUMBERS_THAT_ARE_NOT]]
    + [("q", "x" * 201), ("q", "a%00b"), ("q", "tab%09and%0Anewline")]
    + [("instance", value) for value in ["..", "../etc", "a/b", "%00", "web1%00", "x" * 101, "we b1"]]
    + [("rid", value) for value in ["short", "x" * 65, "%00%00%00%00%00%00%00%00", "abcd efgh", "../../../x"]]
    + [(level, value) for level in ("info", "error", "trace") for value in ["maybe", "%00", "2", "-1"]]
)

BAD_CURSORS = (
    [f"web1:{value}" for value in NUMBERS_THAT_ARE_NOT]
    + ["web1:9223372036854775808", "web1", ":5", "../x:1", "web%00:1", "web1:1,web1:2", "web1:1,,web2:2",
       ",".join(f"i{n}:1" for n in range(1001)), "x" * 101 + ":1"]
)


def status_of(admin, path: str) -> int:
    response = admin.get(path, allow_redirects=False)
    assert response.status_code != 500, (path[:200], response.text[:500])
    return response.status_code


@pytest.fixture
def hour_with_records(folder):
    write_records(folder, "web1", [record(second, f"r{second}") for second in range(10)])


def test_an_hour_that_is_none_is_404_on_every_viewer_route(admin, hour_with_records):
    wrong = []
    for hour_text in BAD_HOURS:
        for endpoint in ENDPOINTS:
            response = admin.get(f"/logs/{hour_text}{endpoint}", allow_redirects=False)
            if response.status_code != 404 or not ("hour" in response.text or "year" in response.text):
                wrong.append((hour_text[:60], endpoint, response.status_code))
    assert wrong == []


def test_the_first_and_last_hours_the_viewer_shows_answer(admin):
    for hour_text in ("00@01-01-1970", "23@31-12-9998"):
        for endpoint in ENDPOINTS:
            assert status_of(admin, f"/logs/{hour_text}{endpoint}") in (200, 204), (hour_text, endpoint)


@pytest.mark.parametrize("name", ["minute", "q", "instance", "rid", "levels"])
def test_a_query_value_the_viewer_cannot_use_is_400_with_the_reason(admin, hour_with_records, name):
    cases = [(key, value) for key, value in BAD_QUERIES
             if key == name or (name == "levels" and key in ("info", "error", "trace"))]
    assert cases
    wrong = []
    for key, value in cases:
        for endpoint in ENDPOINTS:
            response = admin.get(f"{HOUR_URL}{endpoint}?{key}={value}", allow_redirects=False)
            if response.status_code != 400 or f"'{key}'" not in html.unescape(response.text):
                wrong.append((key, value[:60], endpoint, response.status_code))
        # The newest-hour redirect checks them too, before it builds a URL from them.
        if admin.get(f"/logs?{key}={value}", allow_redirects=False).status_code != 400:
            wrong.append((key, value[:60], "/logs"))
    assert wrong == []


def test_a_paging_or_tail_cursor_that_is_not_one_is_400(admin, hour_with_records):
    wrong = []
    for cursor in BAD_CURSORS:
        for path in (f"{HOUR_URL}?cursor={cursor}", f"{HOUR_URL}/new?after={cursor}"):
            status = status_of(admin, path)
            if status != 400:
                wrong.append((path[:80], status))
    assert wrong == []


def test_good_values_and_empty_form_fields_still_work(admin, hour_with_records):
    for query in ("minute=&q=&instance=&rid=", "info=true&error=on&warn=", "minute=0&instance=web1",
                  "q=" + quote("r5"), "rid=abcdefgh", "cursor=web1:0", "cursor=", "cursor=web1:9223372036854775807"):
        assert status_of(admin, f"{HOUR_URL}?{query}") == 200, query
    assert status_of(admin, f"{HOUR_URL}/new?after=web1:9223372036854775807") in (200, 204)
    page = admin.get(f"{HOUR_URL}?q=r5").text
    assert "r5" in page


def test_the_newest_hour_redirect_keeps_only_checked_filters(admin, hour_with_records):
    response = admin.get("/logs?info=false&hour=7&_external=1&_anchor=x&_scheme=javascript", allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"] == f"{HOUR_URL}?info=false"
