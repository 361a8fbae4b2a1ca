"""Failures of the database under load: a planned switchover, a crash of the leader's node, a crash of a
replica's node, and a migration through the primary's front.

These lean on the app's unit of work: a transient database failure is retried
whole, and a request that cannot be served while the primary changes is
answered 503 with Retry-After.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_cluster_edge import assert_tweets_stored_once
from tests.traffic import Traffic
from twooter.cluster.components import LOOP_WAIT_SECONDS, TTL_SECONDS

pytestmark = pytest.mark.cluster
SAMPLE = Path(__file__).resolve().parent.parent / "migrate_tools" / "samples" / "minitwit.sqlite"


def assert_failed_writes_were_told_to_retry(traffic: Traffic) -> None:
    """While there is no primary a write is answered 503 with Retry-After: never a 500, never no answer."""
    failed = [r for r in traffic.posts() if r.failed]
    assert [r for r in failed if r.status != 503 or not r.retry_after] == []


def test_a_switchover_moves_the_primary_and_writes_work_again_within_5_s(cluster):
    old_leader = cluster.leader()
    with cluster.mended():
        with Traffic(*cluster.edge, clients=4, seed=3) as traffic:
            traffic.run_for(2)
            started = time.monotonic()
            cluster.run("switchover", timeout=120)
            traffic.run_for(6)
        new_leader = cluster.leader()
        assert new_leader and new_leader != old_leader
        assert [r for r in traffic.gets() if r.failed] == []
        assert_failed_writes_were_told_to_retry(traffic)
        late = [r for r in traffic.posts() if r.started > started + 5]
        assert late and [r for r in late if r.failed] == []
        assert_tweets_stored_once(cluster, traffic)


def test_a_crash_of_the_leaders_node_keeps_reads_up_and_loses_no_acknowledged_write(cluster):
    leader = cluster.leader()
    assert leader
    with cluster.mended(leader):
        with Traffic(*cluster.edge, clients=4, seed=4) as traffic:
            traffic.run_for(3)
            crashed_at = time.monotonic()
            cluster.run("kill", leader)
            traffic.run_for(TTL_SECONDS + 10)
        new_leader = cluster.leader()
        assert new_leader and new_leader != leader
        assert [r for r in traffic.gets() if r.failed] == []
        assert_failed_writes_were_told_to_retry(traffic)
        # Patroni's ttl bounds how long the dead leader's key lives; 5 s more for
        # a replica to notice, promote, and HAProxy to route to it.
        late = [r for r in traffic.posts() if r.started > crashed_at + TTL_SECONDS + 5]
        assert late and [r for r in late if r.failed] == []
        assert_tweets_stored_once(cluster, traffic)

        # The crashed machine comes back: Patroni rewinds it and it follows the new leader by itself.
        cluster.run("start", leader)
        cluster.wait_until(cluster.healthy, what=f"{leader} to rejoin")
        assert cluster.component(leader)["role"] == "replica"
        assert cluster.leader() == new_leader


def test_a_crash_of_the_synchronous_standbys_node_does_not_stop_writes(cluster):
    standby = next(c["name"] for c in cluster.status()["components"] if c["kind"] == "postgres" and c["synchronous"])
    with cluster.mended(standby):
        with Traffic(*cluster.edge, clients=4, seed=5) as traffic:
            traffic.run_for(2)
            cluster.run("kill", standby)
            traffic.run_for(LOOP_WAIT_SECONDS + 6)
        # The primary waits for the dead standby only until Patroni names the other one synchronous.
        assert [r for r in traffic.requests if r.failed] == []
        assert_tweets_stored_once(cluster, traffic)
        others = [c for c in cluster.status()["components"] if c["kind"] == "postgres" and c["name"] != standby]
        assert any(c["synchronous"] for c in others)


def test_twooter_migrate_loads_into_the_cluster_through_the_primarys_front(cluster, tmp_path):
    target = cluster.create_database("migrated")
    report = tmp_path / "report.json"
    done = subprocess.run([str(Path(sys.executable).with_name("twooter-migrate")), "--to", target, "--quiet",
                           "--report", str(report), str(SAMPLE)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    users = cluster.query("SELECT count(*) FROM users", database="migrated")[0][0]
    assert users > 0
    # Committed on the primary, and replicated: the read front answers the same.
    cluster.wait_until(lambda: cluster.query("SELECT count(*) FROM users", database="migrated",
                                             front="read")[0][0] == users, seconds=30,
                       what="the migrated rows on a replica")
