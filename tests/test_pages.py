"""MiniTwit's flows over a real socket, with a plain HTTP client and exact texts."""
from __future__ import annotations

import re
from urllib.parse import quote


def test_register_flow_and_every_error(client):
    response = client.register("user1")
    assert "You were successfully registered and can login now" in response.text
    assert response.url.endswith("/login")

    assert "The username is already taken" in client.register("user1").text
    assert "You have to enter a username" in client.register("").text
    assert "You have to enter a password" in client.register("meh", "").text
    assert "The two passwords do not match" in client.register("meh", "x", "y").text
    bad_email = client.register("meh", email="broken")
    assert "You have to enter a valid email address" in bad_email.text
    assert bad_email.status_code == 400


def test_names_that_shadow_routes_are_refused(client):
    for name in ("public", "login", "logout", "register", "add_message", "static", "Public"):
        response = client.register(name)
        assert response.status_code == 400, name
        assert "The username is reserved" in response.text
    assert "cannot contain" in client.register("a/b").text


def test_login_and_logout(client):
    client.register("user1")
    response = client.login("user1")
    assert "You were logged in" in response.text
    assert response.url == client.url("/")
    response = client.logout()
    assert "You were logged out" in response.text
    assert response.url == client.url("/public")
    assert "Invalid password" in client.login("user1", "wrongpassword").text
    assert "Invalid username" in client.login("user2", "wrongpassword").text


def test_logout_by_post(client):
    client.register_and_login("poster")
    response = client.post("/logout")
    assert "You were logged out" in response.text
    assert "sign out" not in client.get("/public").text


def test_message_recording_escapes_html(client):
    client.register_and_login("foo")
    assert "Your message was recorded" in client.add_message("test message 1").text
    client.add_message("<test message 2>")
    page = client.get("/").text
    assert "test message 1" in page
    assert "&lt;test message 2&gt;" in page
    assert "<test message 2>" not in page


def test_empty_message_records_nothing(client):
    client.register_and_login("foo")
    response = client.add_message("")
    assert "Your message was recorded" not in response.text
    assert "no message so far" in client.get("/").text


def test_posting_requires_login(client):
    assert client.add_message("anonymous").status_code == 401


def test_timelines_before_and_after_following(client):
    client.register_and_login("foo")
    client.add_message("the message by foo")
    client.logout()
    client.register_and_login("bar")
    client.add_message("the message by bar")

    public = client.get("/public").text
    assert "the message by foo" in public and "the message by bar" in public

    mine = client.get("/").text
    assert "the message by foo" not in mine and "the message by bar" in mine

    response = client.follow("foo")
    assert "You are now following &#34;foo&#34;" in response.text
    assert response.url == client.url("/foo")
    mine = client.get("/").text
    assert "the message by foo" in mine and "the message by bar" in mine

    bar_page = client.get("/bar").text
    assert "the message by foo" not in bar_page and "the message by bar" in bar_page
    assert "This is you!" in bar_page
    foo_page = client.get("/foo").text
    assert "the message by foo" in foo_page and "the message by bar" not in foo_page
    assert "You are currently following this user." in foo_page

    response = client.unfollow("foo")
    assert "You are no longer following &#34;foo&#34;" in response.text
    mine = client.get("/").text
    assert "the message by foo" not in mine and "the message by bar" in mine
    assert "You are not yet following this user." in client.get("/foo").text


def test_anonymous_home_redirects_to_public(client):
    response = client.get("/", allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/public")


def test_unknown_user_is_a_404_page(client):
    response = client.get("/nobody-here")
    assert response.status_code == 404
    assert "nobody-here" in response.text
    assert "Traceback" not in response.text


def test_follow_needs_login_and_a_real_user(client):
    client.register("foo")
    assert client.follow("foo").status_code == 401
    client.register_and_login("bar")
    assert client.follow("ghost").status_code == 404


def test_names_with_spaces_and_non_ascii(client):
    name = "Roger Histand ØÆ 東京"
    client.register_and_login(name)
    client.add_message("hello from a long name")
    page = client.get("/" + quote(name))
    assert page.status_code == 200
    assert "hello from a long name" in page.text
    assert quote(name) in client.get("/public").text
    client.logout()
    client.register_and_login("fan")
    assert "You are now following &#34;Roger Histand ØÆ 東京&#34;" in client.follow(name).text


def test_twoot_rows_show_gravatar_author_and_utc_time(client):
    client.register_and_login("foo")
    client.add_message("timed")
    page = client.get("/public").text
    assert "gravatar.com/avatar/" in page
    assert 'href="/foo"' in page
    assert re.search(r"\d{4}-\d{2}-\d{2} @ \d{2}:\d{2}", page)


def test_flagged_messages_never_appear(client, app):
    from twooter.extensions import db
    from twooter.data.tables import Message

    client.register_and_login("foo")
    client.add_message("visible twoot")
    client.add_message("hidden twoot")
    with app.app_context():
        hidden = db.session.query(Message).filter_by(text="hidden twoot").one()
        hidden.flagged = True
        db.session.commit()
    for path in ("/", "/public", "/foo"):
        page = client.get(path).text
        assert "visible twoot" in page and "hidden twoot" not in page, path


def test_more_pages_walk_the_whole_timeline_without_offset(client):
    client.register_and_login("foo")
    for n in range(75):
        client.add_message(f"twoot number {n:03d}")
    seen = []
    path = "/public"
    for _ in range(5):
        page = client.get(path).text
        seen += [n for n in range(75) if f"twoot number {n:03d}" in page]
        if 'id="more"' not in page:
            break
        path = "/public" + re.search(r'href="(\?before=[0-9-]+)"', page).group(1)
    assert sorted(seen, reverse=True) == list(range(74, -1, -1))
    assert len(seen) == len(set(seen)) == 75


def test_bad_page_cursor_is_a_400(client):
    response = client.get("/public?before=yesterday")
    assert response.status_code == 400
    assert "cursor" in response.text


def test_htmx_requests_get_partials(client):
    client.register("bar")
    client.register_and_login("foo")
    hx = {"HX-Request": "true"}
    posted = client.post("/add_message", {"text": "via htmx"}, headers=hx)
    assert posted.status_code == 200
    assert "<html" not in posted.text and "via htmx" in posted.text
    assert 'hx-swap-oob="true"' in posted.text and "Your message was recorded" in posted.text
    timeline = client.get("/public", headers=hx)
    assert "<html" not in timeline.text and "via htmx" in timeline.text
    full = client.get("/public")
    assert "<html" in full.text
    status = client.post("/bar/follow", headers=hx)
    assert 'id="follow-status"' in status.text and "<html" not in status.text
    assert "You are currently following this user." in status.text
