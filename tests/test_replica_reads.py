"""Lag-tolerant reads come from DATABASE_REPLICA_URL; a person who just wrote reads their own change.

The "replica" here is a second database with content of its own, so every
answer shows which database it came from.
"""
from __future__ import annotations

import os
import time
from contextlib import ExitStack

import pytest
import requests
import sqlalchemy as sa

from tests.pgproxy import GO_AWAY, PostgresProxy
from tests.scenario import SIMULATOR_AUTHORIZATION
from tests.scrape import Scrape
from tests.servers import LiveServer, PostgresDatabase, build_app, throwaway_postgres_database
from tests.twooter_client import TwooterClient

SIM = {"Authorization": SIMULATOR_AUTHORIZATION}


@pytest.fixture
def replicated(backend, tmp_path, request):
    """(server on the primary, primary app, replica app): the replica holds only 'ghost' and his twoot."""
    with ExitStack() as cleanup:
        if backend == "sqlite":
            replica_db, primary_db = None, None
            replica_uri = f"sqlite:///{tmp_path / 'replica' / 'twooter.sqlite'}"
        else:
            primary_db = request.getfixturevalue("postgres")
            replica_db = PostgresDatabase(cleanup.enter_context(
                throwaway_postgres_database(os.environ["TEST_POSTGRES_URL"], prefix="twooter_replica")))
            replica_uri = replica_db.url
        replica = build_app(backend, tmp_path / "replica", replica_db)
        primary = build_app(backend, tmp_path / "primary", primary_db,
                            DATABASE_REPLICA_URL=replica_uri, READ_YOUR_WRITES_SECONDS=2)
        server = cleanup.enter_context(LiveServer(primary))
        with LiveServer(replica) as on_replica:
            ghost = TwooterClient(on_replica.url)
            ghost.register_and_login("ghost")
            ghost.add_message("written on the replica")
        yield server


def test_lag_tolerant_reads_come_from_the_replica_and_the_rest_from_the_primary(replicated):
    alice = TwooterClient(replicated.url)
    alice.register_and_login("alice")  # on the primary: registering writes
    anonymous = TwooterClient(replicated.url)
    assert "written on the replica" in anonymous.get("/public").text
    assert anonymous.get("/ghost").status_code == 200
    assert anonymous.get("/alice").status_code == 404  # not on the replica
    listed = anonymous.get("/msgs", headers=SIM).json()
    assert [m["user"] for m in listed] == ["ghost"]
    # `latest` makes a read a write of that id: the primary answers.
    assert anonymous.get("/msgs?latest=7", headers=SIM).json() == []
    assert anonymous.get("/latest").json() == {"latest": 7}
    assert anonymous.get("/fllws/ghost", headers=SIM).json() == {"follows": []}
    assert anonymous.get("/fllws/alice", headers=SIM).status_code == 404
    # Logging in and the home timeline read the primary.
    assert alice.get("/").status_code == 200 and "alice" in alice.get("/").text
    # Each of the six lag-tolerant reads above is counted once.
    assert Scrape.of(replicated.url).value("twooter_db_replica_reads_total") == 6


def test_a_person_who_just_wrote_sees_their_change_on_the_next_page(replicated):
    alice = TwooterClient(replicated.url)
    alice.register_and_login("alice")
    alice.add_message("my very own twoot")
    page = alice.get("/public").text
    assert "my very own twoot" in page and "written on the replica" not in page
    assert "my very own twoot" in alice.get("/alice").text
    # Someone else, who wrote nothing, reads the replica meanwhile.
    assert "my very own twoot" not in TwooterClient(replicated.url).get("/public").text
    # Once the read-your-writes window has passed, her reads go back to the replica.
    time.sleep(2.5)
    page = alice.get("/public").text
    assert "written on the replica" in page and "my very own twoot" not in page


def test_a_read_that_finds_the_primary_away_is_answered_from_the_replica(postgres, tmp_path):
    """During a failover a GET is answered by the replica at once; a write still waits for the primary."""
    target = sa.make_url(postgres.url)
    with ExitStack() as cleanup:
        proxy = cleanup.enter_context(PostgresProxy((target.host, target.port or 5432)))
        replica_db = PostgresDatabase(cleanup.enter_context(
            throwaway_postgres_database(os.environ["TEST_POSTGRES_URL"], prefix="twooter_replica")))
        with LiveServer(build_app("postgresql", tmp_path / "replica", replica_db)) as on_replica:
            assert requests.get(on_replica.url + "/msgs?latest=42", headers=SIM, timeout=30).status_code == 200
        primary = build_app("postgresql", tmp_path / "primary", postgres,
                            SQLALCHEMY_DATABASE_URI=proxy.url_for(postgres.url),
                            DATABASE_REPLICA_URL=replica_db.url, DATABASE_RETRY_SECONDS=2.0)
        server = cleanup.enter_context(LiveServer(primary))
        latest = server.url + "/latest"
        assert requests.get(server.url + "/msgs?latest=7", headers=SIM, timeout=30).status_code == 200
        assert requests.get(latest, timeout=30).json() == {"latest": 7}

        proxy.when(lambda _kind, _body: True, GO_AWAY)  # the primary's next message: every connection cut
        answered = requests.get(latest, timeout=30)
        assert proxy.fired.is_set()
        assert answered.status_code == 200 and answered.json() == {"latest": 42}
        # Whatever writes (`latest` included) goes to the primary only, and is told to come back.
        for refused in (requests.get(server.url + "/msgs?latest=8", headers=SIM, timeout=30),
                        requests.post(server.url + "/msgs/nobody?latest=9", json={"content": "x"},
                                      headers=SIM, timeout=30)):
            assert refused.status_code == 503 and "Retry-After" in refused.headers

        proxy.come_back()
        assert requests.get(latest, timeout=30).json() == {"latest": 7}
