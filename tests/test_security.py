"""Cross-site requests, redirects, cookies and password storage, over a real socket."""
from __future__ import annotations

import stat

import pytest
from werkzeug.security import generate_password_hash

from tests.servers import build_app
from tests import seed
from twooter import passwords
from twooter.data import accounts
from twooter.extensions import db

CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}


def test_cross_site_post_is_refused_and_records_nothing(client):
    client.register_and_login("victim")
    refused = client.post("/add_message", {"text": "forged"}, headers=CROSS_SITE)
    assert refused.status_code == 403
    assert "Cross-origin request refused" in refused.text
    assert "forged" not in client.get("/").text


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
    ids=["foreign-origin", "opaque-origin", "same-site", "cross-site"],
)
def test_every_cross_origin_shape_is_refused(client, headers):
    client.register_and_login("victim")
    assert client.post("/add_message", {"text": "forged"}, headers=headers).status_code == 403


def test_same_origin_and_headerless_posts_pass(client):
    client.register_and_login("author")
    same_origin = client.post(
        "/add_message", {"text": "from our page"},
        headers={"Sec-Fetch-Site": "same-origin", "Origin": client.base_url},
    )
    assert "Your message was recorded" in same_origin.text
    origin_only = client.post("/add_message", {"text": "old browser"}, headers={"Origin": client.base_url})
    assert "Your message was recorded" in origin_only.text
    headerless = client.add_message("from a script")
    assert "Your message was recorded" in headerless.text
    typed_url = client.get("/logout", headers={"Sec-Fetch-Site": "none"})
    assert "You were logged out" in typed_url.text


def test_cross_site_legacy_gets_are_refused(client):
    client.register("target")
    client.register_and_login("victim")
    assert client.get("/target/follow", headers=CROSS_SITE).status_code == 403
    assert "You are not yet following this user." in client.get("/target").text
    client.follow("target")
    assert client.get("/target/unfollow", headers=CROSS_SITE).status_code == 403
    assert "You are currently following this user." in client.get("/target").text
    assert client.get("/logout", headers=CROSS_SITE).status_code == 403
    assert "sign out [victim]" in client.get("/public").text


def test_cross_site_reads_are_allowed(client):
    assert client.get("/public", headers=CROSS_SITE).status_code == 200


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "https://evil.example/", "/\\evil.example", "http:/evil.example", "javascript:alert(1)"],
)
def test_login_next_cannot_leave_the_site(client, target):
    client.register("someone")
    response = client.post(
        "/login", {"username": "someone", "password": "default", "next": target}, allow_redirects=False
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_login_next_keeps_local_paths(client):
    client.register("someone")
    response = client.post(
        "/login", {"username": "someone", "password": "default", "next": "/public"}, allow_redirects=False
    )
    assert response.headers["Location"] == "/public"


def test_session_cookie_flags(client):
    client.register("someone")
    response = client.post("/login", {"username": "someone", "password": "default"}, allow_redirects=False)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "default" not in cookie


def test_new_passwords_are_argon2id_with_owasp_minimum(client, app):
    client.register("fresh", "s3cret!")
    with app.app_context():
        stored = accounts.user_by_name("fresh").pw_hash
    assert stored.startswith("$argon2id$")
    parameters = dict(part.split("=") for part in stored.split("$")[3].split(","))
    assert int(parameters["m"]) >= 19 * 1024 and int(parameters["t"]) >= 2 and int(parameters["p"]) >= 1


SHA256_OF_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_csharp_era_format_is_decimal_bytes_concatenated():
    expected = "".join(str(int(SHA256_OF_ABC[i:i + 2], 16)) for i in range(0, 64, 2))
    assert passwords.legacy_csharp_hash("abc") == expected
    assert passwords.verify_password(expected, "abc")
    assert not passwords.verify_password(expected, "abd")


@pytest.mark.parametrize(
    "legacy_hash",
    [
        lambda pw: generate_password_hash(pw, method="pbkdf2:sha256"),
        lambda pw: generate_password_hash(pw, method="scrypt"),
        passwords.legacy_csharp_hash,
    ],
    ids=["werkzeug-pbkdf2", "werkzeug-scrypt", "csharp-sha256"],
)
def test_legacy_hashes_log_in_and_are_upgraded(client, app, legacy_hash):
    with app.app_context():
        seed.user("old timer", "old@example.com", legacy_hash("hunter2 ü"))
    assert "Invalid password" in client.login("old timer", "wrong").text
    with app.app_context():
        assert not accounts.user_by_name("old timer").pw_hash.startswith("$argon2")
    assert "You were logged in" in client.login("old timer", "hunter2 ü").text
    with app.app_context():
        upgraded = accounts.user_by_name("old timer").pw_hash
    assert upgraded.startswith("$argon2id$")
    client.logout()
    assert "You were logged in" in client.login("old timer", "hunter2 ü").text


def test_unknown_hash_formats_never_verify():
    assert not passwords.verify_password("plaintext", "plaintext")
    assert not passwords.verify_password("$argon2id$garbage", "x")


def test_secret_key_is_generated_once_into_the_instance(tmp_path):
    folder = tmp_path / "instance"
    first = build_app("sqlite", folder, None)
    second = build_app("sqlite", folder, None)
    key_file = folder / "secret_key"
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] == key_file.read_text().strip()
    assert len(first.config["SECRET_KEY"]) >= 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    for app in (first, second):
        with app.app_context():
            db.engine.dispose()
