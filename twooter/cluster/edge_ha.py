"""`twooter cluster up --edge-ha`: two edges sharing a virtual address in front of the cluster's app instances.

The network (netns.py) is made before anything starts, because the app
instances then listen on the root namespace's address on its bridge, where
the edges reach them; the cluster's own HAProxy stays in the root namespace
for the PostgreSQL fronts. The edges (vip.py) live under DIR/edges and are
components named edge1, edge2 of kind `edge`: `kill` is kill -9 of an edge's
HAProxy, `stop` the loss of the whole edge, `start` brings back what is
down, `down` removes every namespace, link and process.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from . import haproxy, netns
from .layout import ClusterSpec
from .netns import NetnsError
from .processes import ClusterError, wait_for
from .vip import EdgePair

if TYPE_CHECKING:
    from .operations import Cluster

KIND = "edge"


def with_network(spec: ClusterSpec) -> ClusterSpec:
    """A network for the spec's edges, and the spec that uses it (apps on its bridge address).

    ClusterError when no network can be made (not root, no iproute2, no free slot).
    """
    try:
        network = netns.create()
    except (NetnsError, OSError) as error:
        raise ClusterError(f"--edge-ha: cannot build the edge network: {error}") from None
    return dataclasses.replace(spec, edge_slot=network.slot, app_host=network.host_address)


def pair(spec: ClusterSpec) -> EdgePair | None:
    """The cluster's edges, None without --edge-ha or once the network is gone."""
    if spec.edge_slot is None or not netns.exists(netns.EdgeNetwork(spec.edge_slot).lan):
        return None
    return EdgePair(netns.EdgeNetwork(spec.edge_slot), spec.folder / "edges", port=spec.edge_port)


def up(cluster: "Cluster", apps: list[dict[str, str]]) -> EdgePair:
    """Start both edges in front of `apps` ([{"name", "address"}]); the first holds the address."""
    edges = _required(cluster)
    try:
        edges.up(apps)
    except NetnsError as error:
        raise ClusterError(f"--edge-ha: {error}") from None
    return edges


def is_edge(cluster: "Cluster", name: str) -> bool:
    edges = pair(cluster.spec)
    return edges is not None and name in edges.names


def status(cluster: "Cluster", found: dict) -> None:
    """Add "vip", "client_netns" and one component row per edge to `found` (operations.status's answer)."""
    edges = pair(cluster.spec)
    if edges is None:
        return
    found["vip"] = edges.url
    found["client_netns"] = edges.network.client
    for row in edges.status():
        found["components"].append({**row, "running": row["pid"] is not None})


def kill(cluster: "Cluster", name: str) -> list[int]:
    """kill -9 edge `name`'s HAProxy (keepalived sees it and gives the address up); its pid."""
    try:
        return [_required(cluster).kill_haproxy(name)]
    except NetnsError as error:
        raise ClusterError(str(error)) from None


def stop(cluster: "Cluster", name: str) -> list[int]:
    """Lose edge `name` whole: cable out, HAProxy and keepalived killed; the pids."""
    edges = _required(cluster)
    if edges.keepalived_pid(name) is None and edges.haproxy_pid(name) is None:
        raise ClusterError(f"{name} is not running")
    return edges.stop(name)


def start(cluster: "Cluster", name: str) -> None:
    """Bring back what is down of edge `name`; returns once it is a backup (or holds the address)."""
    edges = _required(cluster)
    if edges.haproxy_pid(name) is not None and edges.keepalived_pid(name) is not None:
        raise ClusterError(f"{name} is already running (HAProxy pid {edges.haproxy_pid(name)})")
    try:
        edges.start(name)
        netns.wait_for(lambda: edges.vrrp_state(name) in ("BACKUP", "MASTER"), 60, f"{name} to be eligible")
    except NetnsError as error:
        raise ClusterError(str(error)) from None


def runtime_sockets(cluster: "Cluster") -> list[Path]:
    """The runtime sockets of the edges whose HAProxy runs ([] without --edge-ha), for drains at every edge."""
    edges = pair(cluster.spec)
    if edges is None:
        return []
    return [edges.runtime_socket(name) for name in edges.names if edges.haproxy_pid(name) is not None]


def wait_in_rotation(sockets: list[Path], backend: str, server: str, seconds: float = 30) -> None:
    """Return once every HAProxy behind `sockets` has `backend/server` UP; ClusterError after `seconds`."""
    def up_everywhere() -> bool:
        return all(haproxy.servers(path)[(backend, server)]["status"] == "UP" for path in sockets)

    if not wait_for(up_everywhere, seconds):
        raise ClusterError(f"the edges did not put {server} back in rotation within {seconds:.0f} s")


def down(spec: ClusterSpec) -> None:
    """Kill every edge process and remove the network's namespaces and links (nothing when there are none)."""
    if spec.edge_slot is None:
        return
    network = netns.EdgeNetwork(spec.edge_slot)
    try:
        netns.remove(network)
    except NetnsError as error:
        raise ClusterError(f"removing the edge network: {error}") from None


def _required(cluster: "Cluster") -> EdgePair:
    edges = pair(cluster.spec)
    if edges is None:
        raise ClusterError("this cluster was started without --edge-ha (or its edge network is gone)")
    return edges
