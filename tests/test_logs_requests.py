"""The records requests leave, over a real server and real files: one per request with its id,
ERROR with the reason for every failure, INFO per posted message, WARN for suspicious
activity, and never a secret."""
from __future__ import annotations

import json
import logging

from flask import request

from tests.logfiles import read_records
from tests.servers import LiveServer, build_app
from tests.twooter_client import TwooterClient
from twooter.logwriter import records, settings

SECRET_PASSWORD = "S3cret|pässwörd-\"x\""


def log_records(app) -> list[records.Record]:
    return read_records(settings.of(app).folder)


def raw_log_bytes(app) -> bytes:
    return b"".join(path.read_bytes() for path in settings.of(app).folder.iterdir())


def request_records(app, path_start: str) -> list[records.Record]:
    return [r for r in log_records(app)
            if r.logger == "twooter.requests" and str(r.request.get("path", "")).startswith(path_start)]


def test_every_request_has_one_record_with_its_fields_and_id(app, client):
    response = client.get("/public")
    assert response.status_code == 200
    request_id = response.headers["X-Request-Id"]
    (record,) = request_records(app, "/public")
    assert (record.level, record.request["method"], record.request["status"]) == ("INFO", "GET", 200)
    assert record.request["rid"] == request_id
    assert record.request["client"] == "127.0.0.1"
    assert isinstance(record.request["ms"], float) and record.request["ms"] >= 0
    assert record.instance == settings.of(app).instance
    # A proxy's request id is kept, so lines can be followed across the load balancer.
    relayed = client.get("/public", headers={"X-Request-Id": "lb-1234abcd"})
    assert relayed.headers["X-Request-Id"] == "lb-1234abcd"
    assert any(r.request_id == "lb-1234abcd" for r in request_records(app, "/public"))


def test_posting_a_message_logs_one_info_with_the_request_id(app, client):
    client.register_and_login("poster", SECRET_PASSWORD)
    response = client.add_message("hello | world")
    posted = [r for r in log_records(app) if "twoot posted by poster" in r.message]
    assert len(posted) == 1 and posted[0].level == "INFO"
    post_request = request_records(app, "/add_message")
    assert len(post_request) == 1
    assert posted[0].request_id == post_request[0].request_id == response.history[0].headers["X-Request-Id"]


def test_simulator_message_post_logs_info_and_wrong_credentials_warn(app, client):
    authorization = app.config["SIMULATOR_AUTHORIZATION"]
    client.register("simuser", SECRET_PASSWORD)
    posted = client.post("/msgs/simuser", json={"content": "from the simulator"},
                         headers={"Authorization": authorization})
    assert posted.status_code == 204
    assert [r.level for r in log_records(app) if "message posted by simuser" in r.message] == ["INFO"]
    refused = client.post("/msgs/simuser", json={"content": "x"}, headers={"Authorization": "Basic bm9wZTpub3BlMTIz"})
    assert refused.status_code == 403
    assert any(r.level == "WARN" and "simulator credentials" in r.message for r in log_records(app))
    failed = request_records(app, "/msgs/simuser")[-1]
    assert (failed.level, failed.request["status"]) == ("ERROR", 403)
    assert b"bm9wZTpub3BlMTIz" not in raw_log_bytes(app)
    assert authorization.split(" ")[-1].encode() not in raw_log_bytes(app)


def test_every_failed_request_is_an_error_with_the_reason(app, client):
    assert client.get("/nobody-by-this-name").status_code == 404
    assert client.post("/add_message", {"text": "anonymous"}).status_code == 401
    assert client.get("/public?before=garbage").status_code == 400
    assert client.post("/public", headers={"Origin": "https://evil.example"}).status_code in (403, 405)
    failures = {r.request["path"]: r for r in log_records(app) if r.logger == "twooter.requests" and r.request["status"] >= 400}
    assert failures["/nobody-by-this-name"].level == "ERROR"
    assert "There is no user called 'nobody-by-this-name'" in failures["/nobody-by-this-name"].message
    assert "You have to be logged in" in failures["/add_message"].message
    assert "not a page cursor" in failures["/public?before=garbage"].message
    assert all(record.level == "ERROR" for record in failures.values())


def test_an_uncaught_exception_is_one_error_with_traceback_and_a_clean_500(backend, tmp_path, request):
    postgres = request.getfixturevalue("postgres") if backend == "postgresql" else None
    app = build_app(backend, tmp_path / "instance", postgres)

    def explode():
        raise ZeroDivisionError("kaboom in a view")

    app.add_url_rule("/explode", view_func=explode)
    with LiveServer(app) as server:
        response = TwooterClient(server.url).get("/explode")
        as_json = TwooterClient(server.url).get("/explode", headers={"Accept": "application/json"})
    assert response.status_code == 500 and "Traceback" not in response.text and "kaboom" not in response.text
    assert as_json.json() == {"status": 500, "error_msg": "Something went wrong on our side."}
    failures = request_records(app, "/explode")
    assert len(failures) == 2
    first = failures[0]
    assert (first.level, first.request["status"]) == ("ERROR", 500)
    assert "unhandled ZeroDivisionError: kaboom in a view" in first.message
    assert first.exception.splitlines()[-1] == "ZeroDivisionError: kaboom in a view"
    assert first.request_id == response.headers["X-Request-Id"]
    assert not [r for r in log_records(app) if r.logger != "twooter.requests" and "kaboom" in r.message]


def test_cross_origin_refusal_warns_with_the_request_id(app, client):
    client.register_and_login("victim", SECRET_PASSWORD)
    refused = client.post("/add_message", {"text": "forged"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert refused.status_code == 403
    warning = [r for r in log_records(app) if r.level == "WARN" and "cross-origin" in r.message]
    assert len(warning) == 1
    assert warning[0].request_id == refused.headers["X-Request-Id"]


def test_repeated_failed_logins_for_one_name_warn_across_instances(backend, tmp_path, request):
    """Two instances behind a load balancer share a log folder; the count spans both."""
    postgres = request.getfixturevalue("postgres") if backend == "postgresql" else None
    shared = tmp_path / "shared-logs"
    first = build_app(backend, tmp_path / "a", postgres, LOG_DIR=shared, LOG_INSTANCE_NAME="web1")
    second = build_app(backend, tmp_path / "b", postgres, LOG_DIR=shared, LOG_INSTANCE_NAME="web2")
    with LiveServer(first) as one, LiveServer(second) as two:
        TwooterClient(one.url).register("target", SECRET_PASSWORD)
        for attempt in range(4):
            server = one if attempt % 2 else two
            assert TwooterClient(server.url).login("target", f"guess-{attempt}").status_code == 401
        assert not [r for r in log_records(first) if r.level == "WARN" and "repeated failed logins" in r.message]
        TwooterClient(one.url).login("target", "guess-4")
        TwooterClient(two.url).login("someone-else", "x")
    warnings = [r for r in log_records(first) if r.level == "WARN" and "repeated failed logins" in r.message]
    assert len(warnings) == 1
    assert warnings[0].message.startswith('repeated failed logins for "target": 5 in the last 15 minutes')
    assert {r.instance for r in log_records(first) if 'login failed for "target"' in r.message} == {"web1", "web2"}
    assert b"guess-" not in b"".join(path.read_bytes() for path in shared.iterdir())


def test_secrets_never_reach_a_log_line(app):
    careless = logging.getLogger("twooter.careless")

    def chatty():
        # Code that logs far too much must still not leak anything.
        careless.warning("headers: %s", dict(request.headers))
        careless.warning("form: %s cookies: %s", request.form.to_dict(), request.cookies)
        careless.warning("Authorization: %s", request.headers.get("Authorization"))
        careless.warning('{"password": "%s"} password=%s', "hunter2-literal", "hunter3-literal")
        return "ok"

    app.add_url_rule("/chatty", view_func=chatty, methods=["POST"])
    with LiveServer(app) as server:
        visitor = TwooterClient(server.url)
        visitor.register_and_login("careful", SECRET_PASSWORD)
        session_cookie = visitor.http.cookies.get("session")
        assert session_cookie
        visitor.post("/chatty?token=query-token-123", {"password": SECRET_PASSWORD, "csrf_token": "csrf-abcdef-123"},
                     headers={"Authorization": "Bearer auth-token-xyz"})
        visitor.login("careful", "wrong-" + SECRET_PASSWORD)
    everything = raw_log_bytes(app)
    assert b"twooter.careless" in everything
    for secret in [SECRET_PASSWORD, "wrong-" + SECRET_PASSWORD, session_cookie, "csrf-abcdef-123", "auth-token-xyz",
                   "query-token-123", "hunter2-literal", "hunter3-literal"]:
        for form in {secret, json.dumps(secret, ensure_ascii=False)[1:-1]}:
            assert form.encode() not in everything, secret
    assert b"[redacted]" in everything
