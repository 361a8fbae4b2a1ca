"""A redundant edge: two HAProxy edges share a virtual address through keepalived, and survive their faults.

Each edge runs in a network namespace of its own, a client in a third, app
instances in the root namespace (tests/edges.py). The faults are caused, not
imitated: kill -9 of HAProxy, kill -9 of everything in an edge's namespace
with its cable pulled. The load is the simulator's kind of traffic from the
client namespace; the tests assert outcomes (the address moved, service came
back, every acknowledged twoot stored exactly once), never how fast; the
seconds without service are measured by bench/edge.py.
"""
from __future__ import annotations

import json
import random
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.edges import (EdgeSite, Load, bring_back_first_edge, kill_active_haproxy, lose_active_edge,
                         needs_root_and_ip_netns, outcome_of)
from tests.servers import TWOOTER_COMMAND, build_app, unavailable
from twooter.cluster import netns, vip
from twooter.cluster.components import port_is_free
from twooter.cluster.layout import PORT_SPAN

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def edge_ready() -> None:
    reason = needs_root_and_ip_netns()
    if reason:
        unavailable(reason)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request, edge_ready, tmp_path_factory):
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    folder = tmp_path_factory.mktemp(f"edge-{request.param}")
    app = build_app(request.param, folder / "instance", postgres)
    with EdgeSite(app, folder) as site:
        yield site


@pytest.fixture
def edges(site):
    """The site with both edges healthy: one holds the address, the other is its backup."""
    site.restore()
    return site


def assert_every_acknowledged_twoot_stored_once(outcome) -> None:
    assert outcome.acknowledged, "the load got no twoot acknowledged"
    assert not outcome.lost, f"acknowledged but not stored: {sorted(outcome.lost)[:5]}"
    assert not outcome.duplicated, f"stored more than once: {sorted(outcome.duplicated)[:5]}"


def test_killing_the_active_haproxy_moves_the_address(edges):
    run = kill_active_haproxy(edges)
    print(f"{run.fault} of {run.before}: {run.outcome.summary()}")
    assert run.after != run.before
    assert edges.pair.vrrp_state(run.before) == "FAULT"  # its keepalived saw HAProxy die and gave the address up
    assert run.outcome.seconds_without_service is not None
    assert_every_acknowledged_twoot_stored_once(run.outcome)


def test_losing_the_active_edge_machine_moves_the_address(edges):
    run = lose_active_edge(edges)
    print(f"{run.fault}, {run.before}: {run.outcome.summary()}")
    assert run.after != run.before
    assert edges.pair.haproxy_pid(run.before) is None and edges.pair.keepalived_pid(run.before) is None
    assert netns.pids_in(edges.pair.namespace(run.before)) == []
    assert run.outcome.seconds_without_service is not None
    assert_every_acknowledged_twoot_stored_once(run.outcome)


def test_an_edge_that_comes_back_stays_backup_and_nothing_fails(edges):
    run = bring_back_first_edge(edges)
    first = edges.pair.names[0]
    print(f"{first} came back: {run.outcome.summary()}")
    assert run.before != first and run.after == run.before  # it did not take the address back
    assert edges.pair.vrrp_state(first) == "BACKUP"
    assert run.outcome.failed == [], f"failed while {first} came back: {run.outcome.failed[:5]}"
    assert_every_acknowledged_twoot_stored_once(run.outcome)


def test_keepalived_accepts_the_rendered_configuration(tmp_path, edge_ready):
    config = tmp_path / "keepalived.conf"
    config.write_text(vip.keepalived_config(
        router_id="edge1", interface="eth0", address="10.213.0.11", peers=["10.213.0.12"], priority=150,
        vip="10.213.0.100", prefix_length=24, check_command=vip.Monitor().check_command(),
        notify_command=["/bin/bash", str(vip.KEEPALIVED_DEPLOY / "notify_state.sh"), str(tmp_path / "state")],
    ))
    checked = subprocess.run(["keepalived", "-t", "-f", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "nopreempt" in config.read_text() and "10.213.0.12" in config.read_text()


def test_taking_the_site_down_leaves_no_namespace_link_or_process(edge_ready, tmp_path):
    app = build_app("sqlite", tmp_path / "instance", None)
    with EdgeSite(app, tmp_path, instances=1) as site:
        network, pair = site.network, site.pair
        pids = [pid for name in pair.names for pid in (pair.haproxy_pid(name), pair.keepalived_pid(name))]
        pids += [pid for namespace in network.namespaces for pid in netns.pids_in(namespace)]
        assert None not in pids and len(pids) >= 4
        assert [row["role"] for row in pair.status()] == ["active", "backup"]
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not [namespace for namespace in network.namespaces if namespace in listed]
    assert subprocess.run(["ip", "link", "show", network.host_link], capture_output=True).returncode != 0
    assert not [pid for pid in pids if netns.alive(pid)]


# --- the same through `twooter cluster up --edge-ha` ------------------------------------

def free_base_port() -> int:
    """A base port whose whole block of the cluster's ports is free on loopback now."""
    for _ in range(200):
        base = random.randrange(30_000, 60_000 - PORT_SPAN, PORT_SPAN)
        if all(port_is_free(port) for port in range(base, base + PORT_SPAN)):
            return base
    raise AssertionError("no free block of ports for a cluster")


def cluster(folder: Path, *args: str, seconds: float = 300) -> str:
    """`twooter cluster ARGS --dir FOLDER` as an operator runs it; its output. Fails the test on a non-zero exit."""
    done = subprocess.run([str(TWOOTER_COMMAND), "cluster", *args, "--dir", str(folder)], capture_output=True,
                          text=True, timeout=seconds)
    assert done.returncode == 0, f"twooter cluster {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


@contextmanager
def cluster_folder():
    """A folder the postgres account may enter (pytest's own are mode 700), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="twooter-edge-cluster-"))
    folder.chmod(0o755)
    try:
        yield folder / "cluster"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def edge_cluster(edge_ready):
    """`twooter cluster up --edge-ha`; `down` afterwards, whatever happened."""
    with cluster_folder() as folder:
        try:
            cluster(folder, "up", "--edge-ha", "--base-port", str(free_base_port()), "--instances", "2")
            yield folder
        finally:
            if (folder / "cluster.json").exists():
                cluster(folder, "down")


def status_of(folder: Path) -> dict:
    return json.loads(cluster(folder, "status", "--json"))


def edges_of(found: dict) -> dict[str, dict]:
    return {row["name"]: row for row in found["components"] if row["kind"] == "edge"}


def active_edge(folder: Path) -> str | None:
    active = [name for name, row in edges_of(status_of(folder)).items() if row["role"] == "active"]
    return active[0] if len(active) == 1 else None


def test_cluster_edge_ha_survives_kill_and_loss_of_the_active_edge(edge_cluster, tmp_path):
    found = status_of(edge_cluster)
    edges = edges_of(found)
    assert found["vip"].startswith("http://10.213.") and found["client_netns"].endswith("-client")
    assert sorted(edges) == ["edge1", "edge2"]
    assert sorted(row["role"] for row in edges.values()) == ["active", "backup"]
    assert all(isinstance(row["pid"], int) and netns.alive(row["pid"]) for row in edges.values())

    def load() -> Load:
        return Load(found["client_netns"], found["vip"], tmp_path / "load", found["database_url"])

    for fault in ("kill", "stop"):
        before = active_edge(edge_cluster)
        with load() as running:
            running.wait_for_successes(20)
            cluster(edge_cluster, fault, before)
            fault_at = time.monotonic()  # the command has done it by now: the figures lean short, not long
            netns.wait_for(lambda: active_edge(edge_cluster) not in (None, before), 60, "the address to move")
            running.wait_for_successes(20, started_after=fault_at)
        outcome = outcome_of(running, fault_at)
        print(f"twooter cluster {fault} {before}: {outcome.summary()}")
        assert_every_acknowledged_twoot_stored_once(outcome)
        assert edges_of(status_of(edge_cluster))[before]["pid"] is None
        cluster(edge_cluster, "start", before)
        assert edges_of(status_of(edge_cluster))[before]["role"] == "backup"


def test_cluster_down_removes_every_namespace_link_and_edge_process(edge_ready):
    with cluster_folder() as folder:
        try:
            cluster(folder, "up", "--edge-ha", "--base-port", str(free_base_port()), "--instances", "1",
                    "--postgres-nodes", "2")
            found = status_of(folder)
            namespaces = [row["namespace"] for row in edges_of(found).values()] + [found["client_netns"]]
            pids = [pid for row in edges_of(found).values() for pid in (row["pid"], row["keepalived_pid"])]
            host_link = netns.EdgeNetwork(int(found["vip"].split(".")[2])).host_link
        finally:
            cluster(folder, "down")
        after = status_of(folder)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not [namespace for namespace in namespaces if namespace in listed]
    assert subprocess.run(["ip", "link", "show", host_link], capture_output=True).returncode != 0
    assert not [pid for pid in pids if netns.alive(pid)]
    assert "vip" not in after
