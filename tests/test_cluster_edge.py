"""The edge and the app instances of a local cluster: status, framing, a crashed instance, a rolling restart."""
from __future__ import annotations

import socket
import time

import psutil
import pytest

from tests.traffic import Traffic

pytestmark = pytest.mark.cluster


def raw_request(address: tuple[str, int], raw: bytes) -> bytes:
    """Send bytes as they are; return the status line of the answer."""
    with socket.create_connection(address, timeout=10) as connection:
        connection.sendall(raw)
        answer = b""
        while b"\r\n" not in answer:
            chunk = connection.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


def assert_tweets_stored_once(cluster, traffic: Traffic) -> None:
    stored = cluster.stored_tweets()
    for request in traffic.tweets():
        key = (request.action.username, request.action.body["content"])
        if request.acknowledged:
            assert stored[key] == 1, f"acknowledged tweet stored {stored[key]} times: {key}"
        else:
            assert stored[key] <= 1, f"unacknowledged tweet stored {stored[key]} times: {key}"


def test_status_names_every_component_with_kind_role_pid_and_url(cluster):
    status = cluster.status()
    assert status["edge"] == cluster.edge_url
    components = {c["name"]: c for c in status["components"]}
    kinds = sorted(c["kind"] for c in components.values())
    assert kinds == ["app", "app", "etcd", "etcd", "etcd", "haproxy", "log-collector", "log-forwarder",
                     "log-forwarder", "postgres", "postgres", "postgres", "postgres-exporter", "postgres-exporter",
                     "postgres-exporter", "prometheus"]
    assert status["prometheus"] == components["prometheus"]["url"]
    assert status["logs"] == components["log-collector"]["folder"]
    roles = sorted(c["role"] for c in components.values() if c["kind"] == "postgres")
    assert roles == ["leader", "replica", "replica"]
    for component in components.values():
        assert {"name", "kind", "role", "pid", "url"} <= component.keys()
        assert component["url"].split("//")[1].startswith("127.0.0.1:")
        assert psutil.pid_exists(component["pid"]) and component["running"]
    assert cluster.answers("/health") == 200
    text = cluster.run("status").stdout
    for name in components:
        assert name in text
    assert status["prometheus"] in text and status["logs"] in text


def test_the_edge_refuses_ambiguous_framing_and_passes_plain_chunked(cluster):
    body = b'{"username": "smuggler", "email": "s@x.org", "pwd": "p"}'
    chunked = hex(len(body))[2:].encode() + b"\r\n" + body + b"\r\n0\r\n\r\n"
    head = b"POST /register HTTP/1.1\r\nHost: twooter\r\nContent-Type: application/json\r\nConnection: close\r\n"
    for framing in (b"Transfer-Encoding: chunked, chunked\r\n",
                    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                    b"Transfer-Encoding: gzip, chunked\r\n",
                    b"Transfer-Encoding: identity\r\n"):
        status_line = raw_request(cluster.edge, head + framing + b"\r\n" + chunked)
        assert status_line.split(b" ")[1] in (b"400", b"422", b"501"), (framing, status_line)
    assert cluster.answers("/msgs/smuggler") == 404  # none of them reached the app
    status_line = raw_request(cluster.edge, head + b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
    assert status_line.split(b" ")[1] == b"204"
    assert cluster.answers("/msgs/smuggler") == 200


def test_kill_9_of_an_app_instance_loses_no_acknowledged_post_and_fails_no_get(cluster):
    victim = cluster.component("app1")
    with cluster.mended("app1"):
        with Traffic(*cluster.edge, clients=4, seed=1) as traffic:
            traffic.run_for(3)
            killed_at = time.monotonic()
            cluster.run("kill", "app1")
            killed_by = time.monotonic()
            traffic.run_for(5)
        assert not psutil.pid_exists(victim["pid"])
        posts, gets = traffic.posts(), traffic.gets()
        assert len(posts) > 100 and len(gets) > 100
        # GETs the instance had in hand are retried on the other one by HAProxy.
        assert [r for r in gets if r.failed] == []
        # A POST the instance had in hand when it died may or may not have been
        # committed: HAProxy must not send it again, so it fails. Any other POST works.
        failed_posts = [r for r in posts if r.failed]
        assert all(r.started <= killed_by and r.ended >= killed_at for r in failed_posts), failed_posts
        assert len(failed_posts) <= 4
        assert_tweets_stored_once(cluster, traffic)
        after = [r for r in posts if r.started > killed_by]
        assert after and all(r.acknowledged or r.status < 500 for r in after)


def test_a_rolling_restart_under_load_answers_every_request(cluster):
    before = {c["name"]: c["pid"] for c in cluster.status()["components"] if c["kind"] == "app"}
    with Traffic(*cluster.edge, clients=4, seed=2) as traffic:
        traffic.run_for(1)
        restart = cluster.run("restart-apps", timeout=300)
        traffic.run_for(1)
    after = {c["name"]: c["pid"] for c in cluster.status()["components"] if c["kind"] == "app"}
    assert all(before[name] != after[name] for name in before), restart.stdout
    assert len(traffic.requests) > 200
    assert [r for r in traffic.requests if r.failed] == []
    wrong = [r for r in traffic.posts() if r.status != r.action.expected_status]
    assert wrong == []
    assert [r for r in traffic.gets() if r.status != 200] == []
    assert_tweets_stored_once(cluster, traffic)
    assert cluster.healthy()
