"""The cluster's Prometheus scrapes every part of the topology, and the edge never serves /metrics.

Prometheus reads each app instance on its own address; the edge, where
anyone may come from, answers 404 for /metrics in every spelling an
instance would serve (checked here against the instances themselves).
"""
from __future__ import annotations

import json
import re
import socket
import subprocess
import time

import pytest

from twooter.cluster.render import DEPLOY_FOLDER, render
from twooter.monitoring import prometheus

# What an instance answers with its metrics, to loopback: werkzeug decodes the
# path and merges slashes, so these are all its /metrics.
SERVED_AS_METRICS = ("/metrics", "//metrics", "/%6detrics", "/%6Detrics", "/%2fmetrics", "/metrics?x=1")
# Other spellings an instance does not serve as /metrics, refused at the edge all the same.
REFUSED_TOO = ("/metrics/", "/METRICS", "/Metrics", "/x/../metrics", "///metrics", "/%2F%6detrics/")
SECONDS = 120


def get(address: tuple[str, int], target: str) -> tuple[int, dict[str, str], bytes]:
    """GET `target` exactly as written (no client normalises it): status, headers (lower-case names), body."""
    with socket.create_connection(address, timeout=30) as connection:
        connection.sendall(f"GET {target} HTTP/1.1\r\nHost: twooter\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *fields = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (f.partition(":") for f in fields)}
    return int(status_line.split()[1]), headers, body


def address_of(url: str) -> tuple[str, int]:
    host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    return host, int(port)


def eventually(condition, seconds: float = SECONDS):
    """The first true value of `condition()` within `seconds`, else its last value."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


@pytest.mark.cluster
def test_prometheus_scrapes_every_instance_haproxy_every_patroni_node_and_every_exporter(cluster):
    found = cluster.status()
    rows = {row["name"]: row for row in found["components"]}
    expected = {f"{row['url']}/metrics" for row in rows.values() if row["kind"] in ("app", "postgres-exporter")}
    expected |= {f"{row['restapi']}/metrics" for row in rows.values() if row["kind"] == "postgres"}
    expected.add(f"http://127.0.0.1:{cluster.base_port + 3}/metrics")  # HAProxy's stats listener
    assert len(expected) == 2 + 3 + 3 + 1
    all_up = {url: "up" for url in expected}
    assert eventually(lambda: cluster.prometheus_targets() == all_up), cluster.prometheus_targets()

    # Each exporter watches its own node: every one reaches its server, and only
    # the leader's lists the standbys streaming from it.
    url = found["prometheus"]
    assert eventually(lambda: len(prometheus.query(url, 'pg_up{job="postgres"} == 1')) == 3), \
        prometheus.query(url, 'pg_up{job="postgres"}')
    leader = rows[cluster.leader()]
    leaders_exporter = rows[f"{leader['name']}-exporter"]["url"].removeprefix("http://")

    def standbys_by_exporter() -> dict[str, float]:
        counted = prometheus.query(url, 'count by (instance) (pg_stat_replication_pg_wal_lsn_diff{job="postgres"})')
        return {sample["metric"]["instance"]: float(sample["value"][1]) for sample in counted}

    assert eventually(lambda: standbys_by_exporter() == {leaders_exporter: 2}), standbys_by_exporter()
    leader_by_patroni = f'patroni_primary{{instance="{leader["restapi"].removeprefix("http://")}"}} == 1'
    assert eventually(lambda: prometheus.query(url, leader_by_patroni))


@pytest.mark.cluster
def test_the_edge_refuses_metrics_in_every_spelling_an_instance_would_serve(cluster):
    instance = address_of(cluster.component("app1")["url"])
    for target in SERVED_AS_METRICS:
        status, _, body = get(instance, target)
        assert status == 200 and b"twooter_http_requests_total" in body, target
    for target in SERVED_AS_METRICS + REFUSED_TOO + ("http://twooter/metrics",):
        status, headers, body = get(cluster.edge, target)
        assert status == 404, (target, status)
        # HAProxy answered: no instance saw the request (each one sends its request id).
        assert "x-request-id" not in headers and b"twooter_" not in body, target
    # Only the segment: a person whose name begins with the word has their page.
    status, headers, _ = get(cluster.edge, "/metricsfan")
    assert status == 404 and "x-request-id" in headers  # the app's own "no such person"
    assert cluster.answers("/public") == 200


@pytest.mark.parametrize("example", ["haproxy-edge.json", "haproxy-edge-ha.json"])
def test_the_edges_for_real_machines_refuse_metrics_as_the_cluster_edge_does(example, tmp_path):
    values = json.loads((DEPLOY_FOLDER / "examples" / example).read_text())
    config = render("haproxy/haproxy.cfg.j2", values)
    edge = re.search(r"^frontend edge\n(.*?)^\S", config, re.MULTILINE | re.DOTALL).group(1)
    assert re.search(r"http-request deny deny_status 404 if \{ path,url_dec .*metrics", edge)
    assert "use-service prometheus-exporter" in config  # the stats listener: Prometheus's job haproxy
    (tmp_path / "haproxy.cfg").write_text(config)
    checked = subprocess.run(["haproxy", "-c", "-f", str(tmp_path / "haproxy.cfg")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
