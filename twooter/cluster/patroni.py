"""Patroni's REST API: who leads, who follows, and a planned switchover."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 3


def _call(address: str, path: str, body: dict | None = None) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{address}{path}", data=data, method="POST" if body else "GET",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw or b"null")
    except json.JSONDecodeError:
        return status, raw.decode("utf-8", "replace")


def node_status(address: str) -> tuple[int, dict]:
    """GET /patroni of one node (`host:port` of its REST API): (HTTP status, its JSON)."""
    status, body = _call(address, "/patroni")
    return status, body if isinstance(body, dict) else {}


def members(address: str) -> list[dict]:
    """GET /cluster as one node sees it: [{"name", "role": "leader"|"sync_standby"|"replica", "state", "lag", …}]."""
    status, body = _call(address, "/cluster")
    if status != 200 or not isinstance(body, dict):
        raise ConnectionError(f"Patroni at {address} answered /cluster with {status}")
    return list(body.get("members", []))


def is_primary(address: str) -> bool:
    """GET /primary answers 200 only on the node that holds the leader key and runs as primary."""
    return _call(address, "/primary")[0] == 200


def is_running_replica(address: str) -> bool:
    return _call(address, "/replica")[0] == 200


def switchover(address: str, leader: str, candidate: str) -> tuple[int, str]:
    """POST /switchover to a node: (HTTP status, Patroni's message). 200 when the switchover happened."""
    status, body = _call(address, "/switchover", {"leader": leader, "candidate": candidate})
    return status, body if isinstance(body, str) else json.dumps(body)
