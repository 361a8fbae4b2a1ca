"""The Grafana dashboard's queries against a real Prometheus (Debian's) that scrapes two real app
instances: every panel that concerns the app returns data once there has been traffic."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import requests

from tests.servers import LiveServer, build_app, free_port, unavailable
from tests.twooter_client import TwooterClient
from twooter.monitoring import prometheus

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "twooter.json"
# Queries on Patroni's metrics need the multi-machine cluster; they are checked there.
CLUSTER_ONLY = ("patroni_", "haproxy_", "pg_")
RATE_WINDOW = "30s"


def panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_the_dashboard_has_the_panels_an_operator_looks_at_first():
    dashboard = json.loads(DASHBOARD.read_text())
    titles = {panel["title"] for panel in dashboard["panels"]}
    for wanted in ("Requests by route", "Errors by route and status", "Latency p99 by route",
                   "Simulator errors by action", "Twoots per minute", "Instances up", "PostgreSQL leader",
                   "Replication lag (bytes)"):
        assert wanted in titles
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    provisioning = (DASHBOARD.parent / "provisioning" / "dashboards.yml").read_text()
    assert "type: file" in provisioning


@pytest.fixture
def two_instances(postgres, tmp_path):
    logs = tmp_path / "logs"
    apps = [build_app("postgresql", tmp_path / name, postgres, LOG_DIR=logs, LOG_INSTANCE_NAME=name)
            for name in ("web1", "web2")]
    with LiveServer(apps[0]) as first, LiveServer(apps[1]) as second:
        yield apps, [first, second]


@pytest.fixture
def prometheus_scraping(two_instances, tmp_path):
    if not shutil.which("prometheus"):
        unavailable("prometheus is not installed (Debian's prometheus package); tests/run installs it")
    _, servers = two_instances
    directory = tmp_path / "prometheus"
    prometheus.write_config(directory, {"twooter": [f"127.0.0.1:{server.port}" for server in servers]},
                            scrape_interval="1s")
    port = free_port()
    process = prometheus.start(directory, f"127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}"
    try:
        prometheus.wait_until_ready(url, process)
        yield url
    finally:
        prometheus.stop(process)
    assert process.poll() is not None


def drive_traffic(app, server) -> int:
    """Some of everything the dashboard shows; returns the twoots posted."""
    simulator = {"Authorization": app.config["SIMULATOR_AUTHORIZATION"]}
    web = TwooterClient(server.url)
    web.register_and_login(f"person-{server.port}", "pw")
    web.add_message("from the web")
    web.get("/public")
    web.get("/no-such-person")
    web.login("nobody-at-all", "wrong")
    api = TwooterClient(server.url)
    name = f"sim-{server.port}"
    api.post("/register", json={"username": name, "email": "s@example.org", "pwd": "p"})
    api.post("/register", json={"username": name, "email": "s@example.org", "pwd": "p"})  # taken: refused
    for number in range(3):
        api.post(f"/msgs/{name}", json={"content": f"twoot {number}"}, headers=simulator)
    api.post(f"/fllws/{name}", json={"follow": f"person-{server.port}"}, headers=simulator)
    api.post("/msgs/ghost", json={"content": "lost"}, headers=simulator)
    return 4


def eventually(url: str, expression: str, seconds: float = 120) -> list[dict]:
    deadline = time.monotonic() + seconds
    while True:
        result = prometheus.query(url, expression)
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_every_app_panel_returns_data_from_two_scraped_instances(two_instances, prometheus_scraping):
    url = prometheus_scraping
    apps, servers = two_instances
    up = eventually(url, 'sum(up{job="twooter"}) == 2')
    assert up and float(up[0]["value"][1]) == 2
    posted = sum(drive_traffic(app, server) for app, server in zip(apps, servers))
    # Both instances' counts have been scraped since the traffic.
    assert eventually(url, f'sum(twooter_twoots_posted_total{{job="twooter"}}) == {posted}')
    assert eventually(url, 'count(sum by (instance) (twooter_twoots_posted_total{job="twooter"}) > 0) == 2')
    time.sleep(2)  # a second scrape after the traffic, so every rate has two points
    empty, checked = [], 0
    for title, expression in panel_queries():
        if any(marker in expression for marker in CLUSTER_ONLY):
            continue
        checked += 1
        if not eventually(url, expression.replace("$__rate_interval", RATE_WINDOW)):
            empty.append(title)
    assert checked >= 15
    assert empty == []
    # Data from each instance, labelled by Prometheus with the instance scraped.
    routes = prometheus.query(url, 'sum by (instance) (twooter_http_requests_total{route="/<username>"})')
    assert {sample["metric"]["instance"] for sample in routes} == {f"127.0.0.1:{s.port}" for s in servers}
    # The alert rules are loaded beside the scrape configuration, and evaluate without errors.
    groups = requests.get(url + "/api/v1/rules", timeout=30).json()["data"]["groups"]
    loaded = [rule for group in groups for rule in group["rules"]]
    assert len(loaded) == 8 and all(rule["health"] in ("ok", "unknown") for rule in loaded)
