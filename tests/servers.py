"""Real components for tests: throw-away databases and a waitress server on a socket."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from waitress import wasyncore

from twooter import create_app
from twooter.data import engine as database
from twooter.serving import make_server
from twooter.extensions import db

APP_TABLES = ("follows", "messages", "users", "latest_action", "login_throttle")


def running_in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip on a developer's machine; fail in CI, where nothing may be skipped."""
    if running_in_ci():
        pytest.fail(f"{reason} (CI=true: this must run, not skip)", pytrace=False)
    pytest.skip(reason)


@contextmanager
def throwaway_postgres_database(admin_url: str, prefix: str = "twooter_test") -> Iterator[str]:
    """A new, empty database on the server of `admin_url` (a role with CREATEDB), dropped afterwards."""
    admin_url = sa.make_url(admin_url).set(drivername="postgresql+psycopg2")
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            _drop_database(admin, name)
        finally:
            admin.dispose()


def _drop_database(admin: sa.Engine, name: str, attempts: int = 50) -> None:
    """Drop it, ending whatever a test left connected (say, a killed process's session).

    FORCE may not end an autovacuum worker that is analysing freshly loaded
    tables (it runs as the superuser, which the test role may not signal);
    such a worker is done within moments, so try again.
    """
    for attempt in range(attempts):
        try:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except sa.exc.ProgrammingError as error:
            if "pg_signal_backend" not in str(error.orig) or attempt == attempts - 1:
                raise
            time.sleep(0.1)


@dataclass
class PostgresDatabase:
    """A database of its own for one test session, dropped afterwards."""

    url: str

    @classmethod
    @contextmanager
    def created(cls) -> Iterator["PostgresDatabase"]:
        raw = os.environ.get("TEST_POSTGRES_URL")
        if not raw:
            unavailable("TEST_POSTGRES_URL is not set; run the tests with `bash tests/run`")
        with ExitStack() as cleanup:
            try:
                url = cleanup.enter_context(throwaway_postgres_database(raw))
            except sa.exc.OperationalError as error:
                unavailable(f"PostgreSQL at {sa.make_url(raw).render_as_string()} is unreachable: {error}")
            yield cls(url)


def build_app(backend: str, instance: Path, postgres: PostgresDatabase | None, **settings) -> Flask:
    """A migrated app with empty tables on the chosen database."""
    if backend == "sqlite":
        uri = f"sqlite:///{instance / 'twooter.sqlite'}"
    else:
        assert postgres is not None
        uri = postgres.url
    app = create_app({"INSTANCE_PATH": instance, "SQLALCHEMY_DATABASE_URI": uri, "TESTING": True, **settings})
    database.upgrade_to_latest(app)
    if backend == "postgresql":
        with app.app_context():
            db.session.execute(sa.text(f"TRUNCATE {', '.join(APP_TABLES)} RESTART IDENTITY CASCADE"))
            db.session.commit()
    return app


def apps_sharing_one_database(backend: str, folder: Path, postgres: PostgresDatabase | None,
                              **settings) -> tuple[Flask, Flask]:
    """Two instances of the app on one database, each with its own instance folder and logs."""
    first = build_app(backend, folder / "one", postgres, **settings)
    second = build_app(backend, folder / "two", postgres,
                       **{**settings, "SQLALCHEMY_DATABASE_URI": first.config["SQLALCHEMY_DATABASE_URI"]})
    return first, second


class LiveServer:
    """The app served as `twooter serve` serves it (waitress) on 127.0.0.1, in a background thread."""

    def __init__(self, app: Flask, threads: int = 8):
        self.app = app
        self._server = make_server(app, "127.0.0.1", 0, threads)
        self.port = self._server.effective_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="waitress", daemon=True)

    def _serve(self) -> None:
        # waitress's own run() loops until its map is empty, and emptying the
        # map from another thread races its select(); a flag checked between
        # rounds lets this thread stop without touching a single socket.
        while not self._stopping.is_set():
            wasyncore.loop(timeout=self._server.adj.asyncore_loop_timeout, map=self._server._map, count=1)

    def __enter__(self) -> "LiveServer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopping.set()
        self._server.pull_trigger()  # wakes the select() so the flag is seen now
        self._thread.join(timeout=60)
        if self._thread.is_alive():
            raise RuntimeError("the waitress loop did not stop")
        # Workers pull the trigger when they finish, so it must outlive them.
        self._server.task_dispatcher.shutdown()
        wasyncore.close_all(self._server._map)
        if "sqlalchemy" in self.app.extensions:  # a bare helper app has no database
            with self.app.app_context():
                db.engine.dispose()


TWOOTER_COMMAND = Path(sys.executable).with_name("twooter")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def run_twooter(instance: Path, *args: str, database_url: str | None = None, **kwargs) -> subprocess.Popen:
    """The `twooter` console script as an operator runs it, on the given instance folder."""
    env = {**os.environ, "TWOOTER_INSTANCE_PATH": str(instance)}
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    return subprocess.Popen([str(TWOOTER_COMMAND), *args], env=env, **kwargs)


def wait_until_serving(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "twooter serve exited early"
        try:
            requests.get(url, timeout=5)
            return
        except (requests.ConnectionError, requests.Timeout):  # not yet listening, or a slow first answer
            time.sleep(0.1)
    raise AssertionError(f"nothing answered at {url} within {seconds} s")


class ServerProcess:
    """`twooter serve` in a process of its own, on the same database and instance as `app`.

    Clients in the test process then do not compete with the server for one
    interpreter lock, as real simulator clients do not.
    """

    def __init__(self, app: Flask, threads: int = 8, host: str = "127.0.0.1"):
        self.app = app
        self.host = host
        self.port = free_port(host)
        self.url = f"http://{host}:{self.port}"
        self._threads = threads
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> "ServerProcess":
        uri = self.app.config["SQLALCHEMY_DATABASE_URI"]
        self._process = run_twooter(
            Path(self.app.instance_path), "serve", "--host", self.host, "--port", str(self.port),
            "--threads", str(self._threads),
            database_url=uri, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until_serving(self.url + "/latest", self._process)
        self._warm_up()
        return self

    def _warm_up(self) -> None:
        """Open every worker's database connection before the clock starts, as on a server that has been up."""
        def touch(_):
            requests.get(self.url + "/latest", timeout=30)
            requests.post(self.url + "/register", json={}, timeout=30)  # refused: changes nothing

        with ThreadPoolExecutor(self._threads) as pool:
            list(pool.map(touch, range(self._threads * 2)))

    def __exit__(self, *exc_info) -> None:
        assert self._process is not None
        self._process.terminate()
        self._process.wait(timeout=60)
