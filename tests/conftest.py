"""Fixtures, one per real component: a database (SQLite file or PostgreSQL), a waitress server, a browser."""
from __future__ import annotations

import pytest

from tests.browser import browser, new_page, page, page_problems  # noqa: F401  (fixtures)
from tests.servers import LiveServer, PostgresDatabase, build_app
from tests.twooter_client import TwooterClient


@pytest.fixture(scope="session")
def postgres():
    with PostgresDatabase.created() as database:
        yield database


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def app(backend, tmp_path, request):
    postgres = request.getfixturevalue("postgres") if backend == "postgresql" else None
    return build_app(backend, tmp_path / "instance", postgres)


@pytest.fixture
def server(app):
    with LiveServer(app) as live:
        yield live


@pytest.fixture
def client(server) -> TwooterClient:
    """A plain HTTP client with no JavaScript, as MiniTwit's test suites are."""
    return TwooterClient(server.url)


@pytest.fixture
def make_client(server):
    """Several independent visitors of one server."""
    return lambda: TwooterClient(server.url)


@pytest.fixture(scope="session")
def cluster():
    """One local cluster (etcd ×3, three Patroni nodes, HAProxy, two app instances) for the whole run.

    Tests that break something mend it before they end (start what they
    killed, wait until `healthy()`), so the next test finds the full topology.
    """
    from tests.cluster import LocalCluster

    local = LocalCluster(instances=2)
    try:
        local.up()
        yield local
    finally:
        local.down()
