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
import subprocess
import sys
import time

import pytest

from tests.cluster import LocalCluster
from tests.edges import (EdgeSite, Load, address_moves_under_traffic, bring_back_first_edge, kill_active_haproxy,
                         lose_active_edge, needs_root_and_ip_netns, outcome_of)
from tests.servers import build_app, unavailable
from twooter.cluster import netns, vip
from twooter.cluster.render import DEPLOY_FOLDER, render

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


def assert_served_again_after_the_fault(outcome) -> None:
    """Tweets sent after the fault were acknowledged through the address: service came back.

    How soon is the benchmark's question (bench.edge), not a test's.
    """
    assert any(r.kind == "tweet" and r.ok and r.started >= outcome.fault_at for r in outcome.traffic)


def assert_every_acknowledged_twoot_stored_once(outcome) -> None:
    assert outcome.acknowledged, "the load got no twoot acknowledged"
    assert not outcome.lost, f"acknowledged but not stored: {sorted(outcome.lost)[:5]}"
    assert not outcome.duplicated, f"stored more than once: {sorted(outcome.duplicated)[:5]}"


def test_killing_the_active_haproxy_moves_the_address(edges):
    run = kill_active_haproxy(edges)
    print(f"{run.fault} of {run.before}: {run.outcome.summary()}")
    assert run.after != run.before
    assert edges.pair.vrrp_state(run.before) == "FAULT"  # its keepalived saw HAProxy die and gave the address up
    assert_served_again_after_the_fault(run.outcome)
    assert_every_acknowledged_twoot_stored_once(run.outcome)


def test_losing_the_active_edge_machine_moves_the_address(edges):
    run = lose_active_edge(edges)
    print(f"{run.fault}, {run.before}: {run.outcome.summary()}")
    assert run.after != run.before
    assert edges.pair.haproxy_pid(run.before) is None and edges.pair.keepalived_pid(run.before) is None
    assert netns.pids_in(edges.pair.namespace(run.before)) == []
    assert_served_again_after_the_fault(run.outcome)
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


@pytest.mark.parametrize("example", ["keepalived-edge1.json", "keepalived-edge2.json"])
def test_keepalived_accepts_the_examples_for_real_machines(example, tmp_path, edge_ready):
    values = json.loads((DEPLOY_FOLDER / "examples" / example).read_text())
    config = tmp_path / "keepalived.conf"
    config.write_text(render("keepalived/keepalived.conf.j2", values))
    checked = subprocess.run(["keepalived", "-t", "-f", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"unicast_src_ip {values['address']}" in config.read_text()


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

class EdgeCluster(LocalCluster):
    """A local cluster started with --edge-ha."""

    up_options = ("--edge-ha",)

    def edges(self) -> dict[str, dict]:
        return {row["name"]: row for row in self.status()["components"] if row["kind"] == "edge"}

    def active_edge(self) -> str | None:
        active = [name for name, row in self.edges().items() if row["role"] == "active"]
        return active[0] if len(active) == 1 else None


@pytest.fixture(scope="module")
def edge_cluster(edge_ready):
    with EdgeCluster(instances=2) as local:
        yield local


# Run inside the client namespace: GET a URL as written; print the status and whether an app instance answered.
GET_FROM_CLIENT = """
import sys, urllib.error, urllib.request
try:
    answer = urllib.request.urlopen(sys.argv[1], timeout=30)
except urllib.error.HTTPError as error:
    answer = error
print(answer.status, "X-Request-Id" in answer.headers)
"""


def get_from_client(namespace: str, url: str) -> tuple[int, bool]:
    """(status, answered by an app instance) of GET `url` from the client namespace."""
    done = subprocess.run(netns.in_namespace(namespace, [sys.executable, "-c", GET_FROM_CLIENT, url]),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    status, by_app = done.stdout.split()
    return int(status), by_app == "True"


@pytest.mark.cluster
def test_cluster_edge_ha_prometheus_scrapes_the_instances_on_their_bridge_address_that_clients_may_not_read(
        edge_cluster):
    found = edge_cluster.status()
    apps = [row["url"] for row in found["components"] if row["kind"] == "app"]
    assert apps and all(url.startswith("http://10.213.") for url in apps)
    wanted = {f"{url}/metrics": "up" for url in apps}
    deadline = time.monotonic() + 120
    while {url: health for url, health in edge_cluster.prometheus_targets().items() if url in wanted} != wanted:
        assert time.monotonic() < deadline, edge_cluster.prometheus_targets()
        time.sleep(0.5)
    namespace = found["client_netns"]
    # The virtual address refuses it at the edge; an instance's own address refuses a client, as if it had none.
    for url in (found["vip"] + "/metrics", found["vip"] + "/%6detrics"):
        assert get_from_client(namespace, url) == (404, False), url
    assert get_from_client(namespace, apps[0] + "/metrics") == (404, True)
    assert get_from_client(namespace, apps[0] + "/health") == (200, True)


@pytest.mark.cluster
def test_cluster_edge_ha_survives_kill_and_loss_of_the_active_edge(edge_cluster, tmp_path):
    found = edge_cluster.status()
    edges = edge_cluster.edges()
    assert found["vip"].startswith("http://10.213.") and found["client_netns"].endswith("-client")
    assert sorted(edges) == ["edge1", "edge2"]
    assert sorted(row["role"] for row in edges.values()) == ["active", "backup"]
    assert all(isinstance(row["pid"], int) and netns.alive(row["pid"]) for row in edges.values())

    for fault in ("kill", "stop"):
        load = Load(found["client_netns"], found["vip"], tmp_path / "load", found["database_url"])
        before, after, outcome = address_moves_under_traffic(load, edge_cluster.active_edge,
                                                             lambda name: edge_cluster.run(fault, name))
        print(f"twooter cluster {fault} {before}: {outcome.summary()}")
        assert after != before
        assert_every_acknowledged_twoot_stored_once(outcome)
        assert edge_cluster.edges()[before]["pid"] is None
        edge_cluster.run("start", before)
        assert edge_cluster.edges()[before]["role"] == "backup"


@pytest.mark.cluster
def test_cluster_edge_ha_rolling_restart_costs_no_request_through_the_virtual_address(edge_cluster, tmp_path):
    found = edge_cluster.status()
    with Load(found["client_netns"], found["vip"], tmp_path / "load", found["database_url"]) as load:
        load.wait_for_tweets(10)
        restart_at = time.monotonic()
        edge_cluster.run("restart-apps")
        load.wait_for_tweets(10, started_after=time.monotonic())
    outcome = outcome_of(load, restart_at)
    print(f"twooter cluster restart-apps: {outcome.summary()}")
    assert outcome.failed == [], f"failed during the rolling restart: {outcome.failed[:5]}"
    assert_every_acknowledged_twoot_stored_once(outcome)


@pytest.mark.cluster
def test_cluster_down_removes_every_namespace_link_and_edge_process(edge_ready):
    with EdgeCluster(instances=1, postgres_nodes=2) as local:
        found = local.status()
        edges = local.edges()
        namespaces = [row["namespace"] for row in edges.values()] + [found["client_netns"]]
        pids = [pid for row in edges.values() for pid in (row["pid"], row["keepalived_pid"])]
        host_link = netns.EdgeNetwork(int(found["vip"].split(".")[2])).host_link
        local.run("down")
        after = local.status()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not [namespace for namespace in namespaces if namespace in listed]
    assert subprocess.run(["ip", "link", "show", host_link], capture_output=True).returncode != 0
    assert not [pid for pid in pids if netns.alive(pid)]
    assert "vip" not in after
