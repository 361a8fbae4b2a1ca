"""Input the database cannot take, or that overflows below the app, is a 4xx with a reason,
the same on SQLite and PostgreSQL, for the pages and the API alike; nobody follows themselves."""
from __future__ import annotations

import pytest
import requests
import sqlalchemy as sa

from tests.logfiles import read_records
from tests.test_simapi import Simulator, assert_error
from twooter.extensions import db
from twooter.logwriter import settings

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
HTMX = {"HX-Request": "true"}


@pytest.fixture
def sim(server) -> Simulator:
    return Simulator(server.url)


def _records(app):
    return read_records(settings.of(app).folder)


def _count(app, sql: str) -> int:
    with app.app_context():
        try:
            return db.session.execute(sa.text(sql)).scalar()
        finally:
            db.session.remove()


# --- text a database cannot store -------------------------------------------------

def test_a_nul_in_a_twoot_is_a_400_with_a_reason_and_one_record(client, app):
    client.register_and_login("nul poster")
    response = client.post("/add_message", "text=half%00way", headers=FORM, allow_redirects=False)

    assert response.status_code == 400
    assert "A twoot cannot contain NUL characters." in response.text
    assert "sign out [nul poster]" in response.text  # the whole page, for a logged-in person
    partial = client.post("/add_message", "text=half%00way", headers={**FORM, **HTMX})
    assert partial.status_code == 400 and "<html" not in partial.text
    assert "A twoot cannot contain NUL characters." in partial.text
    assert _count(app, "SELECT count(*) FROM messages") == 0

    rid = response.headers["X-Request-Id"]
    mine = [r for r in _records(app) if r.request_id == rid]
    assert [(r.logger, r.level) for r in mine] == [("twooter.requests", "ERROR")]
    assert "A twoot cannot contain NUL characters." in mine[0].message
    assert not any("twoot posted" in r.message for r in _records(app))


@pytest.mark.parametrize("content, reason", [
    ("half\x00way", "'content' cannot contain NUL characters."),
    ("lone \ud800 surrogate", "'content' is not valid Unicode text."),
    ("x" * 1001, "A message has at most 1000 characters."),
])
def test_the_api_refuses_the_same_twoots(sim, app, content, reason):
    assert sim.register("api poster").status_code == 204
    assert_error(sim.post("api poster", content), 400, reason)
    assert _count(app, "SELECT count(*) FROM messages") == 0


def test_a_twoot_over_the_limit_is_a_400_on_the_pages(client, app):
    client.register_and_login("long poster")
    response = client.add_message("y" * 1001)
    assert response.status_code == 400 and "A twoot has at most 1000 characters." in response.text
    assert client.add_message("y" * 1000).status_code == 200
    assert _count(app, "SELECT count(*) FROM messages") == 1


@pytest.mark.parametrize("field, value, reason", [
    ("email", "a%00b@example.com", "The email address cannot contain NUL characters."),
    ("password", "pass%00word", "The password cannot contain NUL characters."),
])
def test_registration_refuses_a_nul_in_every_field(client, app, field, value, reason):
    fields = {"username": "newcomer", "email": "n@example.com", "password": "pw", "password2": "pw"}
    fields[field] = value
    if field == "password":
        fields["password2"] = value
    body = "&".join(f"{name}={text}" for name, text in fields.items())
    response = client.post("/register", body, headers=FORM)
    assert response.status_code == 400 and reason in response.text
    assert _count(app, "SELECT count(*) FROM users") == 0


@pytest.mark.parametrize("body, reason", [
    ({"username": "u", "email": "a\x00@b", "pwd": "p"}, "'email' cannot contain NUL characters."),
    ({"username": "u", "email": "a\udfff@b", "pwd": "p"}, "'email' is not valid Unicode text."),
    ({"username": "u", "email": "a@b", "pwd": "p\x00"}, "'pwd' cannot contain NUL characters."),
])
def test_the_api_registration_refuses_the_same(sim, app, body, reason):
    assert_error(sim.request("POST", "/register", json=body), 400, reason)
    assert _count(app, "SELECT count(*) FROM users") == 0


# --- values that would overflow below the app ---------------------------------------

BAD_CURSORS = [
    "1-99999999999999999999",       # id beyond any integer column
    "1-2147483648",                  # one past the largest id
    "99999999999999999999-1",        # time beyond datetime
    "253402300800000000-1",          # one microsecond past 9999-12-31
    "-1-1", "1-", "-5", "abc", "1_000-1", " 1-1", "1-1 ",
    "\u0661-\u0661",                 # Arabic-Indic digits, which int() would take
    "1-1-1",
]


@pytest.mark.parametrize("cursor", BAD_CURSORS)
def test_a_bad_page_cursor_is_a_400_on_every_timeline(client, cursor):
    client.register_and_login("reader")
    for path in ("/", "/public", "/reader"):
        response = client.get(path, params={"before": cursor})
        assert response.status_code == 400, (path, cursor)
        assert "not a page cursor" in response.text


@pytest.mark.parametrize("cursor", ["0-0", "253402300799999999-2147483647", "1796103523000000-1"])
def test_the_largest_and_smallest_cursors_are_pages(client, cursor):
    client.register_and_login("edge")
    client.add_message("an edge twoot")
    for path in ("/", "/public", "/edge"):
        assert client.get(path, params={"before": cursor}).status_code == 200, (path, cursor)


def test_a_cursor_round_trips_to_the_microsecond():
    from datetime import datetime, timezone

    from twooter.data.timelines import Cursor

    for when in (datetime(2026, 12, 1, 5, 38, 43, 68647, tzinfo=timezone.utc),
                 datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
                 datetime(1970, 1, 1, tzinfo=timezone.utc)):
        cursor = Cursor(when, 42)
        assert Cursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize("query", ["no=-1", "no=1e3", "no=%EF%BC%91", "latest=9223372036854775808",
                                   "latest=" + "9" * 41, "latest=-9223372036854775809"])
def test_bad_query_numbers_for_the_api_are_a_400(sim, query):
    response = requests.get(f"{sim.base_url}/msgs?{query}", headers={"Authorization": sim.authorization},
                            timeout=10)
    assert_error(response, 400)


# --- following yourself --------------------------------------------------------------

def test_the_pages_say_you_cannot_follow_yourself(client, app):
    client.register_and_login("narcissus")
    response = client.follow("narcissus")
    assert response.status_code == 400 and "You cannot follow yourself." in response.text
    partial = client.post("/narcissus/follow", headers=HTMX)
    assert partial.status_code == 400 and "You cannot follow yourself." in partial.text
    assert _count(app, "SELECT count(*) FROM follows") == 0
    assert "This is you!" in client.get("/narcissus").text


def test_the_api_accepts_following_yourself_and_changes_nothing(sim, app):
    assert sim.register("echo").status_code == 204
    assert sim.follow("echo", "echo", latest=3).status_code == 204
    assert sim.latest() == 3
    assert _count(app, "SELECT count(*) FROM follows") == 0
    assert sim.follows("echo").json() == {"follows": []}


def test_nobody_is_listed_as_their_own_follower_even_from_old_data(sim, app, client):
    for name in ("old", "friend"):
        assert sim.register(name).status_code == 204
    assert sim.follow("old", "friend").status_code == 204
    with app.app_context():
        # Rows an earlier version stored.
        db.session.execute(sa.text(
            "INSERT INTO follows (follower_id, followed_id) SELECT id, id FROM users WHERE username = 'old'"))
        db.session.commit()
        db.session.remove()
    assert sim.follows("old").json() == {"follows": ["friend"]}
    client.login("old", "secret")
    page = client.get("/old")
    assert "This is you!" in page.text and "Unfollow user" not in page.text
