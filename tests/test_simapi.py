"""The simulator's JSON API contract, over a real socket, on SQLite and PostgreSQL."""
from __future__ import annotations

import logging
import time
from urllib.parse import quote

import pytest
import requests
import sqlalchemy as sa

from tests.scenario import SIMULATOR_AUTHORIZATION
from tests.servers import LiveServer, build_app
from tests.twooter_client import TIMEOUT
from twooter.extensions import db

UNAUTHORIZED = {"status": 403, "error_msg": "You are not authorized to use this resource!"}


class Simulator:
    """Speaks to the API as the simulator does: JSON bodies, its credentials, one connection per request."""

    def __init__(self, base_url: str, authorization: str | None = SIMULATOR_AUTHORIZATION):
        self.base_url = base_url
        self.authorization = authorization

    def request(self, method: str, path: str, json=None, data=None, headers=None, **params):
        sent = {"Connection": "close", **(headers or {})}
        if self.authorization is not None:
            sent.setdefault("Authorization", self.authorization)
        return requests.request(
            method, self.base_url + path, json=json, data=data, headers=sent,
            params={k: v for k, v in params.items() if v is not None}, timeout=TIMEOUT,
        )

    def latest(self) -> int:
        response = self.request("GET", "/latest")
        assert response.status_code == 200
        return response.json()["latest"]

    def register(self, username, email=None, pwd="secret", latest=None):
        body = {"username": username, "email": email if email is not None else f"{username}@example.org", "pwd": pwd}
        return self.request("POST", "/register", json=body, latest=latest)

    def post(self, username, content, latest=None):
        return self.request("POST", f"/msgs/{quote(username, safe='')}", json={"content": content}, latest=latest)

    def messages(self, username=None, no=None, latest=None):
        path = "/msgs" if username is None else f"/msgs/{quote(username, safe='')}"
        return self.request("GET", path, no=no, latest=latest)

    def follow(self, username, other, latest=None, verb="follow"):
        return self.request("POST", f"/fllws/{quote(username, safe='')}", json={verb: other}, latest=latest)

    def unfollow(self, username, other, latest=None):
        return self.follow(username, other, latest, verb="unfollow")

    def follows(self, username, no=None, latest=None):
        return self.request("GET", f"/fllws/{quote(username, safe='')}", no=no, latest=latest)


@pytest.fixture
def sim(server) -> Simulator:
    return Simulator(server.url)


def assert_error(response, status: int, reason: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status
    assert body["error_msg"]
    assert "Traceback" not in response.text
    if reason is not None:
        assert body["error_msg"] == reason


def test_latest_is_recorded_by_every_endpoint_whatever_it_answers(sim):
    assert sim.latest() == -1
    sim.register("alice")
    sim.register("bob")
    calls = [
        lambda n: sim.register("carol", latest=n),                    # 204
        lambda n: sim.register("carol", latest=n),                    # 400 taken
        lambda n: sim.post("alice", "hello", latest=n),               # 204
        lambda n: sim.post("nobody", "hello", latest=n),              # 404
        lambda n: sim.messages(latest=n),                             # 200
        lambda n: sim.messages("alice", latest=n),                    # 200
        lambda n: sim.messages("nobody", latest=n),                   # 404
        lambda n: sim.follow("alice", "bob", latest=n),               # 204
        lambda n: sim.unfollow("alice", "nobody", latest=n),          # 404
        lambda n: sim.follows("alice", latest=n),                     # 200
        lambda n: sim.follows("alice", no="many", latest=n),          # 400
        lambda n: Simulator(sim.base_url, None).messages(latest=n),  # 403
    ]
    statuses = []
    for number, call in enumerate(calls, start=100):
        statuses.append(call(number).status_code)
        assert sim.latest() == number
    assert statuses == [204, 400, 204, 404, 200, 200, 404, 204, 404, 200, 400, 403]
    # A `latest` that is not an integer is refused and leaves the stored one alone.
    assert_error(sim.messages(latest="12a"), 400)
    assert_error(sim.messages(latest=str(2**63)), 400)
    assert sim.latest() == 100 + len(calls) - 1
    assert sim.register("dave", latest=2**63 - 1).status_code == 204
    assert sim.latest() == 2**63 - 1


def test_register_and_its_errors(sim):
    assert sim.register("Roger Histand").status_code == 204
    assert_error(sim.register("Roger Histand"), 400, "The username is already taken")
    assert_error(sim.register(""), 400, "You have to enter a username")
    assert_error(sim.request("POST", "/register", json={"email": "x@y", "pwd": "p"}), 400,
                 "You have to enter a username")
    assert_error(sim.register("meh", email="broken"), 400, "You have to enter a valid email address")
    assert_error(sim.register("meh", pwd=""), 400, "You have to enter a password")
    assert_error(sim.request("POST", "/register", json={"username": "meh", "email": "m@x"}), 400,
                 "You have to enter a password")
    assert_error(sim.request("POST", "/register", json={"username": 5, "email": "m@x", "pwd": "p"}), 400)
    assert_error(sim.request("POST", "/register", json=["meh"]), 400)
    assert_error(sim.request("POST", "/register", data="{not json", headers={"Content-Type": "application/json"}), 400)


def test_registered_user_can_log_in_on_the_web(sim, client):
    assert sim.register("web user", pwd="pa ss").status_code == 204
    assert "You were logged in" in client.login("web user", "pa ss").text


def test_a_form_post_to_register_still_gets_the_page(sim, client):
    response = client.register("form user")
    assert "You were successfully registered and can login now" in response.text
    assert response.url.endswith("/login")
    assert_error(sim.register("form user"), 400, "The username is already taken")


def test_credentials_are_required_except_for_register_and_latest(sim):
    sim.register("alice")
    protected = [
        ("GET", "/msgs", None), ("GET", "/msgs/alice", None), ("POST", "/msgs/alice", {"content": "x"}),
        ("GET", "/fllws/alice", None), ("POST", "/fllws/alice", {"follow": "alice"}),
    ]
    for authorization in (None, "Basic bm9ib2R5Om5vcGU=", SIMULATOR_AUTHORIZATION + "x", "Basic ÿ"):
        anonymous = Simulator(sim.base_url, authorization)
        for method, path, body in protected:
            response = anonymous.request(method, path, json=body)
            assert response.status_code == 403, (method, path, authorization)
            assert response.json() == UNAUTHORIZED
        assert anonymous.request("GET", "/latest").status_code == 200
    assert Simulator(sim.base_url, None).register("bob").status_code == 204
    assert sim.messages("alice").json() == []


def test_credentials_come_from_the_environment(backend, tmp_path, request, monkeypatch):
    monkeypatch.setenv("TWOOTER_SIMULATOR_AUTH", "Basic b3RoZXI6Y3JlZHM=")
    postgres = request.getfixturevalue("postgres") if backend == "postgresql" else None
    app = build_app(backend, tmp_path / "instance", postgres)
    with LiveServer(app) as live:
        assert Simulator(live.url).messages().status_code == 403
        assert Simulator(live.url, "Basic b3RoZXI6Y3JlZHM=").messages().json() == []


def flag(app, text: str) -> None:
    with app.app_context():
        db.session.execute(sa.text("UPDATE messages SET flagged = :yes WHERE text = :text"),
                           {"yes": True, "text": text})
        db.session.commit()
        db.session.remove()


def test_messages_newest_first_per_user_and_without_flagged(sim, app):
    name = "Roger Histand ØÆ 東京"
    sim.register(name)
    sim.register("bob")
    before = int(time.time())
    for number in range(1, 4):
        assert sim.post(name, f"roger {number}").status_code == 204
    assert sim.post("bob", "bob <b>1</b>").status_code == 204
    sim.post("bob", "flag me")
    flag(app, "flag me")
    after = int(time.time())

    everyone = sim.messages().json()
    assert [(m["user"], m["content"]) for m in everyone] == [
        ("bob", "bob <b>1</b>"), (name, "roger 3"), (name, "roger 2"), (name, "roger 1"),
    ]
    assert all(set(m) == {"content", "pub_date", "user"} for m in everyone)
    assert all(type(m["pub_date"]) is int and before <= m["pub_date"] <= after for m in everyone)
    assert [m["content"] for m in sim.messages(no=2).json()] == ["bob <b>1</b>", "roger 3"]
    assert sim.messages(no=0).json() == []
    assert [m["content"] for m in sim.messages(name, no=2).json()] == ["roger 3", "roger 2"]
    assert [m["content"] for m in sim.messages("bob").json()] == ["bob <b>1</b>"]
    assert_error(sim.messages("nobody"), 404)
    assert_error(sim.post("nobody", "hi"), 404)


def test_messages_default_to_a_hundred(sim):
    sim.register("chatty")
    for number in range(101):
        sim.post("chatty", f"message {number}")
    assert len(sim.messages().json()) == 100
    assert len(sim.messages("chatty").json()) == 100
    assert len(sim.messages("chatty", no=1000).json()) == 101


def test_follow_and_unfollow_are_idempotent(sim):
    for name in ("alice", "Roger Histand", "Zoë"):
        sim.register(name)
    assert sim.follows("alice").json() == {"follows": []}
    assert sim.follow("alice", "Roger Histand").status_code == 204
    assert sim.follow("alice", "Roger Histand").status_code == 204
    assert sim.follow("alice", "Zoë").status_code == 204
    assert sim.follows("alice").json() == {"follows": ["Roger Histand", "Zoë"]}
    assert len(sim.follows("alice", no=1).json()["follows"]) == 1
    assert sim.unfollow("alice", "Roger Histand").status_code == 204
    assert sim.unfollow("alice", "Roger Histand").status_code == 204
    assert sim.follows("alice").json() == {"follows": ["Zoë"]}
    assert sim.follows("Zoë").json() == {"follows": []}
    assert_error(sim.follow("nobody", "alice"), 404)
    assert_error(sim.follow("alice", "nobody"), 404)
    assert_error(sim.unfollow("alice", "nobody"), 404)
    assert_error(sim.follows("nobody"), 404)
    assert_error(sim.follows("a\x00b"), 404)
    assert_error(sim.messages("a\x00b"), 404)


BAD_REQUESTS = [
    ("POST", "/msgs/alice", {"data": "not json", "headers": {"Content-Type": "application/json"}}),
    ("POST", "/msgs/alice", {"data": "not json"}),
    ("POST", "/msgs/alice", {"json": ["content"]}),
    ("POST", "/msgs/alice", {"json": {}}),
    ("POST", "/msgs/alice", {"json": {"content": 5}}),
    ("POST", "/msgs/alice", {"json": {"content": ""}}),
    ("POST", "/msgs/alice", {"json": {"content": "   "}}),
    ("POST", "/msgs/alice", {"json": {"content": "x" * 1001}}),
    ("POST", "/msgs/alice", {"json": {"content": "nul \x00 inside"}}),
    ("POST", "/msgs/alice", {"data": '{"content": "\\ud800"}'}),
    ("POST", "/fllws/alice", {"json": {}}),
    ("POST", "/fllws/alice", {"json": {"follow": "alice", "unfollow": "alice"}}),
    ("POST", "/fllws/alice", {"json": {"follow": ["alice"]}}),
    ("POST", "/fllws/alice", {"json": "alice"}),
    ("GET", "/msgs", {"no": "ten"}),
    ("GET", "/msgs", {"no": "-1"}),
    ("GET", "/msgs", {"no": "1.5"}),
    ("GET", "/msgs/alice", {"no": ""}),
    ("GET", "/fllws/alice", {"no": "0x10"}),
    ("GET", "/msgs", {"latest": "soon"}),
    ("GET", "/msgs", {"latest": "9" * 5000}),
    ("GET", "/msgs", {"no": "9" * 5000}),
    ("POST", "/register", {"json": {"username": "x", "email": "x@y", "pwd": "p"}, "latest": " 1"}),
    ("POST", "/register", {"json": {"username": "x\x00", "email": "x@y", "pwd": "p"}}),
    ("POST", "/register", {"json": {"username": "x", "email": "x@y\x00", "pwd": "p"}}),
]


def test_bad_input_is_a_400_with_a_reason(sim):
    sim.register("alice")
    for method, path, kwargs in BAD_REQUESTS:
        response = sim.request(method, path, **kwargs)
        assert response.status_code == 400, (method, path, kwargs, response.text)
        assert_error(response, 400)
    assert_error(sim.post("alice", "x" * 100_000), 413)
    assert sim.messages().json() == []


def test_routing_errors_under_api_paths_are_json(sim):
    for method, path, status in [
        ("PUT", "/msgs", 405), ("DELETE", "/msgs/alice", 405), ("PATCH", "/fllws/alice", 405),
        ("POST", "/latest", 405), ("GET", "/msgs/alice/extra", 404), ("GET", "/fllws", 404),
        ("GET", "/fllws/", 404), ("GET", "/msgs/", 404), ("GET", "/latest/", 404),
    ]:
        response = sim.request(method, path)
        assert response.status_code == status, (method, path)
        assert_error(response, status)


@pytest.fixture
def api_log():
    """Records of the API's logger and of the per-request records, whatever handlers the app configures."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append
    loggers = [logging.getLogger(name) for name in ("twooter.simapi", "twooter.requests")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield records
    for logger, level in zip(loggers, levels):
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_logging_of_posts_failures_and_wrong_credentials(sim, api_log):
    sim.register("alice")
    sim.post("alice", "logged")
    Simulator(sim.base_url, "Basic d3Jvbmc=").messages()
    sim.messages("nobody")

    lines = [(record.name, record.levelno, record.getMessage()) for record in api_log]
    assert ("twooter.simapi", logging.INFO, "message posted by alice (6 characters)") in lines
    assert any(level == logging.WARNING and "credentials" in text for _, level, text in lines)
    # One ERROR per failed request: its request record, carrying the reason.
    errors = [(name, text) for name, level, text in lines if level >= logging.ERROR]
    assert errors == [
        ("twooter.requests", "GET /msgs 403: " + UNAUTHORIZED["error_msg"]),
        ("twooter.requests", "GET /msgs/nobody 404: There is no user called 'nobody'."),
    ]


def test_openapi_description_covers_every_api_route(sim, app):
    response = sim.request("GET", "/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.")
    described = {
        (path, method.upper()) for path, operations in spec["paths"].items() for method in operations
    }
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("simapi.") and rule.endpoint != "simapi.openapi":
            path = rule.rule.replace("<", "{").replace(">", "}")
            served |= {(path, method) for method in rule.methods - {"HEAD", "OPTIONS"}}
    served.add(("/register", "POST"))
    assert described == served
