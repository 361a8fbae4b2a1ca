"""Faults caused against a real PostgreSQL while requests change data: retried exactly, or a clean 503.

The app is served by waitress on a socket; its backend is terminated with
pg_terminate_backend, or its connection cut by a loopback proxy (tests/pgproxy.py)
at the moment COMMIT goes out, or the database goes away for longer than
the retry budget.
"""
from __future__ import annotations

import threading

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy import event

from tests.logfiles import read_records
from tests.scrape import Scrape
from tests.pgproxy import CUT, FORWARD_THEN_CUT, GO_AWAY, PostgresProxy, simple_query
from tests.servers import LiveServer, build_app
from tests.twooter_client import TwooterClient
from twooter.extensions import db
from twooter.logwriter import settings

RETRY_SECONDS = 2.0


class Simulator:
    """The simulator's side of the API, over HTTP."""

    def __init__(self, app, url: str):
        self.url = url
        self.headers = {"Authorization": app.config["SIMULATOR_AUTHORIZATION"]}

    def register(self, name: str) -> requests.Response:
        return requests.post(f"{self.url}/register", json={"username": name, "email": f"{name}@x", "pwd": "p"},
                             timeout=30)

    def tweet(self, name: str, content: str, latest: int) -> requests.Response:
        return requests.post(f"{self.url}/msgs/{name}?latest={latest}", json={"content": content},
                             headers=self.headers, timeout=30)

    def latest(self) -> int:
        return requests.get(f"{self.url}/latest", timeout=30).json()["latest"]


def _scalar(url: str, sql: str, **parameters):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text(sql), parameters).scalar()
    finally:
        engine.dispose()


def _twoots_saying(postgres, text: str) -> int:
    return _scalar(postgres.url, "SELECT count(*) FROM messages WHERE text = :text", text=text)


@pytest.fixture
def direct_server(postgres, tmp_path):
    app = build_app("postgresql", tmp_path / "instance", postgres, DATABASE_RETRY_SECONDS=RETRY_SECONDS)
    with LiveServer(app) as live:
        yield live


@pytest.fixture
def proxy(postgres):
    target = sa.make_url(postgres.url)
    with PostgresProxy((target.host, target.port or 5432)) as running:
        yield running


@pytest.fixture
def proxied_server(postgres, proxy, tmp_path):
    app = build_app("postgresql", tmp_path / "instance", postgres,
                    SQLALCHEMY_DATABASE_URI=proxy.url_for(postgres.url), DATABASE_RETRY_SECONDS=RETRY_SECONDS)
    with LiveServer(app) as live:
        yield live


def _terminate_backend_before(app, postgres, statement_start: str) -> list[int]:
    """Before the first statement that starts so, terminate the backend about to run it.

    Returns the list of backend pids that ran such a statement (grows per attempt).
    """
    pids: list[int] = []

    def before_execute(connection, _cursor, statement, _parameters, _context, _many):
        if not statement.startswith(statement_start):
            return
        pid = connection.connection.dbapi_connection.info.backend_pid
        pids.append(pid)
        if len(pids) == 1:
            _scalar(postgres.url, "SELECT pg_terminate_backend(:pid, 10000)", pid=pid)

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", before_execute)
    return pids


def test_a_terminated_backend_mid_unit_is_retried_and_stores_the_twoot_once(direct_server, postgres):
    sim = Simulator(direct_server.app, direct_server.url)
    assert sim.register("ann").status_code == 204
    pids = _terminate_backend_before(direct_server.app, postgres, "INSERT INTO messages")

    response = sim.tweet("ann", "through a terminated backend", latest=41)

    assert response.status_code == 204, response.text
    assert len(pids) == 2 and pids[0] != pids[1]  # the second attempt ran on a new connection
    assert _twoots_saying(postgres, "through a terminated backend") == 1
    assert sim.latest() == 41
    assert Scrape.of(direct_server.url).value("twooter_db_retries_total", outcome="committed") == 1


def test_a_web_post_whose_backend_is_terminated_is_retried(direct_server, postgres):
    visitor = TwooterClient(direct_server.url)
    visitor.register_and_login("bea")
    pids = _terminate_backend_before(direct_server.app, postgres, "INSERT INTO messages")

    response = visitor.add_message("web twoot, backend terminated")

    assert response.status_code == 200 and "Your message was recorded" in response.text
    assert len(pids) == 2
    assert _twoots_saying(postgres, "web twoot, backend terminated") == 1


def test_a_connection_turned_read_only_is_left_and_the_unit_retried(direct_server, postgres):
    """As after a failover: the pooled connections lead to a server that is now a standby."""
    sim = Simulator(direct_server.app, direct_server.url)
    assert sim.register("fay").status_code == 204
    pids: list[int] = []

    def before_execute(connection, cursor, statement, _parameters, _context, _many):
        if statement.startswith("INSERT INTO messages"):
            pids.append(connection.connection.dbapi_connection.info.backend_pid)
            if len(pids) == 1:
                cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY; SET TRANSACTION READ ONLY")

    with direct_server.app.app_context():
        event.listen(db.engine, "before_cursor_execute", before_execute)

    response = sim.tweet("fay", "after the promotion", latest=9)

    assert response.status_code == 204, response.text
    assert len(pids) == 2 and pids[0] != pids[1]
    assert _twoots_saying(postgres, "after the promotion") == 1
    assert sim.latest() == 9


@pytest.mark.parametrize("action", [FORWARD_THEN_CUT, CUT], ids=["server-got-commit", "commit-lost"])
def test_a_connection_cut_at_commit_is_resolved_exactly(proxied_server, proxy, postgres, action):
    """FORWARD_THEN_CUT: the server commits, the client hears nothing (txid_status: committed,
    so no retry); CUT: COMMIT never arrives (aborted, so one retry). One twoot either way."""
    sim = Simulator(proxied_server.app, proxied_server.url)
    assert sim.register("cy").status_code == 204
    proxy.when(simple_query("COMMIT"), action)

    response = sim.tweet("cy", f"cut at commit ({action})", latest=7)

    assert proxy.fired.is_set()
    assert response.status_code == 204, response.text
    assert _twoots_saying(postgres, f"cut at commit ({action})") == 1
    assert sim.latest() == 7


def test_a_database_away_longer_than_the_budget_answers_503_and_writes_nothing(
        proxied_server, proxy, postgres):
    sim = Simulator(proxied_server.app, proxied_server.url)
    assert sim.register("dee").status_code == 204
    assert sim.tweet("dee", "before the outage", latest=1).status_code == 204
    visitor = TwooterClient(proxied_server.url)
    visitor.register_and_login("eve")
    # Away in the middle of the unit: `latest` was sent, the twoot is on its way.
    proxy.when(simple_query("INSERT INTO messages"), GO_AWAY)

    refused = sim.tweet("dee", "during the outage", latest=2)

    assert proxy.fired.is_set()
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["status"] == 503 and "database" in refused.json()["error_msg"]
    page = requests.get(proxied_server.url + "/public", timeout=30)
    assert page.status_code == 503 and "Retry-After" in page.headers
    assert "briefly unavailable" in page.text and "Traceback" not in page.text
    posted = visitor.add_message("a web twoot during the outage")
    assert posted.status_code == 503 and "Retry-After" in posted.headers
    assert "briefly unavailable" in posted.text and "Traceback" not in posted.text
    # The API's tweet is the one writing unit that gave up: the page and the web's
    # post failed while still reading (the post, who is signed in).
    assert Scrape.of(proxied_server.url).value("twooter_db_retries_total", outcome="failed") == 1
    records = [r for r in read_records(settings.of(proxied_server.app).folder)
               if r.request_id == posted.headers["X-Request-Id"]]
    assert [(r.logger, r.level) for r in records if r.logger == "twooter.requests"] == [
        ("twooter.requests", "ERROR")]
    assert not any("twoot posted" in r.message for r in records)

    proxy.come_back()
    assert _twoots_saying(postgres, "during the outage") == 0
    assert _twoots_saying(postgres, "a web twoot during the outage") == 0
    assert _scalar(postgres.url, "SELECT value FROM latest_action") == 1
    assert sim.tweet("dee", "after the outage", latest=3).status_code == 204
    assert sim.latest() == 3


def test_the_retry_budget_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TWOOTER_DB_RETRY_SECONDS", "2.5")
    app = build_app("sqlite", tmp_path, None)
    assert app.config["DATABASE_RETRY_SECONDS"] == 2.5
    with app.test_request_context():
        from twooter.data.unit import retry_after_seconds

        assert retry_after_seconds() == 3


def test_a_login_checking_its_password_does_not_hold_up_a_post_on_sqlite(tmp_path, monkeypatch):
    """argon2 runs outside any transaction: SQLite's one write lock stays free meanwhile."""
    from twooter import accounts

    app = build_app("sqlite", tmp_path, None)
    with LiveServer(app) as server:
        poster, slow = TwooterClient(server.url), TwooterClient(server.url)
        poster.register_and_login("poster")
        slow.register("slow")

        checking, release = threading.Event(), threading.Event()
        real_verify = accounts.verify_password

        def held_verify(stored: str, password: str) -> bool:
            checking.set()
            release.wait(timeout=60)
            return real_verify(stored, password)

        monkeypatch.setattr(accounts, "verify_password", held_verify)
        login = {}
        login_thread = threading.Thread(target=lambda: login.update(response=slow.login("slow")))
        login_thread.start()
        try:
            assert checking.wait(timeout=30)
            posted = poster.add_message("while a password is being checked")
            still_checking = login_thread.is_alive()
        finally:
            release.set()
            login_thread.join(timeout=30)

    assert posted.status_code == 200 and "Your message was recorded" in posted.text
    assert still_checking
    assert login["response"].status_code == 200 and "You were logged in" in login["response"].text


def test_a_connection_lost_after_the_reads_still_gives_the_answer(postgres, tmp_path):
    """A node crashes under a page's open read transaction once the page is made: still a 200."""
    app = build_app("postgresql", tmp_path / "instance", postgres, DATABASE_RETRY_SECONDS=RETRY_SECONDS)
    backends: list[int] = []

    def remember(connection, _cursor, _statement, _parameters, _context, _many):
        backends.append(connection.connection.dbapi_connection.info.backend_pid)

    def terminate_after_the_work(response):
        if backends:
            _scalar(postgres.url, "SELECT pg_terminate_backend(:pid, 10000)", pid=backends[-1])
        return response

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", remember)
    app.after_request(terminate_after_the_work)
    with LiveServer(app) as live:
        first = requests.get(live.url + "/public", timeout=30)
        second = requests.get(live.url + "/public", timeout=30)

    assert first.status_code == 200 and "Public Timeline" in first.text
    assert second.status_code == 200
    assert len(set(backends)) >= 2  # the dead connection was not handed out again as if alive
