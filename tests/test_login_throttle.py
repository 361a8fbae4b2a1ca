"""Password guessing is throttled per name and per client address, counted in the database so
that every instance shares the counts, and the simulator API is left alone."""
from __future__ import annotations

import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from html import unescape
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter

from tests.logfiles import read_records
from tests.scenario import SIMULATOR_AUTHORIZATION
from tests.servers import (
    LiveServer, apps_sharing_one_database, build_app, free_port, run_twooter, wait_until_serving,
)
from tests.twooter_client import TwooterClient
from twooter import accounts, throttle
from twooter.extensions import db
from twooter.logwriter import settings
from twooter.data.tables import LoginThrottle

START = datetime(2026, 12, 1, 6, 0, tzinfo=timezone.utc)
HERE, THERE = "192.0.2.1", "192.0.2.2"
WAIT = re.compile(r"try again in (\d+) seconds?")


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


@pytest.fixture
def throttled_app(backend, tmp_path, request):
    """An app with the shipped ladder (5 per name, 50 per address, 15 s doubling up to 300 s)."""
    postgres = request.getfixturevalue("postgres") if backend == "postgresql" else None
    app = build_app(backend, tmp_path / "instance", postgres)
    with app.app_context():
        accounts.register("Alice", "a@example.com", "right")
        db.session.remove()
    return app


def attempt(app, password: str, when: datetime, username: str = "Alice", address: str = HERE):
    """One login: "ok", "wrong" or the LoginRefused."""
    with app.app_context():
        try:
            throttle.login(username, password, address, now=when)
            return "ok"
        except accounts.LoginError:
            return "wrong"
        except throttle.LoginRefused as refused:
            return refused
        finally:
            db.session.remove()


def test_five_failures_lock_the_name_and_each_later_failure_doubles_the_lock(throttled_app):
    app = throttled_app
    assert [attempt(app, "guess", START + seconds(i)) for i in range(5)] == ["wrong"] * 5
    at = START + seconds(5)
    refused = attempt(app, "right", at)  # even the right password: it is not checked
    assert isinstance(refused, throttle.LoginRefused)
    assert (refused.scope, refused.retry_after) == ("account", 14)
    assert str(refused) == "Too many failed logins for this name; try again in 14 seconds."

    locks = []
    for _ in range(7):
        at = at + seconds(refused.retry_after)
        assert attempt(app, "guess", at) == "wrong"
        refused = attempt(app, "guess", at)
        locks.append(refused.retry_after)
    assert locks == [30, 60, 120, 240, 300, 300, 300]
    assert attempt(app, "right", at + seconds(299)).retry_after == 1
    assert attempt(app, "right", at + seconds(300)) == "ok"
    # A successful login forgets the count: five more failures are needed for a lock.
    later = at + seconds(301)
    assert [attempt(app, "guess", later) for _ in range(5)] == ["wrong"] * 5
    assert isinstance(attempt(app, "guess", later), throttle.LoginRefused)


def test_a_quiet_hour_forgets_failures(throttled_app):
    app = throttled_app
    for i in range(4):
        assert attempt(app, "guess", START + seconds(i)) == "wrong"
    hour_later = START + timedelta(hours=1, seconds=4)
    for i in range(4):
        assert attempt(app, "guess", hour_later + seconds(i)) == "wrong"
    assert attempt(app, "right", hour_later + seconds(5)) == "ok"
    with app.app_context():
        assert db.session.query(LoginThrottle).filter_by(scope="account").count() == 0


def test_stale_counts_are_swept_a_bounded_batch_per_attempt(throttled_app):
    app = throttled_app
    for i in range(120):
        assert attempt(app, "guess", START, username=f"made-up {i}", address=f"10.0.{i // 250}.{i % 250}") == "wrong"

    def rows() -> int:
        with app.app_context():
            return db.session.query(LoginThrottle).count()

    assert rows() == 240
    later = START + timedelta(hours=2)
    assert attempt(app, "guess", later) == "wrong"
    assert rows() == 240 - throttle.SWEEP + 2
    assert attempt(app, "right", later) == "ok"
    assert rows() == 240 - 2 * throttle.SWEEP + 1  # the name's count is forgotten at once
    assert attempt(app, "right", later) == "ok"
    assert rows() == 1  # the rest swept; the address's count kept
    with app.app_context():
        (left,) = db.session.query(LoginThrottle).all()
    assert (left.scope, left.subject, left.failures) == ("address", HERE, 1)


def test_every_form_of_a_name_and_every_address_share_the_name_count(throttled_app):
    app = throttled_app
    forms = ["alice", "ALICE", "Alice", "aLiCe", "alicE"]
    for i, name in enumerate(forms):
        assert attempt(app, "guess", START, username=name, address=f"198.51.100.{i}") == "wrong"
    refused = attempt(app, "right", START, username="Alice", address="203.0.113.9")
    assert refused.scope == "account"


def test_unknown_and_odd_names_are_counted_like_real_ones(throttled_app):
    app = throttled_app
    for name in ("nobody", "nul\x00name", "x" * 10_000):
        results = [attempt(app, "guess", START, username=name) for _ in range(6)]
        assert results[:5] == ["wrong"] * 5
        assert results[5].scope == "account" and results[5].retry_after == 15
    with app.app_context():
        subjects = [row.subject for row in db.session.query(LoginThrottle).filter_by(scope="account")]
    assert len(subjects) == 3 and all(len(subject) == 64 for subject in subjects)


def test_many_names_from_one_address_lock_that_address_only(throttled_app):
    app = throttled_app
    for i in range(50):
        assert attempt(app, "guess", START, username=f"name{i}") == "wrong"
    refused = attempt(app, "right", START, username="Alice")
    assert (refused.scope, refused.retry_after) == ("address", 15)
    assert "from your address" in str(refused)
    assert attempt(app, "right", START, username="Alice", address=THERE) == "ok"
    # The refused attempt counted towards neither lock.
    assert attempt(app, "right", START + seconds(15), username="Alice") == "ok"


def test_successful_logins_do_not_count_towards_the_address_lock(throttled_app):
    app = throttled_app
    for i in range(49):
        assert attempt(app, "guess", START, username=f"name{i}") == "wrong"
    for _ in range(10):
        assert attempt(app, "right", START) == "ok"
    assert attempt(app, "guess", START, username="last") == "wrong"
    assert attempt(app, "right", START).scope == "address"


# --- over real servers -------------------------------------------------------

FAST = {"LOGIN_FIRST_LOCK_SECONDS": 1, "LOGIN_LONGEST_LOCK_SECONDS": 2}
SLOW = {"LOGIN_FIRST_LOCK_SECONDS": 600, "LOGIN_LONGEST_LOCK_SECONDS": 600}


def _shared_apps(backend, tmp_path, request, **settings_):
    postgres = request.getfixturevalue("postgres") if backend == "postgresql" else None
    return apps_sharing_one_database(backend, tmp_path, postgres, **settings_)


class FromAddress(HTTPAdapter):
    """Connections from a chosen loopback address, as a separate client machine would be."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def client_from(base_url: str, address: str) -> TwooterClient:
    client = TwooterClient(base_url)
    client.http.mount("http://", FromAddress(address))
    return client


def wait_of(response) -> int:
    found = WAIT.search(unescape(response.text))
    assert found, response.text
    return int(found.group(1))


def test_two_instances_share_the_count_and_the_page_says_when_to_retry(backend, tmp_path, request):
    first, second = _shared_apps(backend, tmp_path, request, **SLOW)
    with LiveServer(first) as one, LiveServer(second) as two:
        TwooterClient(one.url).register("victim", "right")
        visitors = [TwooterClient(one.url), TwooterClient(two.url)]
        for i in range(5):
            assert visitors[i % 2].login("victim", "guess").status_code == 401
        for visitor in visitors:
            page = visitor.login("victim", "right")
            assert page.status_code == 429
            assert 590 <= int(page.headers["Retry-After"]) <= 600
            assert wait_of(page) == int(page.headers["Retry-After"])
            assert "Too many failed logins for this name" in page.text
            assert 'name="username"' in page.text and 'value="victim"' in page.text

            fragment = visitor.post("/login", {"username": "victim", "password": "right"},
                                    headers={"HX-Request": "true"})
            assert fragment.status_code == 429
            assert fragment.headers["HX-Retarget"] == "#flashes"
            assert 590 <= int(fragment.headers["Retry-After"]) <= 600
            assert "Too many failed logins for this name" in fragment.text
            assert "<html" not in fragment.text

    warnings = [r.message for app in (first, second) for r in read_records(settings.of(app).folder)
                if r.logger == "twooter.security" and r.level == "WARN"]
    assert 'logins for "victim" refused for 600 s after 5 failed logins' in warnings
    # The per-name WARN of the log files still counts failures, in each instance's own folder.
    refusals = [r for app in (first, second) for r in read_records(settings.of(app).folder)
                if r.logger == "twooter.requests" and r.request.get("status") == 429]
    assert refusals and all(r.level == "ERROR" and 'login refused for "victim"' in r.message
                            for r in refusals)


def test_a_lock_runs_out_and_the_person_gets_in(backend, tmp_path, request):
    first, second = _shared_apps(backend, tmp_path, request, **FAST)
    with LiveServer(first) as one, LiveServer(second) as two:
        TwooterClient(one.url).register("person", "right")
        for i in range(5):
            assert TwooterClient((one.url, two.url)[i % 2]).login("person", "guess").status_code == 401
        # However slow the machine, the answer is either a short wait or the way in.
        deadline = time.monotonic() + 120
        person = TwooterClient(two.url)
        while (answer := person.login("person", "right")).status_code == 429:
            assert int(answer.headers["Retry-After"]) <= 2
            assert time.monotonic() < deadline, "the lock never ended"
            time.sleep(int(answer.headers["Retry-After"]))
        assert "You were logged in" in answer.text


def test_parallel_guesses_on_two_instances_get_exactly_five_tries(backend, tmp_path, request):
    first, second = _shared_apps(backend, tmp_path, request, **SLOW)
    with LiveServer(first) as one, LiveServer(second) as two:
        TwooterClient(one.url).register("target", "right")

        def guess(i: int) -> int:
            return TwooterClient((one.url, two.url)[i % 2]).login("target", f"guess{i}").status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(guess, range(24)))
    assert sorted(statuses) == [401] * 5 + [429] * 19


def test_one_client_address_is_limited_across_names_and_others_are_not(backend, tmp_path, request):
    first, _ = _shared_apps(backend, tmp_path, request, LOGIN_FAILURES_PER_ADDRESS=8, **SLOW)
    with LiveServer(first) as one:
        TwooterClient(one.url).register("bystander", "right")
        sprayer = client_from(one.url, "127.0.0.2")
        assert [sprayer.login(f"user{i}", "123456").status_code for i in range(8)] == [401] * 8
        refused = sprayer.login("bystander", "right")
        assert refused.status_code == 429 and "from your address" in refused.text
        assert "You were logged in" in client_from(one.url, "127.0.0.3").login("bystander", "right").text


# One proxy, or several (the machines of a redundant edge), this one among them.
@pytest.mark.parametrize("trusted", ["127.0.0.1", "192.0.2.10 127.0.0.1"])
def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(backend, tmp_path, request, monkeypatch, trusted):
    first, _ = _shared_apps(backend, tmp_path, request)
    monkeypatch.setenv("TWOOTER_LOGIN_FAILURES_PER_ADDRESS", "3")
    monkeypatch.setenv("TWOOTER_LOGIN_FIRST_LOCK_SECONDS", "600")
    monkeypatch.setenv("TWOOTER_TRUSTED_PROXY", trusted)
    port = free_port()
    server = run_twooter(Path(first.instance_path), "serve", "--port", str(port), "--threads", "4",
                         database_url=first.config["SQLALCHEMY_DATABASE_URI"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base + "/public", server)
        TwooterClient(base).register("someone", "right")

        def login(client, client_ip, name, password):
            return client.post("/login", {"username": name, "password": password},
                               headers={"X-Forwarded-For": client_ip})

        proxy = TwooterClient(base)
        assert [login(proxy, "198.51.100.7", f"u{i}", "x").status_code for i in range(3)] == [401] * 3
        assert login(proxy, "198.51.100.7", "someone", "right").status_code == 429
        assert "You were logged in" in login(proxy, "198.51.100.8", "someone", "right").text
        # From an address that is not the proxy, the header is not believed: the peer is counted.
        stranger = client_from(base, "127.0.0.4")
        assert [login(stranger, f"203.0.113.{i}", f"v{i}", "x").status_code for i in range(3)] == [401] * 3
        assert login(stranger, "203.0.113.99", "someone", "right").status_code == 429
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_the_simulator_api_is_not_throttled(backend, tmp_path, request):
    first, _ = _shared_apps(backend, tmp_path, request, **SLOW)
    with LiveServer(first) as one:
        api = {"Authorization": SIMULATOR_AUTHORIZATION}
        assert requests.post(one.url + "/register", json={"username": "sim", "email": "s@x.org", "pwd": "p"},
                             timeout=10).status_code == 204
        web = TwooterClient(one.url)
        for _ in range(5):
            web.login("sim", "wrong")
        assert web.login("sim", "p").status_code == 429
        for i in range(10):
            assert requests.post(one.url + "/msgs/sim", json={"content": f"still here {i}"},
                                 headers=api, timeout=10).status_code == 204
        assert requests.post(one.url + "/fllws/sim", json={"follow": "sim"}, headers=api,
                             timeout=10).status_code == 204
        assert len(requests.get(one.url + "/msgs/sim", headers=api, timeout=10).json()) == 10


def test_the_failed_login_warn_counts_every_form_of_a_name(backend, tmp_path, request):
    app, _ = _shared_apps(backend, tmp_path, request, **SLOW)
    with LiveServer(app) as server:
        _fail_in_every_form(TwooterClient(server.url))
    warnings = [r.message for r in read_records(settings.of(app).folder)
                if r.logger == "twooter.security" and r.level == "WARN"]
    assert [w for w in warnings if w.startswith("repeated failed logins")] == [
        'repeated failed logins for "x login failed for \\"y\\"": 5 in the last 15 minutes',
        'repeated failed logins for "caroL": 5 in the last 15 minutes',
    ]
    assert [w for w in warnings if w.startswith("logins ")] == [
        'logins for "x login failed for \\"y\\"" refused for 600 s after 5 failed logins',
        'logins for "caroL" refused for 600 s after 5 failed logins',
    ]


def _fail_in_every_form(client) -> None:
    client.register("Carol", "right")
    for name in ("Carol", "CAROL", "carol", "cArol"):
        assert client.login(name, "guess").status_code == 401
    odd = 'x login failed for "y"'
    for _ in range(5):
        assert client.login(odd, "guess").status_code == 401
    assert client.login("caroL", "guess").status_code == 401
    assert client.login("carol", "right").status_code == 429
