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

import subprocess

import pytest

from tests.edges import (EdgeSite, bring_back_first_edge, kill_active_haproxy, lose_active_edge,
                         needs_root_and_ip_netns)
from tests.servers import build_app, unavailable
from twooter.cluster import netns, vip

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
