"""Lag-tolerant reads come from DATABASE_REPLICA_URL; a person who just wrote reads their own change.

The "replica" here is a second database with content of its own, so every
answer shows which database it came from.
"""
from __future__ import annotations

import os
import time
from contextlib import ExitStack

import pytest

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
