"""The Grafana dashboard's queries against the local cluster's Prometheus (Debian's), which scrapes every
app instance, HAProxy, every Patroni node and a PostgreSQL exporter per node: every panel returns data
once there has been traffic."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from tests.scenario import SIMULATOR_AUTHORIZATION
from tests.twooter_client import TwooterClient
from twooter.monitoring import prometheus

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "twooter.json"
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


def drive_traffic(edge_url: str, tag: str) -> int:
    """Some of everything the dashboard shows, through the edge; returns the twoots posted."""
    simulator = {"Authorization": SIMULATOR_AUTHORIZATION}
    web = TwooterClient(edge_url)
    person = f"person-{tag}"
    web.register_and_login(person, "pw")
    web.add_message("from the web")
    web.get("/public")
    for number in range(4):  # round robin: each instance answers some
        web.get(f"/no-such-person-{number}")
    TwooterClient(edge_url).login(f"nobody-{tag}", "wrong")
    api = TwooterClient(edge_url)
    name = f"sim-{tag}"
    api.post("/register", json={"username": name, "email": "s@example.org", "pwd": "p"})
    api.post("/register", json={"username": name, "email": "s@example.org", "pwd": "p"})  # taken: refused
    for number in range(3):
        api.post(f"/msgs/{name}", json={"content": f"twoot {number}"}, headers=simulator)
    api.post(f"/fllws/{name}", json={"follow": person}, headers=simulator)
    api.post(f"/fllws/{name}", json={"unfollow": person}, headers=simulator)
    api.get(f"/msgs/{name}", headers=simulator)
    api.post("/msgs/ghost", json={"content": "lost"}, headers=simulator)
    return 4


def eventually(url: str, expression: str, seconds: float = 120) -> list[dict]:
    deadline = time.monotonic() + seconds
    while True:
        result = prometheus.query(url, expression)
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def twoots_counted(url: str) -> float:
    counted = prometheus.query(url, 'sum(twooter_twoots_posted_total{job="twooter"})')
    return float(counted[0]["value"][1]) if counted else 0.0


@pytest.mark.cluster
def test_every_panel_returns_data_from_the_clusters_prometheus(cluster):
    found = cluster.status()
    url = found["prometheus"]
    apps = [row for row in found["components"] if row["kind"] == "app"]
    assert eventually(url, f'sum(up{{job="twooter"}}) == {len(apps)}')
    before = twoots_counted(url)
    posted = drive_traffic(cluster.edge_url, f"{cluster.base_port}-{int(time.time())}")
    # Scraped since the traffic (a restarted instance counts from 0, so at least this many).
    assert eventually(url, f'sum(twooter_twoots_posted_total{{job="twooter"}}) >= {before + posted}')
    time.sleep(5)  # two more scrapes after the traffic, so every rate has two points
    empty, checked = [], 0
    for title, expression in panel_queries():
        checked += 1
        if not eventually(url, expression.replace("$__rate_interval", RATE_WINDOW)):
            empty.append(title)
    assert checked >= 25
    assert empty == []
    # Data from each instance, labelled by Prometheus with the address it scraped: the instance's own.
    routes = prometheus.query(url, 'sum by (instance) (twooter_http_requests_total{route="/<username>"})')
    assert {sample["metric"]["instance"] for sample in routes} == {row["url"].removeprefix("http://") for row in apps}
    # The alert rules are loaded beside the scrape configuration, and evaluate without errors.
    groups = requests.get(url + "/api/v1/rules", timeout=30).json()["data"]["groups"]
    loaded = [rule for group in groups for rule in group["rules"]]
    assert len(loaded) == 8 and all(rule["health"] in ("ok", "unknown") for rule in loaded)
