"""/metrics over a real server: requests by route rule, latency, simulator actions, domain events
counted when committed, log records by level, database pool and log disk, build and
configuration info; and who may read it."""
from __future__ import annotations

import http.client
import shutil

import pytest
from flask import Flask

from tests.scrape import Scrape
from tests.servers import LiveServer, build_app
from tests.twooter_client import TwooterClient
from twooter import create_app, metrics
from twooter.data import accounts as account_data, timelines as timeline_data
from twooter.extensions import db
from twooter.logwriter import settings as log_settings
from tests.logfiles import read_records


def simulator(app: Flask) -> dict[str, str]:
    return {"Authorization": app.config["SIMULATOR_AUTHORIZATION"]}


def test_requests_are_counted_by_route_rule_never_by_raw_path(app, server, client):
    for name in ("alice", "bob", "carol"):
        client.register(name, "pw")
    for name in ("alice", "bob", "carol", "nobody-1", "nobody-2"):
        client.get(f"/{name}")
    client.get("/public")
    scrape = Scrape.of(server.url)
    routes = scrape.label_values("twooter_http_requests_total", "route")
    assert "/<username>" in routes and "/public" in routes and "/register" in routes
    assert not any(name in scrape.text for name in ("alice", "bob", "carol", "nobody-1"))
    assert scrape.value("twooter_http_requests_total", route="/<username>", method="GET", status="200") == 3
    assert scrape.value("twooter_http_requests_total", route="/<username>", method="GET", status="404") == 2
    assert scrape.value("twooter_http_request_duration_seconds_count", route="/<username>", method="GET") == 5
    assert scrape.value("twooter_http_request_duration_seconds_sum", route="/<username>", method="GET") > 0
    # A method nobody routes, and a path no rule matches, each make one series, not one per value.
    for method in ("BREW", "PROPFIND"):
        http_request(server.port, method, "/public")
    client.get("/static/none/such/file-1.css")
    client.get("/a/b/c/d")
    client.get("/e/f/g/h")
    scrape = Scrape.of(server.url)
    assert scrape.value("twooter_http_requests_total", route=metrics.NO_ROUTE, method="other", status="405") == 2
    assert scrape.value("twooter_http_requests_total", route=metrics.NO_ROUTE, method="GET", status="404") == 2
    assert "/a/b/c/d" not in scrape.text and "BREW" not in scrape.text


def http_request(port: int, method: str, path: str, headers: dict | None = None,
                 source: str | None = None) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30,
                                            source_address=(source, 0) if source else None)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def test_domain_events_and_simulator_actions_are_counted(app, server, make_client):
    web = make_client()
    web.register("writer", "pw")
    web.register("reader", "pw")
    assert web.login("writer", "wrong").status_code == 401
    web.login("writer", "pw")
    web.add_message("hello from the web")
    web.follow("reader")
    web.unfollow("reader")
    api = make_client()
    headers = simulator(app)
    assert api.post("/register", json={"username": "sim", "email": "s@x.org", "pwd": "p"}).status_code == 204
    assert api.post("/register", json={"username": "sim", "email": "s@x.org", "pwd": "p"}).status_code == 400
    assert api.post("/msgs/sim", json={"content": "one"}, headers=headers).status_code == 204
    assert api.post("/msgs/sim", json={"content": "two"}, headers=headers).status_code == 204
    assert api.post("/msgs/ghost", json={"content": "lost"}, headers=headers).status_code == 404
    assert api.post("/fllws/sim", json={"follow": "writer"}, headers=headers).status_code == 204
    assert api.post("/fllws/sim", json={"unfollow": "writer"}, headers=headers).status_code == 204
    assert api.post("/fllws/sim", json={"follow": "ghost"}, headers=headers).status_code == 404
    assert api.get("/msgs", headers=headers).status_code == 200
    assert api.get("/latest").status_code == 200
    scrape = Scrape.of(server.url)
    assert scrape.value("twooter_registrations_total", via="web") == 2
    assert scrape.value("twooter_registrations_total", via="api") == 1
    assert scrape.value("twooter_logins_total", outcome="success") == 1
    assert scrape.value("twooter_logins_total", outcome="failure") == 1
    assert scrape.value("twooter_twoots_posted_total", via="web") == 1
    assert scrape.value("twooter_twoots_posted_total", via="api") == 2
    assert scrape.value("twooter_follows_total", change="follow", via="web") == 1
    assert scrape.value("twooter_follows_total", change="unfollow", via="web") == 1
    assert scrape.value("twooter_follows_total", change="follow", via="api") == 1
    assert scrape.value("twooter_follows_total", change="unfollow", via="api") == 1
    action = "twooter_simulator_actions_total"
    assert scrape.value(action, action="register", outcome="ok") == 1
    assert scrape.value(action, action="register", outcome="refused") == 1
    assert scrape.value(action, action="tweet", outcome="ok") == 2
    assert scrape.value(action, action="tweet", outcome="refused") == 1
    assert scrape.value(action, action="follow", outcome="ok") == 1
    assert scrape.value(action, action="follow", outcome="refused") == 1
    assert scrape.value(action, action="unfollow", outcome="ok") == 1
    assert scrape.value(action, action="read_messages", outcome="ok") == 1
    assert scrape.value(action, action="latest", outcome="ok") == 1
    # The web's own registrations are not simulator actions.
    assert scrape.total(action, action="register") == 2
    with app.app_context():
        assert timeline_data.latest_messages(10) and len(timeline_data.latest_messages(10)) == 3


def test_a_change_is_counted_when_committed_and_forgotten_when_rolled_back(app):
    with app.test_request_context("/"):
        account_data.user_by_name("anyone")  # a transaction is open
        metrics.on_commit("twoot", via="web")
        db.session.rollback()
        db.session.commit()
        account_data.user_by_name("anyone")
        metrics.on_commit("twoot", via="web")
        metrics.on_commit("follow", change="follow", via="web")
        committed_before = scrape_app(app).value("twooter_twoots_posted_total", via="web")
        db.session.commit()
        # With no transaction open the change is already stored: counted at once.
        metrics.on_commit("registration", via="web")
    after = scrape_app(app)
    assert committed_before == 0
    assert after.value("twooter_twoots_posted_total", via="web") == 1
    assert after.value("twooter_follows_total", change="follow", via="web") == 1
    assert after.value("twooter_registrations_total", via="web") == 1


def scrape_app(app: Flask) -> Scrape:
    with app.test_client() as local:
        response = local.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert response.status_code == 200
    return Scrape(response.get_data(as_text=True))


def test_log_records_pool_disk_build_and_config(app, server, client):
    client.register_and_login("watcher", "pw")
    client.get("/nobody-here")
    client.get("/public?before=garbage")
    # A logged-in request holds a database connection while /metrics is rendered.
    scrape = Scrape.of(server.url, cookies=client.http.cookies)
    written = [r for r in read_records(log_settings.of(app).folder)]
    for level in ("INFO", "ERROR"):
        # Records written while the scrape was rendered come after its count.
        counted = scrape.value("twooter_log_records_total", level=level)
        assert counted >= 1
        assert counted == sum(r.level == level for r in written if r.request.get("path") != "/metrics")
    assert scrape.value("twooter_log_records_total", level="ERROR") == 2
    assert scrape.value("twooter_db_pool_connections_in_use") >= 1
    usage = shutil.disk_usage(log_settings.of(app).folder)
    assert 0 < scrape.value("twooter_log_folder_free_bytes") <= usage.total
    assert scrape.value("twooter_log_folder_filesystem_bytes") == usage.total
    (build,) = [labels for name, labels, _ in scrape.samples if name == "twooter_build_info"]
    assert build["version"] and build["python"]
    (config,) = [labels for name, labels, _ in scrape.samples if name == "twooter_config_info"]
    with app.app_context():
        assert config["database"] == db.engine.dialect.name
    assert config["instance_name"] == log_settings.of(app).instance
    # The counters that the data layer's retries and replica reads will use are there.
    assert "twooter_db_replica_reads_total" in scrape.text
    assert scrape.label_values("twooter_db_retries_total", "outcome") == set(metrics.DB_RETRY_OUTCOMES)


def test_retries_and_replica_reads_count_for_the_app_at_hand(app):
    with app.app_context():
        metrics.count_db_retry("committed")
        metrics.count_db_retry("committed")
        metrics.count_db_retry("failed")
        metrics.count_replica_read()
        with pytest.raises(ValueError):
            metrics.count_db_retry("maybe")
    scrape = scrape_app(app)
    assert scrape.value("twooter_db_retries_total", outcome="committed") == 2
    assert scrape.value("twooter_db_retries_total", outcome="failed") == 1
    assert scrape.value("twooter_db_replica_reads_total") == 1


def test_only_loopback_reads_metrics_by_default_and_a_proxied_request_needs_the_token(app, server):
    assert http_request(server.port, "GET", "/metrics")[0] == 200
    assert http_request(server.port, "GET", "/metrics", source="127.0.0.9")[0] == 200
    # waitress drops proxy headers it was not told to trust; a WSGI server that passes them on
    # shows a request relayed by a proxy on this machine, which must not count as loopback.
    with app.test_client() as local:
        for header in ("X-Forwarded-For", "Forwarded"):
            relayed = local.get("/metrics", headers={header: "203.0.113.7"}, environ_base={"REMOTE_ADDR": "127.0.0.1"})
            assert relayed.status_code == 404 and b"twooter_http_requests_total" not in relayed.data


@pytest.fixture
def guarded(backend, tmp_path, request):
    """An instance that lets 127.0.0.2 and a token read /metrics, not the rest of loopback."""
    postgres = request.getfixturevalue("postgres") if backend == "postgresql" else None
    app = build_app(backend, tmp_path / "instance", postgres, METRICS_ALLOW="127.0.0.2/32, 10.0.0.0/8",
                    METRICS_TOKEN="s3cret-scrape-token")
    with LiveServer(app) as live:
        yield live


def test_other_networks_and_a_bearer_token_by_configuration(guarded):
    assert http_request(guarded.port, "GET", "/metrics")[0] == 404
    assert http_request(guarded.port, "GET", "/metrics", source="127.0.0.2")[0] == 200
    assert http_request(guarded.port, "GET", "/metrics", source="127.0.0.3")[0] == 404
    token = {"Authorization": "Bearer s3cret-scrape-token"}
    assert http_request(guarded.port, "GET", "/metrics", token)[0] == 200
    assert http_request(guarded.port, "GET", "/metrics", {**token, "X-Forwarded-For": "203.0.113.7"})[0] == 200
    for wrong in ("Bearer s3cret-scrape-tokeN", "Bearer ", "s3cret-scrape-token", "Basic czNjcmV0"):
        status, body = http_request(guarded.port, "GET", "/metrics", {"Authorization": wrong})
        assert status == 404 and "twooter_" not in body
    status, body = http_request(guarded.port, "GET", "/metrics", source="127.0.0.2")
    assert "s3cret-scrape-token" not in body


def test_an_unusable_network_setting_stops_the_app_naming_the_variable(tmp_path):
    with pytest.raises(metrics.MetricsConfigError, match="TWOOTER_METRICS_ALLOW: '10.0.0.300/8'"):
        create_app({"INSTANCE_PATH": tmp_path / "instance", "METRICS_ALLOW": "127.0.0.1 10.0.0.300/8"})


def test_metrics_can_be_turned_off(backend, tmp_path, request):
    postgres = request.getfixturevalue("postgres") if backend == "postgresql" else None
    app = build_app(backend, tmp_path / "instance", postgres, METRICS_ENABLED=False)
    with LiveServer(app) as live:
        client = TwooterClient(live.url)
        client.register("quiet", "pw")
        assert client.get("/metrics").status_code == 404
    assert metrics.EXTENSION not in app.extensions
